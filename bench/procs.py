"""Worker processes for the Python-driven workloads (watch, lease-keepalive).

One asyncio loop per process keeps the client from being the bottleneck on event fan-out. The
protocol with the parent is: worker connects and reports ready -> parent sets `go` -> worker runs ->
(watch only) parent publishes `final` (how many puts were written, and how many went to each key, in a
shared array of `final_slots` counters) -> worker sends its result.
Workers share CLOCK_MONOTONIC with the parent (time.monotonic_ns is system-wide on Linux), so
timestamps can cross process boundaries.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

_CTX = mp.get_context("spawn")  # the parent may hold threads (progress bar, wrk readers)


class WorkerCtl:
    """Handles shared by the parent and every worker; picklable through Process(args=...)."""

    def __init__(self, n: int, final_slots: int = 0) -> None:
        self.ready_q: Any = _CTX.Queue()
        self.results_q: Any = _CTX.Queue()
        self.go: Any = _CTX.Event()
        self.final_set: Any = _CTX.Event()
        self.final: Any = _CTX.Value("q", -1)
        self.counters: list[Any] = [_CTX.Value("q", 0, lock=False) for _ in range(n)]
        # Written once by the parent before final_set, read-only afterwards: no lock needed.
        self.final_counts: Any = _CTX.Array("q", final_slots, lock=False) if final_slots else None

    def ready(self, idx: int) -> None:
        self.ready_q.put(idx)

    async def wait_go(self) -> None:
        while not self.go.is_set():
            await asyncio.sleep(0.005)

    async def wait_final(self) -> int:
        while not self.final_set.is_set():
            await asyncio.sleep(0.01)
        return int(self.final.value)

    def final_count(self, slot: int) -> int:
        """The parent's per-slot count published with `final` (valid once wait_final returned)."""
        return int(self.final_counts[slot])


WorkerFn = Callable[[Any, WorkerCtl, int], Coroutine[Any, Any, Any]]


def _entry(fn: WorkerFn, args: Any, ctl: WorkerCtl, idx: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    cpu0 = time.process_time()  # leave out interpreter start-up and imports
    try:
        res: Any = asyncio.run(fn(args, ctl, idx))
        ctl.results_q.put((idx, res, None, time.process_time() - cpu0))
    except BaseException as e:  # report every failure to the parent instead of hanging it
        ctl.ready_q.put(idx)
        ctl.results_q.put((idx, None, f"{type(e).__name__}: {e}", time.process_time() - cpu0))


class WorkerGroup:
    def __init__(self, fn: WorkerFn, args: list[Any], final_slots: int = 0) -> None:
        self.ctl = WorkerCtl(len(args), final_slots)
        self.cpu_s = 0.0  # CPU time the workers used, to tell whether the client kept up
        self.procs = [_CTX.Process(target=_entry, args=(fn, a, self.ctl, i), daemon=True)
                      for i, a in enumerate(args)]

    def start(self, ready_timeout: float = 60.0) -> None:
        for p in self.procs:
            p.start()
        deadline = time.monotonic() + ready_timeout
        ready = 0
        while ready < len(self.procs):
            try:
                self.ctl.ready_q.get(timeout=0.1)
                ready += 1
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    self.terminate()
                    why = f"exit code {dead[0].exitcode}" if dead else "timeout"
                    raise RuntimeError(f"benchmark workers did not become ready ({why})") from None

    def go(self) -> None:
        self.ctl.go.set()

    def publish_final(self, value: int, counts: Sequence[int] = ()) -> None:
        for i, c in enumerate(counts):  # before final_set, so a worker never sees a half-written array
            self.ctl.final_counts[i] = c
        self.ctl.final.value = value
        self.ctl.final_set.set()

    def progress(self) -> int:
        return sum(int(c.value) for c in self.ctl.counters)

    def results(self, poll: Callable[[], None] | None = None, timeout: float = 600.0) -> list[Any]:
        out: dict[int, Any] = {}
        errors: list[str] = []
        deadline = time.monotonic() + timeout
        while len(out) + len(errors) < len(self.procs):
            if time.monotonic() > deadline:
                self.terminate()
                raise RuntimeError("benchmark workers timed out")
            try:
                idx, res, err, cpu = self.ctl.results_q.get(timeout=0.1)
            except queue.Empty:
                if poll is not None:
                    poll()
                if all(not p.is_alive() for p in self.procs) and self.ctl.results_q.empty():
                    break
                continue
            self.cpu_s += cpu
            if err is not None:
                errors.append(f"worker {idx}: {err}")
            else:
                out[idx] = res
        for p in self.procs:
            p.join(timeout=5)
        if errors or len(out) < len(self.procs):
            raise RuntimeError("benchmark worker failed: " + "; ".join(errors or ["exited without result"]))
        return [out[i] for i in sorted(out)]

    def terminate(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
