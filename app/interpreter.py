"""How a serving process sets up its Python interpreter: the event loop, the collector and the GIL.

Measured on the put @64 benchmark (BENCHMARKS.md): the collector's default thresholds ran a full
collection every few thousand requests, each a pause of tens of milliseconds that every request in
flight waited out (p99 42 ms against p50 8 ms; 12.5 ms with these thresholds). The WAL sync thread
hands each finished fdatasync back through the GIL, and at the default 5 ms switch interval a busy
event loop keeps it waiting that long before the batch it made durable can be applied.
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (50_000, 20, 100)
SWITCH_INTERVAL_S = 0.0005


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
