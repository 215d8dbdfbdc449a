"""Watch and lease service of one member: the hub, the lessor, and the background work that drives them.

The pure step methods (`WatchHub.catch_up_step`, `WatchHub.progress_tick`, `Lessor.expired`,
`Lessor.due_checkpoints`) are scheduled here by asyncio tasks:

- catch-up of unsynced watchers and victims, woken whenever there is work (and every 10 ms while a
  watcher waits for its stream to drain);
- etcd's progress ticker (`--experimental-watch-progress-notify-interval`, default 10 m);
- lease expiry: the primary proposes a revoke for every expired lease (checked every 500 ms, as etcd);
- lease checkpoints: remaining TTLs recorded in the log every 5 minutes, so a new primary continues them.

Streams (HTTP, WebSocket, SSE) register a `Session` so a shutdown can end each one with a last word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.watch_encode import Encoder
from storage.lessor import LeaseCheckpointRequest, LeaseRevokeRequest, Lessor
from storage.watch_hub import WatchHub

if TYPE_CHECKING:
    from app.server import EtcdServer

log = logging.getLogger("etcdpy.watch")

LEASE_REVOKE_INTERVAL_S = 0.5
LEASE_CHECKPOINT_INTERVAL_S = 300.0  # etcd's default lease checkpoint interval
VICTIM_RETRY_S = 0.01

class Session:
    """A live stream that must be told when the server shuts down."""

    def shutdown(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class WatchService:
    def __init__(self, server: EtcdServer) -> None:
        self.server = server
        self.hub = WatchHub(server.store)
        self.lessor: Lessor = server.applier.lessor
        # etcd's minimum lease TTL: 1.5 election timeouts (in heartbeat ticks), rounded up to seconds.
        cfg = server.config
        ticks = max(1, cfg.election_timeout // max(1, cfg.heartbeat_interval))
        self.min_ttl = max(1, math.ceil((3 * ticks) // 2 * cfg.heartbeat_interval / 1000))
        self.lessor.min_ttl = self.min_ttl
        server.applier.on_events = self.hub.notify
        self.encoder = Encoder(server)
        self.progress_interval = server.config.watch_progress_notify_interval_s
        self.checkpoint_interval = LEASE_CHECKPOINT_INTERVAL_S
        self.sessions: set[Session] = set()
        self.shutting_down = False
        self._work: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._exit_check: Callable[[], bool] | None = None
        self.hub.on_work = self._wake

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background tasks (needs the running loop). The lessor acts as primary only while
        this member leads: the server promotes and demotes it on leader changes."""
        if self._tasks:
            return
        self._work = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._catch_up_loop()), loop.create_task(self._lease_loop())]
        if self.progress_interval > 0:
            self._tasks.append(loop.create_task(self._progress_loop()))

    def reload(self) -> None:
        """The store was replaced by a snapshot: re-read leases, replay skipped revisions to watchers."""
        primary = self.lessor.primary
        self.lessor = Lessor(self.server.store, self.min_ttl)
        self.server.applier.lessor = self.lessor
        if primary:
            self.lessor.promote(time.monotonic())
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

    async def _lease_loop(self) -> None:
        last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_REVOKE_INTERVAL_S)
            now = time.monotonic()
            for lease_id in self.lessor.expired(now):
                self.spawn_proposal(LeaseRevokeRequest(lease_id))
            if now - last_checkpoint >= min(self.checkpoint_interval, 60.0):
                last_checkpoint = now
                due = self.lessor.due_checkpoints(now, self.checkpoint_interval)
                if due:
                    await self._propose_quietly(LeaseCheckpointRequest(due))

    def spawn_proposal(self, cmd: Any) -> None:
        """Propose `cmd` in the background, ignoring failures (checkpoints, expiry revokes)."""
        asyncio.get_running_loop().create_task(self._propose_quietly(cmd))

    async def _propose_quietly(self, cmd: Any) -> None:
        try:
            await self.server.propose(cmd)
        except Exception as exc:  # noqa: BLE001 - a lost revoke is proposed again after a retry interval
            log.debug("background proposal %r failed: %s", cmd, exc)
