"""Bulk loading: keys [0, n) written as txns of up to 128 puts (etcd's --max-txn-ops) over many
concurrent keep-alive connections. Used to prefill the key space for reads and by `load` mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from etcdpy.app.peer.http_client import HttpConn
from etcdpy.bench.payloads import b64, key_bytes, txn_put_body

MAX_TXN_OPS = 128


@dataclass
class LoadStats:
    keys: int
    requests: int = 0
    duration_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def keys_per_s(self) -> float:
        return self.keys / self.duration_s if self.duration_s else 0.0


async def load_keys(endpoints: list[str], n: int, key_size: int, value: bytes, conns: int = 32,
                    batch: int = MAX_TXN_OPS, progress: Callable[[int], None] | None = None) -> LoadStats:
    batch = max(1, min(batch, MAX_TXN_OPS))
    value_b64 = b64(value)
    stats = LoadStats(keys=n)
    next_start = 0
    retry: list[tuple[int, int]] = []
    max_errors = 100 + n // batch // 10

    async def worker(endpoint: str) -> None:
        nonlocal next_start
        conn = HttpConn(endpoint)
        try:
            while next_start < n or retry:
                if sum(stats.errors.values()) > max_errors:
                    raise RuntimeError(f"loading failed: {stats.errors}")
                if retry:
                    lo, hi = retry.pop()
                else:
                    lo = next_start
                    hi = min(n, lo + batch)
                    next_start = hi  # single-threaded event loop: no lock needed between awaits
                body = txn_put_body([b64(key_bytes(i, key_size)) for i in range(lo, hi)], value_b64)
                try:
                    status, _ = await conn.post("/v3/kv/txn", body)
                except (OSError, asyncio.IncompleteReadError) as e:
                    kind = f"socket {type(e).__name__}"
                    stats.errors[kind] = stats.errors.get(kind, 0) + 1
                    await conn.close()
                    retry.append((lo, hi))  # re-putting the same keys is harmless
                    await asyncio.sleep(0.05)
                    continue
                stats.requests += 1
                if status != 200:
                    kind = f"http {status}"
                    stats.errors[kind] = stats.errors.get(kind, 0) + 1
                    retry.append((lo, hi))
                    await asyncio.sleep(0.05)
                elif progress is not None:
                    progress(hi - lo)
        finally:
            await conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker(endpoints[i % len(endpoints)]) for i in range(conns)))
    stats.duration_s = time.monotonic() - t0
    return stats
