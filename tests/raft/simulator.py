"""A seeded, deterministic cluster simulator for the Raft core, with invariant checks.

Fake clock (ticks), fake network (drop, delay, duplicate, reorder, symmetric and one-way
partitions), client proposals and reads, membership changes and leadership transfers. Each
node is driven the way app/server/node_core.py drives the real one: a leader sends a Ready's messages
before persisting it, everyone else after; writes go to a simulated disk (sim_disk.py) that is
synced only when Ready.must_sync asks, and a crash (at random, or at any point of Ready
handling) loses a random suffix of the unsynced writes. Restarts rebuild Raft from that disk.
The state machine is a hash chain over the applied entries; snapshots carry it as their data.

Safety invariants are checked after every step: one leader per term; log matching; committed
entries never change; applied entries are committed and every state machine agrees; leader
completeness (every leader of a term at or above an entry's commit term holds it, checked
continuously); no voter lacking a committed entry could win an election (in runs with a fixed
configuration); a node keeps what it acknowledged while its term lasts; every snapshot's index,
term and content agree with the committed log; term and granted vote never go back, across
restarts too; reads are linearizable. Liveness is checked after the faults heal.

New leaders are sometimes crashed or cut off at once (SimOptions.leader_faults), some of them
later talking again while still deaf: the histories of the paper's Figure 8 and of stale leaders.

Run one case by hand: SEED=123 N=5 pytest tests/raft/test_simulation.py -k repro
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from etcdpy.app.server.node_core import commits_unpersisted
from etcdpy.raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    Config,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    Peer,
    RawNode,
    Ready,
    Snapshot,
    SnapshotStatus,
    StateType,
    conf_change_from_entry,
)
from etcdpy.raft.errors import ErrConfChangeInvalid, ErrProposalDropped, ErrSnapOutOfDate
from tests.raft.sim_disk import SimDisk

MT = MessageType


class InvariantViolation(AssertionError):
    pass


@dataclass
class SimOptions:
    n: int = 3
    chaos_ticks: int = 300
    heal_ticks: int = 200
    drop: float = 0.05
    dup: float = 0.03
    max_delay: int = 3
    crash: float = 0.01
    restart: float = 0.03
    partition: float = 0.01
    pre_vote: bool = True
    check_quorum: bool = True
    conf_changes: bool = False
    transfers: bool = False
    compact_every: int = 15
    max_size_per_msg: int = 0
    max_inflight: int = 8
    election_tick: int = 10
    # Chance that a newly elected leader is crashed or cut off within a few ticks: the histories of
    # Figure 8 (leaders that replicated their first entries to few or none) and of stale leaders.
    leader_faults: float = 0.0


class SimStorage(MemoryStorage):
    """The log Raft reads, with snapshot() taken on demand at the driver's applied index.

    That is what etcd's server does when it sends a snapshot (it snapshots its current state, here
    the state machine's hash chain), and it keeps a member added after the last compaction from
    receiving a snapshot whose ConfState does not name it.
    """

    def __init__(self, node: SimNode) -> None:
        super().__init__()
        self.node = node

    def snapshot(self) -> Snapshot:
        n = self.node
        if self.snap.metadata.index < n.applied_index <= self.last_index():
            self.create_snapshot(n.applied_index, _copy_cs(n.conf_state), n.digest)
        return self.snap


@dataclass
class SimNode:
    id: int
    disk: SimDisk = field(default_factory=SimDisk)
    storage: SimStorage = field(init=False)
    rn: RawNode | None = None
    conf_state: ConfState = field(default_factory=ConfState)
    applied_index: int = 0
    # The state machine: a hash chain over every applied entry (what a snapshot carries).
    digest: bytes = b""
    role: StateType = StateType.FOLLOWER
    removed: bool = False
    # Has been part of a configuration (so leaving the leader's configuration means it was removed).
    was_member: bool = False
    # What this node told the network, which it must remember across a crash: the highest term it
    # sent (pre-vote messages aside) and the last vote it cast or asked for, as (term, candidate).
    revealed_term: int = 0
    vote_cast: tuple[int, int] = (0, 0)
    # The last entry it acknowledged to a leader, as (term of the acknowledgement, index, entry term):
    # the leader counts on it staying in the log for as long as the term lasts.
    acked: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        self.storage = SimStorage(self)


class Simulator:
    def __init__(self, seed: int, opts: SimOptions) -> None:
        self.seed = seed
        self.opts = opts
        self.rng = random.Random(seed)
        self.now = 0
        self.nodes: dict[int, SimNode] = {}
        # (deliver_at, seq, message)
        self.network: list[tuple[int, int, Message]] = []
        self.seq = 0
        # Directed links that drop everything: (from, to).
        self.cuts: set[tuple[int, int]] = set()
        self.faults = True
        self.next_id = opts.n + 1
        self.proposal_seq = 0
        # -- invariant state --
        self.leaders: dict[int, int] = {}  # term -> leader id
        # (index, term) -> (type, data, prev_term): log matching, checked inductively.
        self.entries_seen: dict[tuple[int, int], tuple[int, bytes, int]] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        # index -> term of the first node seen committing it: at least the term of the leader that
        # committed it, so every leader of this term or later must hold the entry.
        self.commit_term: dict[int, int] = {}
        self.applied: dict[int, tuple[int, bytes]] = {}  # index -> (term, data): state machine
        self.digests: dict[int, bytes] = {}  # index -> state machine hash chain after applying it
        self.max_committed = 0
        # (leader id, term) -> highest committed index checked for leader completeness.
        self.completeness_checked: dict[tuple[int, int], int] = {}
        # Pending leader faults: (tick, node id, term).
        self.leader_hits: list[tuple[int, int, int]] = []
        # Isolated nodes whose outgoing links come back at a tick: (tick, node id).
        self.speak_again: list[tuple[int, int]] = []
        # read ctx -> highest commit index observed anywhere when the read was issued.
        self.reads: dict[bytes, int] = {}
        self.trace: list[str] = []
        # How often each kind of event happened: lets tests prove the faults are really injected.
        self.stats: Counter[str] = Counter()
        for i in range(1, opts.n + 1):
            self._create_node(i, bootstrap=[Peer(j) for j in range(1, opts.n + 1)])

    # -- helpers ------------------------------------------------------------------------

    def violation(self, msg: str) -> InvariantViolation:
        tail = "\n".join(self.trace[-25:])
        return InvariantViolation(
            f"{msg}\n  seed={self.seed} n={self.opts.n} tick={self.now}\n"
            f"  reproduce: SEED={self.seed} N={self.opts.n} pytest tests/raft/test_simulation.py -k repro\n"
            f"  options: {self.opts}\n"
            f"  last events:\n{tail}")

    def fail(self, msg: str) -> None:
        raise self.violation(msg)

    def log(self, s: str, kind: str = "") -> None:
        if kind:
            self.stats[kind] += 1
        self.trace.append(f"[{self.now}] {s}")
        if len(self.trace) > 200:
            del self.trace[:100]

    def _config(self, id_: int, storage: MemoryStorage, applied: int) -> Config:
        o = self.opts
        return Config(id=id_, storage=storage, election_tick=o.election_tick, heartbeat_tick=1,
                      applied=applied, pre_vote=o.pre_vote, check_quorum=o.check_quorum,
                      max_size_per_msg=o.max_size_per_msg, max_inflight_msgs=o.max_inflight,
                      rng=random.Random(self.rng.getrandbits(32)))

    def _create_node(self, id_: int, bootstrap: list[Peer] | None) -> None:
        node = SimNode(id_)
        node.rn = RawNode(self._config(id_, node.storage, 0))
        if bootstrap:
            node.rn.bootstrap(bootstrap)
        self.nodes[id_] = node
        if bootstrap:
            self.handle_ready(node, allow_crash=False)

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.rn is not None]

    def leader(self) -> SimNode | None:
        best = None
        for n in self.live():
            assert n.rn is not None
            r = n.rn.raft
            if r.state == StateType.LEADER and (best is None or r.term > best.rn.raft.term):  # type: ignore[union-attr]
                best = n
        return best

    # -- invariants ----------------------------------------------------------------------

    def observe(self, node: SimNode) -> None:
        """Check role invariants after node changed state."""
        if node.rn is None:
            return
        r = node.rn.raft
        if r.term < node.revealed_term:
            self.fail(f"node {node.id} is at term {r.term} after sending messages of term "
                      f"{node.revealed_term}: its term went back")
        if r.state != StateType.LEADER:
            if node.acked[0] == r.term:
                self._check_acked_entry_kept(node)
            return
        other = self.leaders.get(r.term)
        if other is None:
            self.leaders[r.term] = node.id
            self.log(f"{node.id} became leader at term {r.term}", "leader")
            if self.faults and self.rng.random() < self.opts.leader_faults:
                delay = self.rng.randrange(3)
                if delay == 0:
                    # Before it replicated anything: its first entries stay on its own disk.
                    self._isolate(node.id, "new leader")
                else:
                    self.leader_hits.append((self.now + delay, node.id, r.term))
        elif other != node.id:
            self.fail(f"two leaders in term {r.term}: {other} and {node.id}")
        self._check_leader_completeness(node)

    def _check_acked_entry_kept(self, node: SimNode) -> None:
        """A node keeps every entry it acknowledged for as long as it stays in that term: the leader's
        match index (and so its commit index) relies on it, across crashes too."""
        assert node.rn is not None
        r = node.rn.raft
        term, index, entry_term = node.acked
        if r.term != term or entry_term == 0:
            return
        rl = r.raft_log
        if index < rl.first_index():
            return  # covered by a snapshot, checked against the committed log
        got = rl.zero_term_on_compacted(index)
        if got != entry_term:
            self.fail(f"node {node.id} acknowledged entry {index} (term {entry_term}) in term {term} and, "
                      f"still in term {term}, now has {'nothing' if got == 0 else f'term {got}'} there")

    def _check_leader_completeness(self, node: SimNode) -> None:
        """Every leader holds every entry committed in its term or earlier (incrementally: each
        (leader, term) checks each committed index once, as soon as both exist)."""
        assert node.rn is not None
        r = node.rn.raft
        key = (node.id, r.term)
        done = self.completeness_checked.get(key, 0)
        if done >= self.max_committed:
            return
        rl = r.raft_log
        # Below the log's first index the entries are covered by the snapshot, whose index, term
        # and content were checked against the committed log when it was made or received.
        snap_index = rl.first_index() - 1
        for i in range(done + 1, self.max_committed + 1):
            want = self.committed.get(i)
            if want is not None:
                if self.commit_term[i] > r.term:
                    break  # committed by a later leader than this (stale) one
                if i >= snap_index:
                    got = rl.term(i)
                    if got != want[0]:
                        self.fail(f"leader completeness: leader {node.id} (term {r.term}) has term {got} at "
                                  f"index {i}, committed with term {want[0]} (in term {self.commit_term[i]})")
            done = i
        self.completeness_checked[key] = done

    def _log_views(self, node: SimNode) -> list[tuple[int, int, bool]]:
        """(last index, last term, holds the newest committed entry) of each log the node could vote
        or campaign with: its log now, and (if running) what a crash losing every unsynced write leaves."""
        m = self.max_committed
        m_term = self.committed[m][0]
        views = []
        if node.rn is not None:
            rl = node.rn.raft.raft_log
            snap_index = rl.first_index() - 1
            views.append((rl.last_index(), rl.last_term(), m <= snap_index or rl.term(m) == m_term))
        d = node.disk
        snap_md = d.snapshot.metadata
        last = d.entries[-1] if d.entries else None
        held = m <= snap_md.index or (last is not None and last.index >= m
                                      and d.entries[m - snap_md.index - 1].term == m_term)
        if last is None:
            views.append((snap_md.index, snap_md.term, held))
        else:
            views.append((last.index, last.term, held))
        return views

    def _check_committed_survives_any_election(self) -> None:
        """No voter lacking the newest committed entry can collect a quorum of votes (§5.4.1's
        argument, checked on the logs themselves): otherwise some later run of crashes and timeouts
        elects it and the entry is lost. This notices an unsafe commit when it happens, not only
        once an unlucky election follows. Checked only while the configuration is the initial one."""
        if self.opts.conf_changes or self.max_committed == 0 or self.max_committed not in self.committed:
            return
        voters = [self.nodes[i] for i in range(1, self.opts.n + 1)]
        views = {n.id: self._log_views(n) for n in voters}
        quorum = self.opts.n // 2 + 1
        m_term = self.committed[self.max_committed][0]
        for cand in voters:
            for c_last, c_term, held in views[cand.id]:
                if held:
                    continue
                # A voter grants its vote if the candidate is at least as up to date as the voter's log
                # (either the one it runs with or the one a crash would leave it).
                grants = [v.id for v in voters
                          if any(c_term > vt or (c_term == vt and c_last >= vi) for vi, vt, _ in views[v.id])]
                if len(grants) >= quorum:
                    self.fail(f"committed entry {self.max_committed} (term {m_term}) can be lost: node "
                              f"{cand.id} lacks it (log ends at {c_last}, term {c_term}) yet could be "
                              f"elected by {grants}")

    def _check_snapshot(self, node: SimNode, snap: Snapshot, what: str) -> None:
        """A snapshot holds exactly the committed log up to its index: same term, same state."""
        md = snap.metadata
        if md.index == 0:
            return
        want = self.committed.get(md.index)
        if want is None or md.index > self.max_committed:
            self.fail(f"{what} snapshot of node {node.id} at index {md.index} is beyond the committed log "
                      f"(committed up to {self.max_committed})")
            return
        if md.term != want[0]:
            self.fail(f"{what} snapshot of node {node.id} at index {md.index} has term {md.term}, "
                      f"the committed entry has term {want[0]}")
        if snap.data != self.digests.get(md.index):
            self.fail(f"{what} snapshot of node {node.id} at index {md.index}: its state differs from the "
                      f"state machine that applied the committed log up to {md.index}")

    def _check_persisted(self, node: SimNode, ents: list[Entry]) -> None:
        st = node.storage
        for e in ents:
            if e.index < st.first_index():
                continue
            prev_term = st.term(e.index - 1)
            key = (e.index, e.term)
            val = (int(e.type), e.data, prev_term)
            seen = self.entries_seen.get(key)
            if seen is None:
                self.entries_seen[key] = val
            elif seen != val:
                self.fail(f"log matching: node {node.id} persisted entry {key} = {val}, "
                          f"another log has {seen}")

    def _register_commit(self, node: SimNode, commit: int, term: int) -> None:
        st = node.storage
        lo = max(st.first_index(), 1)
        for i in range(lo, min(commit, st.last_index()) + 1):
            e = st.ents[i - st.ents[0].index]
            have = self.committed.get(i)
            if have is None:
                self.committed[i] = (e.term, e.data)
                self.commit_term[i] = term
            elif have != (e.term, e.data):
                self.fail(f"committed entry lost/changed at index {i}: node {node.id} has "
                          f"{(e.term, e.data)!r}, committed was {have!r}")
        if commit > self.max_committed:
            self.max_committed = commit

    def _check_read(self, node: SimNode, index: int, ctx: bytes) -> None:
        """Linearizable reads: a read index never precedes a commit that happened before the read."""
        self.stats["read"] += 1
        floor = self.reads.get(ctx)
        if floor is None:
            self.fail(f"node {node.id} got a ReadState for unknown context {ctx!r}")
        elif index < floor:
            self.fail(f"stale read: node {node.id} read index {index} for {ctx!r}, but index {floor} was "
                      f"already committed when the read was issued")

    def random_read(self) -> None:
        live = [n for n in self.live() if not n.removed]
        if not live:
            return
        node = self.rng.choice(live)
        self.proposal_seq += 1
        ctx = f"r{self.proposal_seq}".encode()
        self.reads[ctx] = self.max_committed
        assert node.rn is not None
        node.rn.read_index(ctx)

    def _apply(self, node: SimNode, e: Entry) -> None:
        if e.index != node.applied_index + 1:
            self.fail(f"node {node.id} applied index {e.index} after {node.applied_index}")
        if self.committed.get(e.index) != (e.term, e.data):
            self.fail(f"node {node.id} applied {(e.term, e.data)!r} at {e.index}, which is not the committed "
                      f"entry {self.committed.get(e.index)!r}")
        node.applied_index = e.index
        node.digest = _chain(node.digest, e)
        have = self.applied.get(e.index)
        if have is None:
            self.applied[e.index] = (e.term, e.data)
            self.digests[e.index] = node.digest
        elif have != (e.term, e.data) or self.digests[e.index] != node.digest:
            self.fail(f"state machine safety: node {node.id} applied {(e.term, e.data)!r} at {e.index}, "
                      f"another node applied {have!r} (or their states differ)")
        if e.type != EntryType.NORMAL:
            assert node.rn is not None
            cc = conf_change_from_entry(e)
            was_member = _is_member(node.id, node.conf_state)
            node.conf_state = node.rn.apply_conf_change(cc)
            self.stats["joint" if node.conf_state.voters_outgoing else "conf_applied"] += 1
            node.was_member = node.was_member or _is_member(node.id, node.conf_state)
            if was_member and not _is_member(node.id, node.conf_state):
                # Like etcd's server: a member that applied its own removal shuts down.
                node.removed = True

    # -- the Ready loop ---------------------------------------------------------------------

    def sends_before_persisting(self, node: SimNode, rd: Ready) -> bool:
        """app/server/node_core.py's rule: a leader replicates while it persists, unless the Ready commits
        entries it is only now persisting (a one-voter leader); everyone else replies only once what
        the reply promises (a vote, an acknowledged entry) is on disk."""
        return node.role == StateType.LEADER and not commits_unpersisted(rd)

    def _maybe_crash(self, node: SimNode, allow_crash: bool, why: str) -> bool:
        if allow_crash and self.faults and self.rng.random() < self.opts.crash / 4:
            self.crash(node, why)
            return True
        return False

    def handle_ready(self, node: SimNode, allow_crash: bool = True) -> None:
        rn = node.rn
        assert rn is not None
        rd = rn.ready()
        st = node.storage
        disk = node.disk
        if rd.soft_state is not None:
            node.role = rd.soft_state.raft_state
        if self._maybe_crash(node, allow_crash, "before handling Ready"):
            return
        early = self.sends_before_persisting(node, rd)
        if early:
            self.emit(node, rd.messages)
        # 1. write, and sync only if Raft asks (or a snapshot arrived, as the real node does)
        if rd.snapshot is not None:
            self._check_snapshot(node, rd.snapshot, "received")
            disk.write_snapshot(rd.snapshot)
        disk.write_entries(rd.entries)
        if rd.hard_state is not None:
            disk.write_hard_state(rd.hard_state)
        if self._maybe_crash(node, allow_crash, "written, before syncing"):
            return
        if rd.must_sync or rd.snapshot is not None:
            disk.sync()
        # 2. the storage Raft reads from
        if rd.snapshot is not None:
            try:
                st.apply_snapshot(rd.snapshot)
            except ErrSnapOutOfDate:
                pass
            node.conf_state = rd.snapshot.metadata.conf_state
            node.was_member = node.was_member or _is_member(node.id, node.conf_state)
            node.applied_index = rd.snapshot.metadata.index
            node.digest = rd.snapshot.data
            self.log(f"{node.id} installed snapshot at {rd.snapshot.metadata.index}", "snapshot")
        if rd.entries:
            st.append(rd.entries)
            self._check_persisted(node, rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
            self._register_commit(node, rd.hard_state.commit, rd.hard_state.term)
        if self._maybe_crash(node, allow_crash, "persisted, before sending"):
            return
        # 3. send
        if not early:
            self.emit(node, rd.messages)
        # 4. apply
        for e in rd.committed_entries:
            self._apply(node, e)
        for rs in rd.read_states:
            self._check_read(node, rs.index, rs.request_ctx)
        rn.advance(rd)
        self.observe(node)
        self._maybe_compact(node)
        if node.removed:
            self.log(f"{node.id} removed from the cluster; stopping")
            node.rn = None

    def _maybe_compact(self, node: SimNode) -> None:
        """Occasionally snapshot the applied state and compact the log, as a server would."""
        st = node.storage
        applied = node.applied_index
        if applied - node.disk.snapshot.metadata.index < self.opts.compact_every or applied > st.last_index():
            return
        if st.snap.metadata.index < applied:
            st.create_snapshot(applied, _copy_cs(node.conf_state), node.digest)
        snap = st.snap
        self._check_snapshot(node, snap, "compaction")
        node.disk.write_compaction(snap)
        node.disk.sync()
        # Keep a few entries before the snapshot for followers that are only slightly behind.
        idx = applied - self.rng.randrange(4)
        if idx > st.ents[0].index:
            st.compact(idx)

    def emit(self, node: SimNode, msgs: list[Message]) -> None:
        """Messages leave the node: remember what they promise, then put them on the network."""
        for m in msgs:
            if m.type not in (MT.MsgPreVote, MT.MsgPreVoteResp):
                node.revealed_term = max(node.revealed_term, m.term)
            if m.type == MT.MsgVote:
                node.vote_cast = (m.term, node.id)
            elif m.type == MT.MsgVoteResp and not m.reject:
                node.vote_cast = (m.term, m.to)
            elif m.type == MT.MsgSnap:
                assert m.snapshot is not None
                self._check_snapshot(node, m.snapshot, "sent")
            elif m.type == MT.MsgAppResp and not m.reject and node.rn is not None:
                rl = node.rn.raft.raft_log
                if m.index >= rl.first_index() and m.index >= node.acked[1] or m.term > node.acked[0]:
                    node.acked = (m.term, m.index, rl.zero_term_on_compacted(m.index))
            self.send(m)

    def send(self, m: Message) -> None:
        o = self.opts
        if self.faults and self.rng.random() < o.drop:
            self.log(f"drop {m.type.name} {m.frm}->{m.to}", "drop")
            self._report_snap(m, False)
            return
        copies = 2 if (self.faults and self.rng.random() < o.dup) else 1
        if copies == 2:
            self.stats["dup"] += 1
        for _ in range(copies):
            delay = self.rng.randrange(o.max_delay + 1) if self.faults else self.rng.randrange(2)
            self.seq += 1
            self.network.append((self.now + delay, self.seq, m))

    def _report_snap(self, m: Message, ok: bool) -> None:
        if m.type != MT.MsgSnap:
            return
        sender = self.nodes.get(m.frm)
        if sender is not None and sender.rn is not None:
            sender.rn.report_snapshot(m.to, SnapshotStatus.FINISH if ok else SnapshotStatus.FAILURE)

    def deliver_due(self) -> bool:
        due = [x for x in self.network if x[0] <= self.now]
        if not due:
            return False
        self.network = [x for x in self.network if x[0] > self.now]
        # Random order among due messages: reordering beyond what delays give.
        self.rng.shuffle(due)
        for _, _, m in due:
            dst = self.nodes.get(m.to)
            if dst is None or dst.rn is None or (m.frm, m.to) in self.cuts:
                self._report_snap(m, False)
                sender = self.nodes.get(m.frm)
                if sender is not None and sender.rn is not None and m.type == MT.MsgApp:
                    sender.rn.report_unreachable(m.to)
                continue
            try:
                dst.rn.step(m)
            except ErrProposalDropped:
                pass
            except Exception as e:  # noqa: BLE001
                if type(e).__name__ == "ErrStepPeerNotFound":
                    continue
                raise
            self._report_snap(m, True)
            self.observe(dst)
        return True

    # -- faults and operations -----------------------------------------------------------------

    def crash(self, node: SimNode, why: str) -> None:
        lost = node.disk.crash(self.rng)
        self.log(f"crash {node.id} ({why}; lost {lost} unsynced writes)", "crash")
        if lost:
            self.stats["lost_writes"] += 1
        node.rn = None

    def restart(self, node: SimNode) -> None:
        if node.removed:
            return
        st = node.storage = SimStorage(node)
        node.disk.load(st)
        snap = st.snap
        hs = st.hard_state
        if hs.term < node.revealed_term:
            self.fail(f"node {node.id} restarted at term {hs.term} but had sent messages of term "
                      f"{node.revealed_term}: its term went back")
        vt, vote = node.vote_cast
        if hs.term == vt and hs.vote != vote:
            self.fail(f"node {node.id} restarted in term {vt} with vote {hs.vote}, but had voted for {vote}")
        self._check_snapshot(node, snap, "restored")
        # A crash after writing a Ready may keep a commit index that was never seen before.
        self._register_commit(node, hs.commit, hs.term)
        # The state machine is restored from the snapshot: everything up to it counts as applied.
        node.applied_index = snap.metadata.index
        node.digest = snap.data
        node.conf_state = _copy_cs(snap.metadata.conf_state)
        node.role = StateType.FOLLOWER
        node.rn = RawNode(self._config(node.id, st, snap.metadata.index))
        self.log(f"restart {node.id} (term {hs.term}, vote {hs.vote}, last {st.last_index()})", "restart")

    def random_fault(self) -> None:
        o = self.opts
        r = self.rng.random()
        nodes = [n for n in self.nodes.values() if not n.removed]
        if r < o.crash:
            live = [n for n in nodes if n.rn is not None]
            if live:
                self.crash(self.rng.choice(live), "random")
        elif r < o.crash + o.restart:
            dead = [n for n in nodes if n.rn is None]
            if dead:
                self.restart(self.rng.choice(dead))
        elif r < o.crash + o.restart + o.partition:
            self.random_partition([n.id for n in nodes])
        elif r < o.crash + o.restart + 3 * o.partition:
            kind = self.rng.random()
            if self.cuts and kind < 0.3:
                # Half-healed: one node's outgoing (or incoming) links come back, the other way stays cut
                # (an isolated stale leader that can talk again but hears nothing).
                x = self.rng.choice(sorted(self.cuts))[self.rng.randrange(2)]
                side = self.rng.randrange(2)
                self.cuts = {c for c in self.cuts if c[side] != x}
                self.log(f"{x}'s {'outgoing' if side == 0 else 'incoming'} links healed", "one_way")
                return
            if self.cuts and kind < 0.6:
                # One node reconnects; the rest of the partition stays.
                back = self.rng.choice(sorted(self.cuts))[self.rng.randrange(2)]
                self.cuts = {c for c in self.cuts if back not in c}
                self.log(f"{back} reconnected")
                return
            if self.cuts:
                self.log("heal partition")
            self.cuts = set()

    def hit_leaders(self) -> None:
        due = [h for h in self.leader_hits if h[0] <= self.now]
        self.leader_hits = [h for h in self.leader_hits if h[0] > self.now]
        for _, id_, term in due:
            node = self.nodes[id_]
            if node.rn is None or node.rn.raft.term != term or node.rn.raft.state != StateType.LEADER:
                continue
            if self.rng.random() < 0.5:
                self.crash(node, "new leader")
            else:
                self._isolate(id_, "new leader")

        for _, id_ in [h for h in self.speak_again if h[0] <= self.now]:
            if any(c[0] == id_ for c in self.cuts):
                # It still believes it leads (without check-quorum nothing tells it otherwise) and
                # talks to a cluster that moved on, while hearing nothing back.
                self.cuts = {c for c in self.cuts if c[0] != id_}
                self.log(f"{id_}'s outgoing links healed (incoming still cut)", "one_way")
        self.speak_again = [h for h in self.speak_again if h[0] > self.now]

    def _isolate(self, id_: int, why: str) -> None:
        others = [n for n in self.nodes if n != id_]
        self.cuts |= {(id_, o) for o in others} | {(o, id_) for o in others}
        self.log(f"isolate {id_} ({why})", "partition")
        if self.rng.random() < 0.5:
            self.speak_again.append((self.now + self.rng.randrange(20, 60), id_))

    def random_partition(self, ids: list[int]) -> None:
        """Cut the network: into two sides, one way only between two sides, or one directed link."""
        if len(ids) < 2:
            return
        self.rng.shuffle(ids)
        k = self.rng.randrange(1, len(ids))
        a, b = ids[:k], ids[k:]
        kind = self.rng.random()
        if kind < 0.4:
            self.cuts = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
            self.log(f"partition {sorted(a)} | {sorted(b)}", "partition")
        elif kind < 0.8:
            # One-way: a hears b, b does not hear a (a stale leader in a keeps sending, or a node in
            # b keeps campaigning unheard...).
            self.cuts = {(x, y) for x in a for y in b}
            self.log(f"one-way partition {sorted(a)} -> {sorted(b)} cut", "one_way")
        else:
            self.cuts.add((a[0], b[0]))
            self.log(f"cut link {a[0]} -> {b[0]}", "one_way")

    def propose(self, count: int) -> list[bytes]:
        live = [n for n in self.live() if not n.removed]
        if not live:
            return []
        node = self.rng.choice(live)
        datas = []
        for _ in range(count):
            self.proposal_seq += 1
            datas.append(f"p{self.proposal_seq}".encode())
        assert node.rn is not None
        try:
            node.rn.propose_many(datas)
        except ErrProposalDropped:
            return []
        self.observe(node)
        return datas

    def random_conf_change(self) -> None:
        ld = self.leader()
        if ld is None or ld.rn is None:
            return
        cs = ld.rn.raft.prs.conf_state()
        cc: ConfChange | ConfChangeV2
        if cs.voters_outgoing:
            if not cs.auto_leave:
                # A joint config entered with an explicit transition is left by an empty ConfChangeV2.
                cc = ConfChangeV2()
                self.log(f"propose leave-joint via {ld.id}", "conf_change")
                try:
                    ld.rn.propose_conf_change(cc)
                except ErrProposalDropped:
                    pass
            return
        choice = self.rng.random()
        if cs.learners and choice < 0.35:
            cc = ConfChange(ConfChangeType.ADD_NODE, self.rng.choice(cs.learners))
        elif choice < 0.6 and len(cs.voters) + len(cs.learners) < 7:
            new = self.next_id
            self.next_id += 1
            self._create_node(new, bootstrap=None)
            cc = ConfChange(ConfChangeType.ADD_LEARNER_NODE, new)
        elif len(cs.voters) > 3 and choice < 0.8:
            cc = ConfChange(ConfChangeType.REMOVE_NODE, self.rng.choice(cs.voters))
        elif len(cs.voters) >= 3 and cs.learners:
            # Joint consensus: promote a learner and demote/remove a voter at once.
            victim = self.rng.choice(cs.voters)
            kind = self.rng.choice([ConfChangeType.REMOVE_NODE, ConfChangeType.ADD_LEARNER_NODE])
            transition = self.rng.choice(list(ConfChangeTransition))
            cc = ConfChangeV2([ConfChangeSingle(ConfChangeType.ADD_NODE, self.rng.choice(cs.learners)),
                               ConfChangeSingle(kind, victim)], transition)
        else:
            return
        self.log(f"propose conf change {cc} via {ld.id}", "conf_change")
        try:
            ld.rn.propose_conf_change(cc)
        except (ErrProposalDropped, ErrConfChangeInvalid):
            pass
        self.observe(ld)

    def random_transfer(self) -> None:
        ld = self.leader()
        if ld is None or ld.rn is None:
            return
        voters = [i for i in ld.rn.raft.prs.config.voters.ids() if i != ld.id]
        if voters:
            to = self.rng.choice(sorted(voters))
            self.log(f"transfer leader {ld.id} -> {to}", "transfer")
            ld.rn.transfer_leader(to)

    # -- main loop -----------------------------------------------------------------------

    def step_tick(self) -> None:
        self.now += 1
        for n in sorted(self.live(), key=lambda n: n.id):
            assert n.rn is not None
            n.rn.tick()
            self.observe(n)
        for _ in range(6):
            progressed = False
            live = self.live()
            self.rng.shuffle(live)
            for n in live:
                if n.rn is not None and n.rn.has_ready():
                    self.handle_ready(n)
                    progressed = True
            if self.deliver_due():
                progressed = True
            if not progressed:
                break
        self._check_committed_survives_any_election()

    def run(self) -> None:
        try:
            self._run()
        except InvariantViolation:
            raise
        except Exception as e:
            # The core (or the simulator) blew up: report it with the seed, like any violation.
            raise self.violation(f"unexpected {type(e).__name__}: {e}") from e

    def _run(self) -> None:
        o = self.opts
        for _ in range(o.chaos_ticks):
            if self.rng.random() < 0.5:
                self.random_fault()
            self.hit_leaders()
            if self.rng.random() < 0.3:
                self.propose(self.rng.choice([1, 1, 2, 5]))
            if o.conf_changes and self.rng.random() < 0.03:
                self.random_conf_change()
            if self.rng.random() < 0.1:
                self.random_read()
            if o.transfers and self.rng.random() < 0.02:
                self.random_transfer()
            self.step_tick()
        self.heal_and_check_liveness()

    def heal_and_check_liveness(self) -> None:
        o = self.opts
        self.faults = False
        self.cuts = set()
        self.log("=== heal ===")
        for n in self.nodes.values():
            if n.rn is None and not n.removed:
                self.restart(n)
        limit = self.now + o.heal_ticks
        datas = [f"live{i}".encode() for i in range(5)]
        proposed_term = 0
        while self.now < limit:
            self.step_tick()
            ld = self.leader()
            if ld is None or ld.rn is None:
                continue
            r = ld.rn.raft
            self._stop_non_members(ld)
            # A client retries with the new leader if leadership changed before its proposals
            # committed (an uncommitted entry may legitimately be overwritten).
            if proposed_term != r.term and r.committed_entry_in_current_term():
                missing = [d for d in datas if not self._has_applied(ld, {d})]
                if missing:
                    try:
                        ld.rn.propose_many(missing)
                    except ErrProposalDropped:
                        continue
                    self.log(f"liveness proposals via leader {ld.id} term {r.term}")
                proposed_term = r.term
            if proposed_term == 0:
                continue
            members = self._members()
            if all(self._has_applied(self.nodes[m], set(datas)) for m in members if m in self.nodes):
                return
        proposed = proposed_term != 0
        state = "; ".join(
            f"{n.id}:{'down' if n.rn is None else n.rn.raft.state.name}"
            f"{'' if n.rn is None else f' t{n.rn.raft.term} c{n.rn.raft.raft_log.committed}'}"
            f" applied={n.applied_index}{' removed' if n.removed else ''}"
            for n in self.nodes.values())
        self.fail(f"liveness: after healing, proposals not applied on all members within {o.heal_ticks} "
                  f"ticks (proposed={proposed}); nodes: {state}")

    def _members(self) -> set[int]:
        ld = self.leader()
        assert ld is not None and ld.rn is not None
        c = ld.rn.raft.prs.config
        return set(c.voters.ids()) | c.learners

    def _stop_non_members(self, ld: SimNode) -> None:
        assert ld.rn is not None
        rl = ld.rn.raft.raft_log
        if rl.applied < rl.committed or not ld.rn.raft.committed_entry_in_current_term():
            # The leader's configuration lags its log until it applied everything committed.
            return
        members = self._members()
        for n in self.nodes.values():
            if n.id not in members and n.rn is not None and n.was_member:
                self.log(f"stop non-member {n.id}")
                n.rn = None
                n.removed = True

    def _has_applied(self, node: SimNode, datas: set[bytes]) -> bool:
        if not datas:
            return True
        found = 0
        for i in range(node.applied_index, 0, -1):
            a = self.applied.get(i)
            if a is None:
                break
            if a[1] in datas:
                found += 1
                if found == len(datas):
                    return True
            if a[1].startswith(b"p"):
                # Older than the liveness proposals: stop scanning.
                pass
        return False


def _chain(digest: bytes, e: Entry) -> bytes:
    return hashlib.blake2b(digest + e.term.to_bytes(8, "big") + e.data, digest_size=12).digest()


def _is_member(id_: int, cs: ConfState) -> bool:
    return id_ in cs.voters or id_ in cs.learners or id_ in cs.voters_outgoing or id_ in cs.learners_next


def _copy_cs(cs: ConfState) -> ConfState:
    return ConfState(list(cs.voters), list(cs.learners), list(cs.voters_outgoing), list(cs.learners_next),
                     cs.auto_leave)


def run_simulation(seed: int, n: int, **kw: object) -> Simulator:
    opts = SimOptions(n=n, **kw)  # type: ignore[arg-type]
    sim = Simulator(seed, opts)
    sim.run()
    return sim


class ManualCluster:
    """The simulator's nodes and invariant checks, but with messages delivered by hand.

    Used for targeted scenarios (e.g. Figure 8 of the Raft paper) where the test decides
    exactly which messages arrive. No ticks happen unless the test asks for them.
    """

    def __init__(self, n: int, **opts: object) -> None:
        o = SimOptions(n=n, crash=0.0, drop=0.0, dup=0.0, partition=0.0, pre_vote=False, check_quorum=False,
                       compact_every=1 << 30)
        for k, v in opts.items():
            setattr(o, k, v)
        self.outbox: list[Message] = []
        self.sim = Simulator(0, o)
        self.sim.faults = False
        self.sim.send = self.outbox.append  # type: ignore[method-assign,assignment]
        self.settle(lambda m: True)

    def node(self, id_: int) -> RawNode:
        rn = self.sim.nodes[id_].rn
        assert rn is not None, f"node {id_} is down"
        return rn

    def settle(self, allowed: Callable[[Message], bool]) -> None:
        """Run Ready handling and deliver messages that `allowed(m)` accepts until quiet."""
        pred = allowed
        while True:
            busy = False
            for n in sorted(self.sim.live(), key=lambda n: n.id):
                if n.rn is not None and n.rn.has_ready():
                    self.sim.handle_ready(n, allow_crash=False)
                    busy = True
            msgs, self.outbox[:] = list(self.outbox), []
            for m in msgs:
                dst = self.sim.nodes.get(m.to)
                if dst is None or dst.rn is None or not pred(m):
                    continue
                try:
                    dst.rn.step(m)
                except ErrProposalDropped:
                    pass
                self.sim.observe(dst)
                busy = True
            if not busy:
                return

    def campaign(self, id_: int) -> None:
        self.node(id_).campaign()
        self.sim.observe(self.sim.nodes[id_])

    def crash(self, id_: int) -> None:
        self.sim.crash(self.sim.nodes[id_], "scenario")

    def restart(self, id_: int) -> None:
        self.sim.restart(self.sim.nodes[id_])

    def state(self, id_: int) -> tuple[StateType, int]:
        r = self.node(id_).raft
        return r.state, r.term
