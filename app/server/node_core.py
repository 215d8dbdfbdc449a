"""The step-driven Raft node of one member: inputs in, the I/O to do out, never awaiting, never blocking.

`NodeCore` wraps the pure `RawNode` with what a member adds around it (the WAL, the in-memory log, the
applier callbacks, read-index waiters, log compaction), in the shape of etcd's raft node + etcdserver
raftNode split. Inputs are plain calls: `tick()`, `step(msg)`, `propose(data)`, `propose_conf_change`,
`read_index(done)`, … each records the input and calls `wake` (the runner's hook; nothing runs here).

A runner drives the Ready cycle, in three steps, so the one blocking part can run wherever it likes:

1. `begin_ready()` takes the next Ready and does everything that must happen before the sync, in etcd's
   order: a leader's messages go out at once (a leader replicates while it persists), a received
   snapshot's marker, the hard state and entries are written to the WAL (unsynced).
2. `ReadyBatch.durable_io()` is the blocking part: one `fdatasync` for the whole Ready (group commit),
   only when Raft asks for it. The asyncio runner (`raft_node.RaftNode`) runs it in a dedicated thread;
   the simulation runs it on its simulated disk.
3. `finish_ready(batch)` does what may happen only once the Ready is durable: a received snapshot's
   database is swapped in, the in-memory log and hard state, a follower's messages (votes and
   acknowledgements promise durability), committed entries to the applier, read states, `advance`.

Log compaction is the same shape: `begin_compaction()` / `Compaction.durable_io()` (RocksDB's synced
flush, the WAL's snapshot marker and its sync) / `finish_compaction()`. `process_ready()` runs a whole
cycle synchronously, for drivers with nothing to overlap. Nothing here reads a clock or touches asyncio:
ticks are counted, and randomness (election timeouts) comes from an injected `random.Random`.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
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

# A read-index waiter: called once, with None when the read may proceed or the error that fails it.
ReadWaiter = Callable[[BaseException | None], None]


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
        self.node: NodeCore | None = None

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
    snapshot_applied: Callable[[Snapshot], int]  # the applied index of the db arriving with a snapshot
    install_snapshot: Callable[[Snapshot], int]  # replaces local state; returns the db's applied index
    make_durable: Callable[[], None]  # make MVCC durable up to the applied index (before log compaction)
    on_leader_change: Callable[[int, int], None]  # (leader id, term)
    dropped: Callable[[list[bytes]], None]  # proposals Raft refused (no leader, transfer in progress)


@dataclass
class ReadyBatch:
    """One Ready between `begin_ready` and `finish_ready`; `durable_io` is its blocking part."""

    ready: Ready
    sent: bool  # a leader's messages already went out
    needs_sync: bool
    wal: WAL

    def durable_io(self) -> None:
        if self.needs_sync:
            self.wal.sync()


@dataclass
class Compaction:
    """A log compaction between `begin_compaction` and `finish_compaction`."""

    index: int
    term: int
    record: bytes
    keep: int
    wal: WAL
    make_durable: Callable[[], None]

    def durable_io(self) -> None:
        # The database must hold everything up to `index` before the WAL says it need not replay it.
        self.make_durable()
        self.wal.save_snapshot(self.index, self.term, self.record)
        self.wal.sync()


class NodeCore:
    def __init__(
        self,
        node_id: int,
        wal: WAL,
        wal_state: WalState,
        callbacks: NodeCallbacks,
        *,
        election_ticks: int,
        snapshot_count: int,
        bootstrap: list[Peer] | None = None,
        rng: random.Random | None = None,
        catch_up_entries: int = CATCH_UP_ENTRIES,
    ) -> None:
        self.id = node_id
        self.wal = wal
        self.cb = callbacks
        self.election_ticks = election_ticks
        self.snapshot_count = snapshot_count
        self.catch_up_entries = catch_up_entries
        self.wake: Callable[[], None] = lambda: None  # set by the runner: there is work for the Ready loop
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
            # A snapshot is committed by definition; a hard state written with it may have been lost
            # (the record after the snapshot marker in a torn WAL tail).
            commit = max(hs.commit, wal_state.snapshot_index)
            self.storage.set_hard_state(HardState(hs.term, hs.vote, commit))
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
            rng=rng if rng is not None else random.Random(node_id ^ random.getrandbits(32)),
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
        self._read_ctx = itertools.count(1)
        self._read_waiting: list[ReadWaiter] = []  # not yet part of a read-index request
        self._read_inflight: tuple[bytes, list[ReadWaiter], int] | None = None  # ctx, waiters, tick
        self._read_ready: list[tuple[int, list[ReadWaiter]]] = []  # (read index, waiters)
        self._ticks = 0
        self._pending_apply: list[Entry] = []  # committed, handed over by finish_ready, not yet applied
        self._campaign_alone = True
        self._bytes_since_snapshot = sum(len(e.data) for e in wal_state.entries)

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        self._ticks += 1
        self.raw.tick()
        self._retry_stale_read()
        self.wake()

    def propose(self, data: bytes) -> None:
        # Batched: everything proposed before the next Ready (e.g. during a sync) goes in one append.
        self._proposals.append(data)
        self.wake()

    def step(self, msg: Message) -> None:
        try:
            self.raw.step(msg)
        except RaftError as exc:
            log.debug("dropped message %s from %d: %s", msg.type.name, msg.frm, exc)
            return
        self.wake()

    def propose_conf_change(self, cc: ConfChange | ConfChangeV2) -> None:
        self.raw.propose_conf_change(cc)
        self.wake()

    def apply_conf_change(self, cc: ConfChange | ConfChangeV2) -> ConfState:
        return self.raw.apply_conf_change(cc)

    def transfer_leader(self, transferee: int) -> None:
        self.raw.transfer_leader(transferee)
        self.wake()

    def report_unreachable(self, peer: int) -> None:
        self.raw.report_unreachable(peer)

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.raw.report_snapshot(peer, SnapshotStatus.FINISH if ok else SnapshotStatus.FAILURE)
        self.wake()

    def request_read(self, done: ReadWaiter) -> None:
        """Call `done(None)` once this member has applied everything committed before the call
        (ReadIndex). Concurrent callers share one read-index round trip to the leader."""
        self._read_waiting.append(done)
        self.wake()

    def fail_reads(self, exc: BaseException) -> None:
        """Fail every read waiting for a read index (etcd answers them 'leader changed')."""
        waiting = list(self._read_waiting)
        if self._read_inflight is not None:
            waiting += self._read_inflight[1]
        for _, waiters in self._read_ready:
            waiting += waiters
        self._read_waiting, self._read_inflight, self._read_ready = [], None, []
        for done in waiting:
            done(exc)

    # ------------------------------------------------------------------ the Ready cycle

    def begin_ready(self) -> ReadyBatch | None:
        """Feed pending inputs and take the next Ready, doing its part before the sync; None if idle."""
        self._feed()
        self._maybe_campaign_alone()
        if not self.raw.has_ready():
            return None
        rd = self.raw.ready()
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
            # etcd's order: the snapshot is recorded durably first and the database swapped in only
            # after the sync (finish_ready); a crash in between installs it at start-up. Swapping first
            # would leave a database ahead of its log if the crash came before the sync.
            md = rd.snapshot.metadata
            db_applied = self.cb.snapshot_applied(rd.snapshot)
            self.wal.save_snapshot(md.index, md.term, encode_snapshot_record(md.conf_state, db_applied))
            self.snapshot_index = md.index
        if rd.entries or rd.hard_state is not None:
            hs = rd.hard_state
            self.wal.append(
                [WalEntry(e.index, e.term, int(e.type), e.data) for e in rd.entries],
                WalHardState(hs.term, hs.vote, hs.commit) if hs is not None else None,
            )
        return ReadyBatch(rd, sent, rd.must_sync or rd.snapshot is not None, self.wal)

    def finish_ready(self, batch: ReadyBatch, defer_apply: bool = False) -> None:
        """The Ready is durable: update the in-memory log, send, apply, serve reads, advance.

        With `defer_apply`, plain committed entries are only queued, for `apply_pending` to apply while
        the next Ready's sync runs (etcd too applies beside its raft loop). Raft's own applied index
        moves on at `advance`, so anything that must be applied before Raft goes on (a conf change,
        a snapshot) is applied here, after whatever is queued; reads wait for the real apply."""
        rd = batch.ready
        defer = defer_apply and all(e.type == EntryType.NORMAL for e in rd.committed_entries)
        if self._pending_apply and (rd.snapshot is not None or not defer):
            self.apply_pending()
        if rd.snapshot is not None:
            self.cb.install_snapshot(rd.snapshot)
            self.storage.apply_snapshot(rd.snapshot)
            self.applied = max(self.applied, rd.snapshot.metadata.index)
        if rd.entries:
            self.storage.append(rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        if not batch.sent and rd.messages:
            self.cb.send(rd.messages)
        if rd.committed_entries:
            if defer:
                self._pending_apply.extend(rd.committed_entries)
            else:
                self._apply(rd.committed_entries)
        self._take_read_states(rd)
        self._serve_reads()
        self.raw.advance(rd)

    def alone(self) -> bool:
        """This member is the cluster's only member (no other voter, no learner)."""
        return len(self.raw.raft.prs.progress) == 1

    def apply_pending(self) -> None:
        """Apply the committed entries `finish_ready` queued, and serve the reads waiting for them."""
        if self._pending_apply:
            entries, self._pending_apply = self._pending_apply, []
            self._apply(entries)
            self._serve_reads()

    def _apply(self, entries: list[Entry]) -> None:
        self.cb.apply(entries)
        self.applied = entries[-1].index
        self._bytes_since_snapshot += sum(len(e.data) for e in entries)

    def begin_compaction(self) -> Compaction | None:
        """A log compaction, if the log has grown past --snapshot-count entries (or SNAPSHOT_BYTES)."""
        # Judged with the queued entries counted as applied: applying them here, after every Ready,
        # would take them away from the next Ready's sync, which they are queued to overlap.
        pending = self._pending_apply
        entries = (pending[-1].index if pending else self.applied) - self.snapshot_index
        pending_bytes = sum(len(e.data) for e in pending)
        if entries < self.snapshot_count and self._bytes_since_snapshot + pending_bytes < SNAPSHOT_BYTES:
            return None
        self.apply_pending()  # the snapshot index must be applied, not only handed over
        entries = self.applied - self.snapshot_index
        average = self._bytes_since_snapshot / max(1, entries)
        keep = int(min(self.catch_up_entries, max(100, CATCH_UP_BYTES // max(1.0, average))))
        index = self.applied
        conf_state = self.raw.status().conf_state
        snap = self.storage.create_snapshot(index, conf_state, b"")
        return Compaction(index, snap.metadata.term, encode_snapshot_record(conf_state, index), keep,
                          self.wal, self.cb.make_durable)

    def finish_compaction(self, c: Compaction) -> None:
        self.wal.release_to(c.index)
        compact_to = c.index - c.keep
        if compact_to > self.storage.first_index():
            self.storage.compact(compact_to)
        self.snapshot_index = c.index
        self._bytes_since_snapshot = 0
        log.info("log compacted: snapshot at index %d", c.index)

    def process_ready(self) -> bool:
        """One whole cycle, synchronously (Ready, then a due compaction); False if there was nothing."""
        batch = self.begin_ready()
        if batch is None:
            return False
        batch.durable_io()
        self.finish_ready(batch)
        compaction = self.begin_compaction()
        if compaction is not None:
            compaction.durable_io()
            self.finish_compaction(compaction)
        return True

    # ------------------------------------------------------------------ internals

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

    def _take_read_states(self, rd: Ready) -> None:
        inflight = self._read_inflight
        for rs in rd.read_states:
            if inflight is not None and rs.request_ctx == inflight[0]:
                self._read_ready.append((rs.index, inflight[1]))
                self._read_inflight = inflight = None

    def _serve_reads(self) -> None:
        if self._read_ready:
            still: list[tuple[int, list[ReadWaiter]]] = []
            for index, waiters in self._read_ready:
                if index <= self.applied:
                    for done in waiters:
                        done(None)
                else:
                    still.append((index, waiters))
            self._read_ready = still

    # ------------------------------------------------------------------ introspection

    @property
    def is_leader(self) -> bool:
        return self.role == StateType.LEADER

    @property
    def commit_index(self) -> int:
        return self.raw.raft.raft_log.committed
