"""Watch fan-out latency: S streams x W watchers on one key, a writer putting at --rate, and the
put->event latency of every event at every watcher.

The writer stores its CLOCK_MONOTONIC send time (ns) as the put's value, so a watcher in any process
computes the latency from the event alone, with no shared table.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from etcdpy.app.peer.http_client import HttpConn, iter_lines
from etcdpy.bench.procs import WorkerCtl, WorkerGroup
from etcdpy.bench.result import Result
from etcdpy.bench.stats import Latency


@dataclass(frozen=True)
class WatchParams:
    endpoints: list[str]
    streams: int
    watchers_per_stream: int
    rate: float
    total: int | None  # number of puts; or
    duration_s: float | None
    key_b64: str
    procs: int = 1
    writer_conns: int = 16  # enough that slow puts (a busy server) do not lower the offered rate
    drain_s: float = 5.0


@dataclass(frozen=True)
class _WatcherArgs:
    endpoints: list[str]
    stream_ids: list[int]
    watchers_per_stream: int
    key_b64: str
    drain_s: float


@dataclass
class _WatcherOut:
    latency: Latency
    counts: list[int]
    errors: dict[str, int] = field(default_factory=dict)


async def _watch_worker(args: _WatcherArgs, ctl: WorkerCtl, idx: int) -> _WatcherOut:
    w = args.watchers_per_stream
    counts: dict[tuple[int, int], int] = {}
    lat = Latency()
    errors: dict[str, int] = {}
    counter = ctl.counters[idx]
    conns: list[HttpConn] = []
    all_created: list[asyncio.Event] = []
    creates = b"".join(orjson.dumps({"create_request": {"key": args.key_b64}}) for _ in range(w))

    async def reader(sid: int, conn: HttpConn, created_ev: asyncio.Event) -> None:
        status, _ = await conn.read_head()  # arrives together with the first "created"
        if status != 200:
            errors[f"watch http {status}"] = errors.get(f"watch http {status}", 0) + 1
            created_ev.set()
            return
        created = 0
        async for line in iter_lines(conn.iter_chunks()):
            r = orjson.loads(line).get("result")
            if r is None:
                errors["watch stream error"] = errors.get("watch stream error", 0) + 1
                continue
            if r.get("created"):
                counts[(sid, int(r.get("watch_id", "0")))] = 0
                created += 1
                if created == w:
                    created_ev.set()
                continue
            events = r.get("events")
            if not events:
                continue
            now = time.monotonic_ns()
            key = (sid, int(r.get("watch_id", "0")))
            for ev in events:
                sent = int(base64.b64decode(ev["kv"]["value"]))
                lat.add((now - sent) / 1000.0)
            counts[key] = counts.get(key, 0) + len(events)
            counter.value += len(events)

    tasks = []
    for sid in args.stream_ids:
        conn = HttpConn(args.endpoints[sid % len(args.endpoints)])
        await conn.open_upload("/v3/watch", creates)
        conns.append(conn)
        ev = asyncio.Event()
        all_created.append(ev)
        tasks.append(asyncio.create_task(reader(sid, conn, ev)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in all_created)), timeout=30)
    if errors:
        raise RuntimeError(f"watch creation failed: {errors}")
    ctl.ready(idx)
    final = await ctl.wait_final()
    deadline = time.monotonic() + args.drain_s
    while time.monotonic() < deadline and any(c < final for c in counts.values()):
        await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        await c.close()
    return _WatcherOut(latency=lat, counts=list(counts.values()), errors=errors)


async def _writer(p: WatchParams, put_lat: Latency, errors: dict[str, int]) -> int:
    """Puts on a fixed schedule (t0 + i/rate) so a slow answer does not lower the offered rate."""
    pool: asyncio.Queue[HttpConn] = asyncio.Queue()
    for i in range(p.writer_conns):
        pool.put_nowait(HttpConn(p.endpoints[i % len(p.endpoints)]))
    ok = 0

    async def one() -> None:
        nonlocal ok
        conn = await pool.get()
        try:
            sent = time.monotonic_ns()
            body = orjson.dumps({"key": p.key_b64, "value": base64.b64encode(str(sent).encode()).decode()})
            status, _ = await conn.post("/v3/kv/put", body)
            put_lat.add((time.monotonic_ns() - sent) / 1000.0)
            if status == 200:
                ok += 1
            else:
                errors[f"http {status}"] = errors.get(f"http {status}", 0) + 1
        except (OSError, asyncio.IncompleteReadError) as e:
            errors[f"socket {type(e).__name__}"] = errors.get(f"socket {type(e).__name__}", 0) + 1
            await conn.close()
        finally:
            pool.put_nowait(conn)

    t0 = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    i = 0
    while True:
        if p.total is not None and i >= p.total:
            break
        due = t0 + i / p.rate
        if p.duration_s is not None and due - t0 >= p.duration_s:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
        i += 1
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return ok


def run_watch(p: WatchParams, progress: Callable[[int, float], None] | None = None) -> Result:
    nprocs = max(1, min(p.procs, p.streams))
    args = [_WatcherArgs(p.endpoints, list(range(i, p.streams, nprocs)), p.watchers_per_stream, p.key_b64,
                         p.drain_s) for i in range(nprocs)]
    group = WorkerGroup(_watch_worker, args)
    group.start()
    put_lat = Latency()
    errors: dict[str, int] = {}
    t0 = time.monotonic()
    group.go()
    puts = 0
    writer_cpu0 = time.process_time()
    try:
        puts = asyncio.run(_writer(p, put_lat, errors))
    finally:
        group.publish_final(puts)  # also on failure: workers must never wait forever
    write_s = time.monotonic() - t0
    writer_cpu = time.process_time() - writer_cpu0
    outs: list[_WatcherOut] = group.results(
        poll=(lambda: progress(group.progress(), time.monotonic() - t0)) if progress else None)
    watchers = p.streams * p.watchers_per_stream
    lat = Latency()
    counts: list[int] = []
    for o in outs:
        lat.merge(o.latency)
        counts.extend(o.counts)
        for k, v in o.errors.items():
            errors[k] = errors.get(k, 0) + v
    events = sum(counts)
    missing = puts * watchers - events
    if missing > 0:
        errors["missing events"] = missing
    return Result(workload="watch", endpoints=p.endpoints, conns=p.streams, duration_s=write_s,
                  requests=events, errors=errors, latency=lat,
                  extra={"watchers": watchers, "puts": puts, "expected_events": puts * watchers,
                         "events": events, "put_rate": p.rate,
                         "achieved_put_rate": round(puts / write_s, 1) if write_s else 0.0,
                         "client_cpu_s": round(group.cpu_s + writer_cpu, 2),
                         "put_latency_us": {k: round(v, 1) for k, v in put_lat.summary().items()}})
