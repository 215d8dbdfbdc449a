"""The asyncio runner around the step-driven node (`node_core.NodeCore`): it owns the tasks, the sync
thread and the clock ticks; the node decides everything else.

Inputs (ticks, proposals, peer messages, read-index requests) are fed to the node on the event loop and
wake the loop; the loop runs each Ready's cycle: `begin_ready` (a leader's messages out, WAL writes),
the WAL's `fdatasync` (queued to the kernel through Linux AIO on the real disk, `wal_aio.py`; else the
blocking `durable_io` through `run_io`, by default in one dedicated thread), so the event loop keeps
serving and proposals arriving during a sync are batched into the next Ready (group commit), then
`finish_ready` (a follower's messages, reads, advance), which hands plain committed entries over to be
applied while the next Ready's sync runs; a due log compaction runs the same way.
The simulation (tests/sim) runs this same runner on a virtual-time loop with its own `run_io` (a
simulated disk) and `fatal` (a simulated crash).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from etcdpy.app.server.node_core import (
    CATCH_UP_ENTRIES,
    NodeCallbacks,
    NodeCore,
    ReadyBatch,
    decode_snapshot_record,
    encode_snapshot_record,
)
from etcdpy.raft import Peer
from etcdpy.storage.wal import WAL, WalState

log = logging.getLogger("etcdpy.raft")

# Runs one blocking durability step (an fdatasync, a synced flush) without blocking the event loop.
RunIO = Callable[[Callable[[], None]], Awaitable[None]]
# Called when the member cannot go on (a failed fdatasync, a Ready that cannot be applied).
Fatal = Callable[[str], None]


def exit_process(reason: str) -> None:
    """etcd panics here: stop serving rather than acknowledge anything further (the reason is logged)."""
    os._exit(1)


class RaftNode(NodeCore):
    def __init__(
        self,
        node_id: int,
        wal: WAL,
        wal_state: WalState,
        callbacks: NodeCallbacks,
        *,
        tick_ms: int,
        election_ticks: int,
        snapshot_count: int,
        bootstrap: list[Peer] | None = None,
        rng: random.Random | None = None,
        run_io: RunIO | None = None,
        fatal: Fatal = exit_process,
        catch_up_entries: int = CATCH_UP_ENTRIES,
        waiting: Callable[[], int] | None = None,
        sync_wal: Callable[[], asyncio.Future[None] | None] | None = None,
    ) -> None:
        super().__init__(node_id, wal, wal_state, callbacks, election_ticks=election_ticks,
                         snapshot_count=snapshot_count, bootstrap=bootstrap, rng=rng,
                         catch_up_entries=catch_up_entries)
        self.tick_seconds = tick_ms / 1000
        self._wake = asyncio.Event()
        self.wake = self._wake.set
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self._fatal = fatal
        # fdatasync releases the GIL; one dedicated thread keeps syncs ordered and cheap to hand off.
        self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="wal-sync")
        self._run_io = run_io if run_io is not None else self._in_sync_thread
        # How many client requests wait on the log; with the default I/O, a lone member syncs on the
        # loop's thread while at most one does (_sync_here).
        self._waiting = waiting if run_io is None else None
        # Starts the WAL's sync without the sync thread (kernel AIO, app/server/wal_aio.py), or None.
        self._sync_wal = sync_wal if run_io is None else None

    def _start_sync(self, batch: ReadyBatch) -> Awaitable[None]:
        started = self._sync_wal() if self._sync_wal is not None else None
        return started if started is not None else self._run_io(batch.durable_io)

    def _in_sync_thread(self, io: Callable[[], None]) -> asyncio.Future[None]:
        # A future, not a coroutine: the sync is handed to the thread now, before the caller applies.
        return asyncio.get_running_loop().run_in_executor(self._sync_thread, io)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._tick_loop())]
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    def read_index(self) -> asyncio.Future[Any]:
        """A future done once this member has applied everything committed before the call (ReadIndex).
        A future rather than a coroutine: the caller sets its own deadline on it without a task."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(exc: BaseException | None) -> None:
            if future.done():
                return
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)
        self.request_read(done)
        return future

    # ------------------------------------------------------------------ the loop

    async def _overlapped(self, io: Awaitable[None]) -> None:
        """Run `io` and, while it runs, apply what the last Ready committed."""
        # No yield before the apply: a request arriving now must find this member's state applied
        # (the sync has already been handed to the kernel or to the sync thread).
        task = asyncio.ensure_future(io)
        try:
            self.apply_pending()
        except BaseException:
            # An apply failure stops the member (below); the sync may finish or not, unobserved.
            task.cancel()
            raise
        await task

    def _sync_here(self) -> bool:
        """Whether to sync on the loop's own thread: this member is the whole cluster (no peer waits for
        a heartbeat or an answer while the loop blocks) and at most one request waits, so nothing else
        could use the loop meanwhile. The two thread hand-offs saved (waking the sync thread, then the
        loop) cost a lone writer more than the sync itself (put @1 p50 ~960 -> ~780 us here): on a
        virtual machine each wake-up is an interrupt between CPUs. Under load the sync thread stays,
        so that entries are applied and requests parsed while the disk syncs."""
        return self._waiting is not None and self._waiting() <= 1 and self.alone()

    async def _tick_loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.tick_seconds)
            self.tick()

    async def _run(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            try:
                while (batch := self.begin_ready()) is not None:
                    if batch.needs_sync and self._sync_here():
                        self.apply_pending()
                        batch.durable_io()
                    elif batch.needs_sync:
                        # The previous Ready's entries are applied while the disk syncs.
                        await self._overlapped(self._start_sync(batch))
                    else:
                        self.apply_pending()
                    self.finish_ready(batch, defer_apply=True)
                    compaction = self.begin_compaction()
                    if compaction is not None:
                        await self._run_io(compaction.durable_io)
                        self.finish_compaction(compaction)
                self.apply_pending()
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                # The disk failed a write or a sync (EIO, ENOSPC): what was in flight may or may not be on
                # disk, and after a failed fdatasync the page cache cannot be trusted either (retrying
                # can report success for data that was dropped). Nothing in flight has been
                # acknowledged; stop before anything is, as etcd does.
                log.critical("disk failure persisting raft state, stopping the member: %s", exc)
                self._stopped = True
                self._fatal(f"disk failure: {exc}")
                return
            except Exception:
                # A Ready that cannot be persisted or applied leaves this member in an unknown state;
                # etcd panics here. Stop serving rather than acknowledge anything further.
                log.critical("raft loop failed; stopping the member", exc_info=True)
                self._stopped = True
                self._fatal("raft loop failed")
                return


__all__ = ["RaftNode", "NodeCallbacks", "RunIO", "Fatal", "decode_snapshot_record",
           "encode_snapshot_record"]
