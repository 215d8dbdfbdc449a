"""A deterministic asyncio event loop on virtual time, for the whole-server simulation.

It runs the members' real asyncio code (the Raft runner, the watch service, the lease keeper, clients
awaiting `EtcdServer.put`) but never waits: when nothing is ready, the clock jumps to the next timer.
There are no sockets, threads or signals, so callbacks run in an order fixed by the program alone (FIFO
ready queue, timers by due time then by insertion), and a seed replays exactly.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any

# Which simulated member the running code belongs to: every task created while it is set is that
# member's, and is cancelled when the member crashes (as a process's tasks die with it).
OWNER: contextvars.ContextVar[Any] = contextvars.ContextVar("sim_owner", default=None)


class VirtualSelector:
    """Stands in for the selector: `select(timeout)` advances the clock instead of sleeping."""

    def __init__(self, loop: SimLoop) -> None:
        self.loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("simulation deadlock: nothing is ready and no timer is scheduled")
        if timeout > 0:
            self.loop.now += timeout
        return []

    def close(self) -> None:
        pass


class SimLoop(asyncio.BaseEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = VirtualSelector(self)  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def create_task(  # type: ignore[override]
            self, coro: Coroutine[Any, Any, Any], *, name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        task = super().create_task(coro, name=name, context=context)
        owner = OWNER.get() if context is None else context.get(OWNER)
        if owner is not None:
            owner.tasks[task] = None  # a dict: insertion order, so crashes cancel reproducibly
            task.add_done_callback(lambda t: owner.tasks.pop(t, None))
        return task

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task of the simulation itself (no member owns it)."""
        return self.create_task(coro, context=contextvars.Context())

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> Any:  # type: ignore[override]
        raise RuntimeError("no threads in the simulation: pass the member a run_io")
