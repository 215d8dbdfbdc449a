"""How a serving process sets up its Python interpreter: the event loop, the collector and the GIL.

Measured on the put @64 benchmark (BENCHMARKS.md): the collector's default thresholds ran a full
collection every few thousand requests, each a pause of tens of milliseconds that every request in
flight waited out (p99 42 ms against p50 8 ms; 12.5 ms with these thresholds). The WAL sync thread
hands each finished fdatasync back through the GIL, and a busy event loop keeps it waiting up to the
switch interval before the batch it made durable can be applied: at 5 ms (the default) that wait
bounded throughput, and going on down paid until about 50 us (put @64, one front worker, A/B of two
5 s runs each: 0.5 ms 12.7k/s, 0.1 ms 13.4k/s, 50 us 13.6k/s, 20 and 10 us no better). The sync
thread is the only other thread that wants the GIL, so forced switches happen only when it does.

The serving processes run under SCHED_BATCH: Linux then never lets one of them preempt the running
task when it wakes up; it waits for the end of that task's slice (it keeps the same share of the CPU).
A member, its front workers and its peers hand each other work many times a millisecond, and every
hand-off woke a process that preempted the one that had just handed the work over, in the middle of
its batch: at 3-member put @256 (six server processes on two cores) ~600-800 involuntary context
switches a second per member. A/B, alternating pairs: 3-member put @256 +3 to +10 % (4 of 4 pairs),
server CPU per put 150-169 against 158-183 µs; one member put @64 +2 and +16 %, put @1 p50 lower in 4
of 5 pairs (on idle CPUs a woken process runs at once either way).
"""

from __future__ import annotations

import gc
import os
import sys

GC_THRESHOLDS = (50_000, 20, 100)
SWITCH_INTERVAL_S = 0.00005


def tune() -> None:
    """Install uvloop (if present), set the collector and switch interval for serving, and the CPU
    scheduling policy."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    batch_scheduling()


def batch_scheduling() -> None:
    """Put this process (and the threads and processes it starts later) under SCHED_BATCH, where the
    platform has it; a refusal (a seccomp profile, another OS) leaves the default policy."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError:
            pass


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, the server's long-lived objects) out of the collector's
    sight, so full collections only walk what serving allocates."""
    gc.collect()
    gc.freeze()
