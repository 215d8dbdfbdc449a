"""The watch service of one member: its watch hub and the background work that drives it.

The pure step methods (`WatchHub.catch_up_step`, `WatchHub.progress_tick`) are scheduled here:

- catch-up of unsynced watchers and victims, woken whenever there is work (and every 10 ms while a
  watcher waits for its stream to drain);
- etcd's progress ticker (`--experimental-watch-progress-notify-interval`, default 10 m).

Streams (HTTP, WebSocket, SSE) register a `Session` so a shutdown can end each one with a last word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.watch_hub import WatchHub

log = logging.getLogger("etcdpy.watch")

VICTIM_RETRY_S = 0.01

class Session:
    """A live stream that must be told when the server shuts down."""

    def shutdown(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class WatchService:
    def __init__(self, store: MVCCStore, progress_interval_s: float) -> None:
        self.hub = WatchHub(store, on_work=self._wake)
        self.progress_interval = progress_interval_s
        self.sessions: set[Session] = set()
        self.shutting_down = False
        self._work: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._exit_check: Callable[[], bool] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background tasks (needs the running loop)."""
        if self._tasks:
            return
        self._work = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._catch_up_loop())]
        if self.progress_interval > 0:
            self._tasks.append(loop.create_task(self._progress_loop()))

    def reload(self) -> None:
        """The store was replaced by a snapshot: replay the revisions watchers skipped."""
        self.hub.desync_all()

    def watch_exit(self, should_exit: Callable[[], bool]) -> None:
        """Poll `should_exit` (the HTTP server's flag) and end every stream with a last word when set."""
        self._exit_check = should_exit
        self._tasks.append(asyncio.get_running_loop().create_task(self._exit_loop()))

    def begin_shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        for session in list(self.sessions):
            try:
                session.shutdown()
            except Exception:  # noqa: BLE001 - one broken stream must not keep the others open
                log.exception("stream shutdown failed")

    def stop(self) -> None:
        self.begin_shutdown()
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    def _wake(self) -> None:
        if self._work is not None:
            self._work.set()

    # ------------------------------------------------------------------ loops

    async def _catch_up_loop(self) -> None:
        hub = self.hub
        work = self._work
        assert work is not None
        while True:
            work.clear()
            try:
                while hub.catch_up_step():
                    await asyncio.sleep(0)
            except Exception:  # noqa: BLE001 - keep serving; the next wake retries
                log.exception("watch catch-up failed")
            if hub.unsynced:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(work.wait(), VICTIM_RETRY_S)
            else:
                await work.wait()

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            self.hub.progress_tick()

    async def _exit_loop(self) -> None:
        check = self._exit_check
        assert check is not None
        while not check():
            await asyncio.sleep(0.05)
        self.begin_shutdown()
