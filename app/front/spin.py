"""Busy-polling an event loop for a moment while a lone client's next message is due.

A process that goes idle between two messages of one client (the member waiting for the next request,
a worker waiting for the member's answer or the client's next request) sleeps in epoll, and on a
virtual machine the wake-up that follows is an interrupt between CPUs, then a cold cache: measured
here, a lone client's put took ~750 µs end to end with ~400 µs of it in such wake-ups and their
after-effects (Go's scheduler spins before it parks for the same reason). While it spins, the loop
keeps polling with a zero timeout, so the next message is taken as soon as it lands; its arrival ends
the spin.

Spinning is only for a process with one client in flight: under load the loop is never idle, and a
spinning process would take a core the others need (put @64 lost 6-13 % when every process spun).
On a single CPU it would only delay whoever is to send the message, so it is off there.
"""

from __future__ import annotations

import asyncio
import os
import time

WINDOW_S = 0.0005  # how long after the last write; a lone client's next message lands within it


class Spinner:
    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window if len(os.sched_getaffinity(0)) > 1 else 0.0
        self._until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def spinning(self) -> bool:
        return self._until != 0.0

    def kick(self) -> None:
        """Keep the running loop polling for `window` from now."""
        if not self.window:
            return
        if self._until == 0.0:
            self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._spin)
        self._until = time.perf_counter() + self.window

    def stop(self) -> None:
        """What was due has come: end the spin at its next poll (a later write kicks it again). Spinning
        on would only hold the CPU from others, such as the kernel worker that runs a queued sync."""
        if self._until:
            self._until = 1.0  # long past: the chain's next call ends it

    def _spin(self) -> None:
        if time.perf_counter() < self._until:
            assert self._loop is not None
            self._loop.call_soon(self._spin)
        else:
            self._until = 0.0
