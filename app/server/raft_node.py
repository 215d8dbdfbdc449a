"""Drives the Raft core for one member: the single place where Ready is handled, in Ready's order.

Inputs (ticks, proposals, peer messages, read-index requests) are fed to the RawNode on the event loop
and wake the loop; the loop takes each Ready and, in order: sends a leader's messages (a leader may
replicate while it persists, as etcd's does), persists the hard state, entries and snapshot to the WAL
(one `fdatasync` in a worker thread for everything in the Ready: group commit), sends a follower's
messages (votes and acknowledgements only after what they promise is durable), applies committed entries,
serves read states, and advances. Proposals arriving during a sync are batched into the next Ready.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgpack

from etcdpy.raft import (
    ConfChange,
    ConfChangeV2,
    Config,
    ConfState,
    Entry,
    EntryType,
    ErrProposalDropped,
    HardState,
    MemoryStorage,
    Message,
    Peer,
    RaftError,
    RawNode,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    StateType,
)
from etcdpy.storage.wal import WAL, WalEntry, WalHardState, WalState

log = logging.getLogger("etcdpy.raft")

# Entries kept in the in-memory log after a snapshot, so a briefly lagging follower catches up from the
# log rather than by a whole snapshot (etcd's snapshotCatchUpEntries).
CATCH_UP_ENTRIES = 5000
# Python holds the unsnapshotted log in memory (as etcd's MemoryStorage does). Large entries (txns of many
# puts) would make --snapshot-count entries cost gigabytes, so log bytes bound it too, and the entries
# kept for catching up are bounded by bytes as well as by count.
SNAPSHOT_BYTES = 64 * 1024 * 1024
CATCH_UP_BYTES = 16 * 1024 * 1024
MAX_MSG_BYTES = 1024 * 1024


def encode_snapshot_record(cs: ConfState, db_applied: int) -> bytes:
    """What the WAL's snapshot marker carries: the configuration at the snapshot, and how far the
    database installed with it had applied (a leader's dump may be ahead of the snapshot index)."""
    return msgpack.packb([cs.voters, cs.learners, cs.voters_outgoing, cs.learners_next, cs.auto_leave,
                          db_applied])


def decode_snapshot_record(data: bytes) -> tuple[ConfState, int]:
    if not data:
        return ConfState(), 0
    voters, learners, outgoing, learners_next, auto_leave, db_applied = msgpack.unpackb(data)
    return ConfState(voters, learners, outgoing, learners_next, auto_leave), db_applied


class LiveSnapshotStorage(MemoryStorage):
    """Raft's snapshots made on demand at the applied index, with the configuration as it is now.

    The database a snapshot ships is dumped when it is sent, so it is always current; the metadata must
    be too: a member added after the last log compaction is missing from that compaction's ConfState
    and would refuse it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.node: RaftNode | None = None

    def snapshot(self) -> Snapshot:
        base = super().snapshot()
        node = self.node
        if node is None or node.applied <= base.metadata.index or node.applied < self.first_index() - 1:
            return base
        conf_state = node.raw.status().conf_state
        return Snapshot(b"", SnapshotMetadata(conf_state, node.applied, self.term(node.applied)))


def commits_unpersisted(rd: Ready) -> bool:
    """Whether rd's commit index covers entries that rd itself is persisting. A leader that is a quorum
    on its own (one voter) commits what it appends at once, so its messages announce as committed
    entries a crash before the sync would lose (a learner would apply them): they wait for the sync."""
    return bool(rd.entries) and rd.hard_state is not None and rd.hard_state.commit >= rd.entries[0].index


@dataclass
class NodeCallbacks:
    """What the node needs from the server around it."""

    apply: Callable[[list[Entry]], None]  # committed entries, in order (conf changes included)
    send: Callable[[list[Message]], None]  # hand messages to the transport; never blocks
    install_snapshot: Callable[[Snapshot], int]  # replaces local state; returns the db's applied index
    make_durable: Callable[[], None]  # make MVCC durable up to the applied index (before log compaction)
    on_leader_change: Callable[[int, int], None]  # (leader id, term)
    dropped: Callable[[list[bytes]], None]  # proposals Raft refused (no leader, transfer in progress)


class RaftNode:
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
    ) -> None:
        self.id = node_id
        self.wal = wal
        self.cb = callbacks
        self.tick_seconds = tick_ms / 1000
        self.election_ticks = election_ticks
        self.snapshot_count = snapshot_count
        self.storage = LiveSnapshotStorage()
        self.snapshot_index = wal_state.snapshot_index
        if wal_state.snapshot_index:
            meta = SnapshotMetadata(decode_snapshot_record(wal_state.snapshot_data)[0],
                                    wal_state.snapshot_index, wal_state.snapshot_term)
            self.storage.apply_snapshot(Snapshot(b"", meta))
        if wal_state.entries:
            self.storage.append([Entry(e.term, e.index, EntryType(e.type), e.data)
                                 for e in wal_state.entries])
        hs = wal_state.hard_state
        if hs.term or hs.vote or hs.commit:
            self.storage.set_hard_state(HardState(hs.term, hs.vote, hs.commit))
        config = Config(
            id=node_id,
            storage=self.storage,
            election_tick=election_ticks,
            heartbeat_tick=1,
            # Raft re-delivers everything after the last snapshot; the applier skips what MVCC already
            # holds, and conf changes are re-applied so Raft's configuration is rebuilt.
            applied=wal_state.snapshot_index,
            max_size_per_msg=MAX_MSG_BYTES,
            max_inflight_msgs=256,
            check_quorum=True,
            pre_vote=True,
            rng=random.Random(node_id ^ random.getrandbits(32)),
        )
        self.raw = RawNode(config)
        self.storage.node = self
        if bootstrap:
            self.raw.bootstrap(bootstrap)
        self.leader = 0
        self.term = hs.term
        self.role = StateType.FOLLOWER
        self.applied = wal_state.snapshot_index
        self._proposals: list[bytes] = []
        self._wake = asyncio.Event()
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self._read_ctx = itertools.count(1)
        self._read_waiting: list[asyncio.Future[None]] = []  # not yet part of a read-index request
        self._read_inflight: tuple[bytes, list[asyncio.Future[None]], int] | None = None  # ctx, waiters, tick
        self._read_ready: list[tuple[int, list[asyncio.Future[None]]]] = []  # (read index, waiters)
        self._ticks = 0
        self._campaign_alone = True
        self._bytes_since_snapshot = sum(len(e.data) for e in wal_state.entries)
        # fdatasync releases the GIL; one dedicated thread keeps syncs ordered and cheap to hand off.
        self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="wal-sync")

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

    # ------------------------------------------------------------------ inputs

    def propose(self, data: bytes) -> None:
        self._proposals.append(data)
        self._wake.set()

    def step(self, msg: Message) -> None:
        try:
            self.raw.step(msg)
        except RaftError as exc:
            log.debug("dropped message %s from %d: %s", msg.type.name, msg.frm, exc)
            return
        self._wake.set()

    def propose_conf_change(self, cc: ConfChange | ConfChangeV2) -> None:
        self.raw.propose_conf_change(cc)
        self._wake.set()

    def apply_conf_change(self, cc: ConfChange | ConfChangeV2) -> ConfState:
        return self.raw.apply_conf_change(cc)

    def transfer_leader(self, transferee: int) -> None:
        self.raw.transfer_leader(transferee)
        self._wake.set()

    def report_unreachable(self, peer: int) -> None:
        self.raw.report_unreachable(peer)

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.raw.report_snapshot(peer, SnapshotStatus.FINISH if ok else SnapshotStatus.FAILURE)
        self._wake.set()

    def fail_reads(self, exc: Exception) -> None:
        """Fail every read waiting for a read index (etcd answers them 'leader changed')."""
        waiting = list(self._read_waiting)
        if self._read_inflight is not None:
            waiting += self._read_inflight[1]
        for _, waiters in self._read_ready:
            waiting += waiters
        self._read_waiting, self._read_inflight, self._read_ready = [], None, []
        for fut in waiting:
            if not fut.done():
                fut.set_exception(exc)

    async def read_index(self) -> None:
        """Return once this member has applied everything committed before the call (ReadIndex).

        Concurrent callers share one read-index round trip to the leader.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read_waiting.append(future)
        self._wake.set()
        await future

    # ------------------------------------------------------------------ the loop

    async def _tick_loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.tick_seconds)
            self._ticks += 1
            self.raw.tick()
            self._retry_stale_read()
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._feed()
                self._maybe_campaign_alone()
                while self.raw.has_ready():
                    rd = self.raw.ready()
                    await self._handle(rd)
                    self.raw.advance(rd)
                    self._feed()
                    self._maybe_campaign_alone()
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                # The disk failed a write or a sync (EIO, ENOSPC): what was in flight may or may not be on
                # disk, and after a failed fdatasync the page cache cannot be trusted either (retrying
                # can report success for data that was dropped). Nothing in flight has been
                # acknowledged; stop before anything is, as etcd does.
                log.critical("disk failure persisting raft state, stopping the member: %s", exc)
                os._exit(1)
            except Exception:
                # A Ready that cannot be persisted or applied leaves this member in an unknown state;
                # etcd panics here. Stop serving rather than acknowledge anything further.
                log.critical("raft loop failed; stopping the member", exc_info=True)
                os._exit(1)

    def _maybe_campaign_alone(self) -> None:
        """A one-member cluster need not wait out an election timeout before it leads. Raft refuses to
        campaign while committed conf changes are unapplied, so this waits until the log on disk has
        been applied (and the configuration is known); a restart with nothing to apply campaigns at once."""
        if self._campaign_alone and self.applied >= self.commit_index:
            self._campaign_alone = False
            if self.raw.status().conf_state.voters == [self.id]:
                self.raw.campaign()

    def _feed(self) -> None:
        if self._proposals:
            batch, self._proposals = self._proposals, []
            try:
                self.raw.propose_many(batch)
            except ErrProposalDropped:
                self.cb.dropped(batch)
        if self._read_waiting and self._read_inflight is None:
            ctx = next(self._read_ctx).to_bytes(8, "big")
            self._read_inflight = (ctx, self._read_waiting, self._ticks)
            self._read_waiting = []
            self.raw.read_index(ctx)

    def _retry_stale_read(self) -> None:
        # A read-index request is lost silently when there is no leader or the leader changes; ask
        # again after an election timeout (the callers keep waiting, up to their own deadline).
        if self._read_inflight is not None and self._ticks - self._read_inflight[2] > self.election_ticks:
            _, waiters, _ = self._read_inflight
            self._read_inflight = None
            self._read_waiting = waiters + self._read_waiting

    async def _handle(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            self.role = rd.soft_state.raft_state
            if rd.soft_state.lead != self.leader:
                self.leader = rd.soft_state.lead
                self.cb.on_leader_change(self.leader, self.raw.raft.term)
        if rd.hard_state is not None:
            self.term = rd.hard_state.term
        sent = False
        if self.role == StateType.LEADER and rd.messages and not commits_unpersisted(rd):
            self.cb.send(rd.messages)
            sent = True
        if rd.snapshot is not None:
            db_applied = self.cb.install_snapshot(rd.snapshot)
            md = rd.snapshot.metadata
            self.wal.save_snapshot(md.index, md.term, encode_snapshot_record(md.conf_state, db_applied))
            self.snapshot_index = md.index
        if rd.entries or rd.hard_state is not None:
            hs = rd.hard_state
            self.wal.append(
                [WalEntry(e.index, e.term, int(e.type), e.data) for e in rd.entries],
                WalHardState(hs.term, hs.vote, hs.commit) if hs is not None else None,
            )
        if rd.must_sync or rd.snapshot is not None:
            await asyncio.get_running_loop().run_in_executor(self._sync_thread, self.wal.sync)
        if rd.snapshot is not None:
            self.storage.apply_snapshot(rd.snapshot)
            self.applied = max(self.applied, rd.snapshot.metadata.index)
        if rd.entries:
            self.storage.append(rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        if not sent and rd.messages:
            self.cb.send(rd.messages)
        if rd.committed_entries:
            self.cb.apply(rd.committed_entries)
            self.applied = rd.committed_entries[-1].index
            self._bytes_since_snapshot += sum(len(e.data) for e in rd.committed_entries)
        self._serve_reads(rd)
        self._maybe_compact_log()

    def _serve_reads(self, rd: Ready) -> None:
        inflight = self._read_inflight
        for rs in rd.read_states:
            if inflight is not None and rs.request_ctx == inflight[0]:
                self._read_ready.append((rs.index, inflight[1]))
                self._read_inflight = inflight = None
        if self._read_ready:
            still: list[tuple[int, list[asyncio.Future[None]]]] = []
            for index, waiters in self._read_ready:
                if index <= self.applied:
                    for fut in waiters:
                        if not fut.done():
                            fut.set_result(None)
                else:
                    still.append((index, waiters))
            self._read_ready = still

    def _maybe_compact_log(self) -> None:
        entries = self.applied - self.snapshot_index
        if entries < self.snapshot_count and self._bytes_since_snapshot < SNAPSHOT_BYTES:
            return
        average = self._bytes_since_snapshot / max(1, entries)
        keep = int(min(CATCH_UP_ENTRIES, max(100, CATCH_UP_BYTES // max(1.0, average))))
        index = self.applied
        self.cb.make_durable()
        conf_state = self.raw.status().conf_state
        snap = self.storage.create_snapshot(index, conf_state, b"")
        self.wal.save_snapshot(index, snap.metadata.term, encode_snapshot_record(conf_state, index))
        self.wal.sync()
        self.wal.release_to(index)
        compact_to = index - keep
        if compact_to > self.storage.first_index():
            self.storage.compact(compact_to)
        self.snapshot_index = index
        self._bytes_since_snapshot = 0
        log.info("log compacted: snapshot at index %d", index)

    # ------------------------------------------------------------------ introspection

    @property
    def is_leader(self) -> bool:
        return self.role == StateType.LEADER

    @property
    def commit_index(self) -> int:
        return self.raw.raft.raft_log.committed
