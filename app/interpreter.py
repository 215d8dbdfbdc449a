"""How a serving process sets up its Python interpreter: the event loop, the collector and the GIL.

Measured on the put @64 benchmark (BENCHMARKS.md): the collector's default thresholds ran a full
collection every few thousand requests, each a pause of tens of milliseconds that every request in
flight waited out (p99 42 ms against p50 8 ms; 12.5 ms with these thresholds). The WAL sync thread
hands each finished fdatasync back through the GIL, and a busy event loop keeps it waiting up to the
switch interval before the batch it made durable can be applied: at 5 ms (the default) that wait
bounded throughput, and going on down paid until about 50 us (put @64, one front worker, A/B of two
5 s runs each: 0.5 ms 12.7k/s, 0.1 ms 13.4k/s, 50 us 13.6k/s, 20 and 10 us no better). The sync
thread is the only other thread that wants the GIL, so forced switches happen only when it does.
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (50_000, 20, 100)
SWITCH_INTERVAL_S = 0.00005


def tune() -> None:
    """Install uvloop (if present) and set the collector and switch interval for serving."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, the server's long-lived objects) out of the collector's
    sight, so full collections only walk what serving allocates."""
    gc.collect()
    gc.freeze()
