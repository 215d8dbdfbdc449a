"""lease-keepalive: C connections, each renewing its own lease in a loop through /v3/lease/keepalive.

The gateway's keepalive is a stream whose answer ends with the request body, so a Content-Length
request of one `{"ID":…}` object is one renewal: a unary call in practice. Leases are granted before
and revoked after the measured part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from etcdpy.app.peer.http_client import HttpConn
from etcdpy.bench.procs import WorkerCtl, WorkerGroup
from etcdpy.bench.result import Result
from etcdpy.bench.stats import Latency


@dataclass(frozen=True)
class LeaseParams:
    endpoints: list[str]
    conns: int
    total: int | None
    duration_s: float | None
    ttl: int = 60
    procs: int = 1


@dataclass(frozen=True)
class _Args:
    endpoints: list[str]
    conn_ids: list[int]
    lease_ids: list[str]
    quota: int | None  # renewals for this worker
    duration_s: float | None


@dataclass
class _Out:
    latency: Latency
    requests: int
    elapsed_s: float
    errors: dict[str, int] = field(default_factory=dict)


async def _worker(args: _Args, ctl: WorkerCtl, idx: int) -> _Out:
    lat = Latency()
    errors: dict[str, int] = {}
    counter = ctl.counters[idx]
    conns = [HttpConn(args.endpoints[c % len(args.endpoints)]) for c in args.conn_ids]
    for c in conns:
        await c.connect()
    ctl.ready(idx)
    await ctl.wait_go()
    t0 = time.monotonic()
    deadline = t0 + args.duration_s if args.duration_s is not None else float("inf")
    remaining = args.quota if args.quota is not None else -1
    done = 0

    async def loop(conn: HttpConn, lease_id: str) -> None:
        nonlocal remaining, done
        body = orjson.dumps({"ID": lease_id})
        while time.monotonic() < deadline:
            if args.quota is not None:
                if remaining <= 0:
                    return
                remaining -= 1
            s = time.monotonic_ns()
            try:
                status, data = await conn.post("/v3/lease/keepalive", body)
            except (OSError, asyncio.IncompleteReadError) as e:
                kind = f"socket {type(e).__name__}"
                errors[kind] = errors.get(kind, 0) + 1
                await conn.close()
                continue
            lat.add((time.monotonic_ns() - s) / 1000.0)
            done += 1
            counter.value += 1
            if status != 200:
                errors[f"http {status}"] = errors.get(f"http {status}", 0) + 1
            elif b'"TTL"' not in data:  # 200 without TTL: the lease is unknown or expired
                errors["lease not found"] = errors.get("lease not found", 0) + 1

    await asyncio.gather(*(loop(c, lid) for c, lid in zip(conns, args.lease_ids, strict=True)))
    elapsed = time.monotonic() - t0
    for c in conns:
        await c.close()
    return _Out(latency=lat, requests=done, elapsed_s=elapsed, errors=errors)


async def _grant(endpoint: str, n: int, ttl: int) -> list[str]:
    conn = HttpConn(endpoint)
    ids = []
    try:
        for _ in range(n):
            status, data = await conn.post("/v3/lease/grant", orjson.dumps({"TTL": ttl}))
            if status != 200:
                raise RuntimeError(f"lease grant failed: {status} {data[:200]!r}")
            ids.append(str(orjson.loads(data)["ID"]))
    finally:
        await conn.close()
    return ids


async def _revoke(endpoint: str, ids: list[str]) -> None:
    conn = HttpConn(endpoint)
    try:
        for i in ids:
            await conn.post("/v3/lease/revoke", orjson.dumps({"ID": i}))
    finally:
        await conn.close()


def run_lease_keepalive(p: LeaseParams, progress: Callable[[int, float], None] | None = None) -> Result:
    lease_ids = asyncio.run(_grant(p.endpoints[0], p.conns, p.ttl))
    nprocs = max(1, min(p.procs, p.conns))
    args = []
    for i in range(nprocs):
        conn_ids = list(range(i, p.conns, nprocs))
        quota = None if p.total is None else (p.total * len(conn_ids) + p.conns - 1) // p.conns
        args.append(_Args(p.endpoints, conn_ids, [lease_ids[c] for c in conn_ids], quota, p.duration_s))
    try:
        group = WorkerGroup(_worker, args)
        group.start()
        t0 = time.monotonic()
        group.go()
        outs: list[_Out] = group.results(
            poll=(lambda: progress(group.progress(), time.monotonic() - t0)) if progress else None)
    finally:
        asyncio.run(_revoke(p.endpoints[0], lease_ids))
    lat = Latency()
    errors: dict[str, int] = {}
    for o in outs:
        lat.merge(o.latency)
        for k, v in o.errors.items():
            errors[k] = errors.get(k, 0) + v
    return Result(workload="lease-keepalive", endpoints=p.endpoints, conns=p.conns,
                  duration_s=max(o.elapsed_s for o in outs), requests=sum(o.requests for o in outs),
                  errors=errors, latency=lat,
                  extra={"leases": len(lease_ids), "procs": nprocs, "client_cpu_s": round(group.cpu_s, 2)})
