"""How long this machine's disk takes to make a small append durable: the wait in every put.

A put is acknowledged after an `fdatasync` of the log, on etcd and on etcdpy alike, so both servers'
put figures move with the disk. On the shared VM these benchmarks are measured on, the p50 of a bare
8 KiB append + `fdatasync` went from about 190 µs to about 310 µs within one hour. `compare` therefore
measures it before and after its runs and prints it with the figures; `etcdpy-benchmark disk` measures it
alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

from etcdpy.bench.stats import Latency

APPEND_BYTES = 8192  # about what one Ready of a few dozen small puts adds to the log


@dataclass(frozen=True)
class DiskProbe:
    syncs: int
    p50_us: float
    p99_us: float

    def text(self) -> str:
        return (f"fdatasync after an {APPEND_BYTES // 1024} KiB append: p50 {self.p50_us:,.0f} µs, "
                f"p99 {self.p99_us:,.0f} µs ({self.syncs} syncs)")

    def to_json(self) -> dict[str, float]:
        return {"syncs": self.syncs, "p50_us": round(self.p50_us, 1), "p99_us": round(self.p99_us, 1)}


def probe(directory: str | None = None, syncs: int = 500) -> DiskProbe:
    """Append APPEND_BYTES and fdatasync, `syncs` times, to a new file in `directory` (default: the
    temporary directory, where `compare` puts both servers' data); the file is removed afterwards."""
    fd, path = tempfile.mkstemp(prefix="etcdpy-fsync-probe-", dir=directory)
    took = Latency()
    try:
        data = os.urandom(APPEND_BYTES)
        for _ in range(syncs):
            os.write(fd, data)
            start = time.perf_counter()
            os.fdatasync(fd)
            took.add((time.perf_counter() - start) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return DiskProbe(syncs, took.percentile(50), took.percentile(99))
