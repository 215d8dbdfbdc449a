"""Watch fan-out latency: S streams x W watchers, a writer putting at --rate, and the put->event latency
of every event at every watcher; every watcher's event count is checked against the writer's puts.

Two shapes, one code path: all watchers on ONE key (every put reaches every watcher: S*W events per put),
or `spread`: each watcher on its OWN key (`key` + zero-padded watcher index) and each put going to a
random watched key (one event per put), which is how 10,000 watchers at 1,000 puts/s stays runnable.
The one-key run is the case where every watcher maps to key slot 0.

The writer stores its CLOCK_MONOTONIC send time (ns) as the put's value, so a watcher in any process
computes the latency from the event alone, with no shared table. After writing, the parent publishes how
many puts each key got (WorkerGroup.publish_final); workers drain until each watcher has that many, then
return their per-watcher counts and check_counts() reports missing and duplicate events as errors.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable, Iterable, Sequence
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
    key: bytes  # the watched key; with spread, the prefix of every watcher's key
    spread: bool = False  # each watcher on its own key, puts to random watched keys
    procs: int = 1
    writer_conns: int = 16  # enough that slow puts (a busy server) do not lower the offered rate
    drain_s: float = 5.0
    seed: int = 1  # the writer's choice of keys (spread)


@dataclass(frozen=True)
class KeyPlan:
    """Which key each watcher watches: watcher g = stream * W + j watches slot(g)."""

    key: bytes
    spread: bool
    watchers: int

    @property
    def slots(self) -> int:
        return self.watchers if self.spread else 1

    def slot(self, watcher: int) -> int:
        return watcher if self.spread else 0

    def key_of(self, slot: int) -> bytes:
        if not self.spread:
            return self.key
        return self.key + str(slot).zfill(len(str(self.watchers - 1))).encode()

    def key_b64(self, slot: int) -> str:
        return base64.b64encode(self.key_of(slot)).decode()


def check_counts(expected: Sequence[int], received: Iterable[tuple[int, int]]) -> dict[str, int]:
    """Exactly-once check: each (slot, count) a watcher received against the puts made to its slot.

    Returns error kinds -> events ({} when every watcher got exactly its key's puts).
    """
    missing = duplicate = 0
    for slot, got in received:
        want = expected[slot]
        if got < want:
            missing += want - got
        elif got > want:
            duplicate += got - want
    return {k: v for k, v in (("missing events", missing), ("duplicate events", duplicate)) if v}


@dataclass(frozen=True)
class _WatcherArgs:
    endpoints: list[str]
    stream_ids: list[int]
    watchers_per_stream: int
    plan: KeyPlan
    drain_s: float


@dataclass
class _WatcherOut:
    latency: Latency
    counts: list[tuple[int, int]]  # (key slot, events received) per watcher
    errors: dict[str, int] = field(default_factory=dict)


async def _watch_worker(args: _WatcherArgs, ctl: WorkerCtl, idx: int) -> _WatcherOut:
    w = args.watchers_per_stream
    plan = args.plan
    counts: dict[int, int] = {}  # global watcher index -> events
    lat = Latency()
    errors: dict[str, int] = {}
    counter = ctl.counters[idx]
    conns: list[HttpConn] = []
    all_created: list[asyncio.Event] = []

    def err(kind: str, n: int = 1) -> None:
        errors[kind] = errors.get(kind, 0) + n

    async def reader(sid: int, conn: HttpConn, created_ev: asyncio.Event) -> None:
        status, _ = await conn.read_head()  # arrives together with the first "created"
        if status != 200:
            err(f"watch http {status}")
            created_ev.set()
            return
        # A stream answers its create requests in order, so the n-th "created" is watcher sid*w + n.
        watcher_of: dict[int, int] = {}
        want_key: dict[int, str] = {}
        async for line in iter_lines(conn.iter_chunks()):
            r = orjson.loads(line).get("result")
            if r is None:
                err("watch stream error")
                continue
            wid = int(r.get("watch_id", "0"))
            if r.get("created"):
                g = sid * w + len(watcher_of)
                watcher_of[wid] = g
                want_key[wid] = plan.key_b64(plan.slot(g))
                counts[g] = 0
                if len(watcher_of) == w:
                    created_ev.set()
                continue
            events = r.get("events")
            if not events:
                continue
            now = time.monotonic_ns()
            g_or_none = watcher_of.get(wid)
            if g_or_none is None:
                err("event for unknown watch id", len(events))
                continue
            key = want_key[wid]
            n = 0
            for ev in events:
                kv = ev["kv"]
                if kv["key"] != key:
                    err("event for another key")
                    continue
                lat.add((now - int(base64.b64decode(kv["value"]))) / 1000.0)
                n += 1
            counts[g_or_none] += n
            counter.value += n

    tasks = []
    for sid in args.stream_ids:
        creates = b"".join(orjson.dumps({"create_request": {"key": plan.key_b64(plan.slot(sid * w + j))}})
                           for j in range(w))
        conn = HttpConn(args.endpoints[sid % len(args.endpoints)])
        await conn.open_upload("/v3/watch", creates)
        conns.append(conn)
        ev = asyncio.Event()
        all_created.append(ev)
        tasks.append(asyncio.create_task(reader(sid, conn, ev)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in all_created)), timeout=60)
    if errors:
        raise RuntimeError(f"watch creation failed: {errors}")
    ctl.ready(idx)
    await ctl.wait_final()
    want = {g: ctl.final_count(plan.slot(g)) for g in counts}
    deadline = time.monotonic() + args.drain_s
    while time.monotonic() < deadline and any(c < want[g] for g, c in counts.items()):
        await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        await c.close()
    return _WatcherOut(latency=lat, counts=[(plan.slot(g), c) for g, c in counts.items()], errors=errors)


async def _writer(p: WatchParams, plan: KeyPlan, per_slot: list[int], put_lat: Latency,
                  errors: dict[str, int]) -> int:
    """Puts on a fixed schedule (t0 + i/rate) so a slow answer does not lower the offered rate.

    Counts the successful puts per key slot into per_slot; returns their total.
    """
    pool: asyncio.Queue[HttpConn] = asyncio.Queue()
    for i in range(p.writer_conns):
        pool.put_nowait(HttpConn(p.endpoints[i % len(p.endpoints)]))
    rng = random.Random(p.seed)
    keys = [plan.key_b64(s) for s in range(plan.slots)]
    ok = 0

    async def one(slot: int) -> None:
        nonlocal ok
        conn = await pool.get()
        try:
            sent = time.monotonic_ns()
            body = orjson.dumps({"key": keys[slot], "value": base64.b64encode(str(sent).encode()).decode()})
            status, _ = await conn.post("/v3/kv/put", body)
            put_lat.add((time.monotonic_ns() - sent) / 1000.0)
            if status == 200:
                ok += 1
                per_slot[slot] += 1
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
        tasks.append(asyncio.create_task(one(rng.randrange(plan.slots))))
        i += 1
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return ok


def run_watch(p: WatchParams, progress: Callable[[int, float], None] | None = None) -> Result:
    nprocs = max(1, min(p.procs, p.streams))
    watchers = p.streams * p.watchers_per_stream
    plan = KeyPlan(p.key, p.spread, watchers)
    args = [_WatcherArgs(p.endpoints, list(range(i, p.streams, nprocs)), p.watchers_per_stream, plan,
                         p.drain_s) for i in range(nprocs)]
    group = WorkerGroup(_watch_worker, args, final_slots=plan.slots)
    group.start()
    put_lat = Latency()
    errors: dict[str, int] = {}
    per_slot = [0] * plan.slots
    t0 = time.monotonic()
    group.go()
    puts = 0
    writer_cpu0 = time.process_time()
    try:
        puts = asyncio.run(_writer(p, plan, per_slot, put_lat, errors))
    finally:
        group.publish_final(puts, per_slot)  # also on failure: workers must never wait forever
    write_s = time.monotonic() - t0
    writer_cpu = time.process_time() - writer_cpu0
    outs: list[_WatcherOut] = group.results(
        poll=(lambda: progress(group.progress(), time.monotonic() - t0)) if progress else None)
    lat = Latency()
    received: list[tuple[int, int]] = []
    for o in outs:
        lat.merge(o.latency)
        received.extend(o.counts)
        for k, v in o.errors.items():
            errors[k] = errors.get(k, 0) + v
    if len(received) != watchers:
        errors["watchers not reporting"] = watchers - len(received)
    for k, v in check_counts(per_slot, received).items():
        errors[k] = errors.get(k, 0) + v
    events = sum(c for _, c in received)
    expected = sum(per_slot[plan.slot(g)] for g in range(watchers))
    return Result(workload="watch", endpoints=p.endpoints, conns=p.streams, duration_s=write_s,
                  requests=events, errors=errors, latency=lat,
                  extra={"watchers": watchers, "spread": p.spread, "keys": plan.slots, "puts": puts,
                         "expected_events": expected, "events": events, "put_rate": p.rate,
                         "achieved_put_rate": round(puts / write_s, 1) if write_s else 0.0,
                         "client_cpu_s": round(group.cpu_s + writer_cpu, 2),
                         "put_latency_us": {k: round(v, 1) for k, v in put_lat.summary().items()}})
