"""A seeded, deterministic cluster simulator for the Raft core, with invariant checks.

Fake clock (ticks), fake network (drop, delay, duplicate, reorder, partition), crashes
that lose everything not persisted, restarts from the persisted MemoryStorage, client
proposals, membership changes and leadership transfers. Safety invariants are checked
after every step; liveness is checked after the faults heal.

Run one case by hand: SEED=123 N=5 pytest tests/raft/test_simulation.py -k repro
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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
    SnapshotStatus,
    StateType,
    conf_change_from_entry,
)
from etcdpy.raft.errors import ErrCompacted, ErrConfChangeInvalid, ErrProposalDropped, ErrSnapOutOfDate
from tests.raft.interaction import AppStorage

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
    partition: float = 0.01
    pre_vote: bool = True
    check_quorum: bool = True
    conf_changes: bool = False
    transfers: bool = False
    compact_every: int = 15
    max_size_per_msg: int = 0
    max_inflight: int = 8
    election_tick: int = 10


@dataclass
class SimNode:
    id: int
    storage: AppStorage
    rn: RawNode | None = None
    conf_state: ConfState = field(default_factory=ConfState)
    applied_index: int = 0
    removed: bool = False
    # Has been part of a configuration (so leaving the leader's configuration means it was removed).
    was_member: bool = False


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
        self.partition: list[set[int]] | None = None
        self.faults = True
        self.next_id = opts.n + 1
        self.proposal_seq = 0
        # -- invariant state --
        self.leaders: dict[int, int] = {}  # term -> leader id
        # (index, term) -> (type, data, prev_term): log matching, checked inductively.
        self.entries_seen: dict[tuple[int, int], tuple[int, bytes, int]] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.applied: dict[int, tuple[int, bytes]] = {}  # index -> (term, data): state machine
        self.max_committed = 0
        # read ctx -> highest commit index observed anywhere when the read was issued.
        self.reads: dict[bytes, int] = {}
        self.trace: list[str] = []
        # How often each kind of event happened: lets tests prove the faults are really injected.
        self.stats: Counter[str] = Counter()
        for i in range(1, opts.n + 1):
            self._create_node(i, bootstrap=[Peer(j) for j in range(1, opts.n + 1)])

    # -- helpers ------------------------------------------------------------------------

    def fail(self, msg: str) -> None:
        tail = "\n".join(self.trace[-25:])
        raise InvariantViolation(
            f"{msg}\n  seed={self.seed} n={self.opts.n} tick={self.now}\n"
            f"  reproduce: SEED={self.seed} N={self.opts.n} pytest tests/raft/test_simulation.py -k repro\n"
            f"  last events:\n{tail}")

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
        st = AppStorage()
        node = SimNode(id_, st)
        st.source = lambda: (node.applied_index, node.conf_state)
        node.rn = RawNode(self._config(id_, st, 0))
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
        if r.state != StateType.LEADER:
            return
        other = self.leaders.get(r.term)
        if other is None:
            self.leaders[r.term] = node.id
            self.log(f"{node.id} became leader at term {r.term}", "leader")
            self._check_leader_completeness(node)
        elif other != node.id:
            self.fail(f"two leaders in term {r.term}: {other} and {node.id}")

    def _check_leader_completeness(self, node: SimNode) -> None:
        assert node.rn is not None
        rl = node.rn.raft.raft_log
        first = rl.first_index()
        snap_index = first - 1
        if snap_index > 0 and snap_index in self.committed:
            # The snapshot covers everything before it; its last term must match.
            pass
        for i in range(first, self.max_committed + 1):
            want = self.committed.get(i)
            if want is None:
                continue
            try:
                got = rl.term(i)
            except ErrCompacted:
                continue
            if got != want[0]:
                self.fail(f"leader completeness: new leader {node.id} (term {node.rn.raft.term}) has term "
                          f"{got} at committed index {i} (committed term {want[0]})")

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

    def _register_commit(self, node: SimNode, commit: int) -> None:
        st = node.storage
        lo = max(st.first_index(), 1)
        for i in range(lo, min(commit, st.last_index()) + 1):
            e = st.ents[i - st.ents[0].index]
            have = self.committed.get(i)
            if have is None:
                self.committed[i] = (e.term, e.data)
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
        node.applied_index = e.index
        have = self.applied.get(e.index)
        if have is None:
            self.applied[e.index] = (e.term, e.data)
        elif have != (e.term, e.data):
            self.fail(f"state machine safety: node {node.id} applied {(e.term, e.data)!r} at {e.index}, "
                      f"another node applied {have!r}")
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

    def handle_ready(self, node: SimNode, allow_crash: bool = True) -> None:
        rn = node.rn
        assert rn is not None
        rd = rn.ready()
        st = node.storage
        if allow_crash and self.faults and self.rng.random() < self.opts.crash / 4:
            self.crash(node, "before persisting Ready")
            return
        # 1. persist
        if rd.snapshot is not None:
            try:
                st.apply_snapshot(rd.snapshot)
            except ErrSnapOutOfDate:
                pass
            node.conf_state = rd.snapshot.metadata.conf_state
            node.was_member = node.was_member or _is_member(node.id, node.conf_state)
            node.applied_index = rd.snapshot.metadata.index
            self.log(f"{node.id} installed snapshot at {rd.snapshot.metadata.index}", "snapshot")
        if rd.entries:
            st.append(rd.entries)
            self._check_persisted(node, rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
            self._register_commit(node, rd.hard_state.commit)
        if allow_crash and self.faults and self.rng.random() < self.opts.crash / 4:
            self.crash(node, "after persisting, before sending")
            return
        # 2. send
        for m in rd.messages:
            self.send(m)
        # 3. apply
        for e in rd.committed_entries:
            self._apply(node, e)
        for rs in rd.read_states:
            self._check_read(node, rs.index, rs.request_ctx)
        rn.advance(rd)
        self.observe(node)
        # Occasionally snapshot the applied state and compact the log, as a server would.
        if node.applied_index - st.snap.metadata.index >= self.opts.compact_every:
            if node.applied_index <= st.last_index():
                st.create_snapshot(node.applied_index, _copy_cs(node.conf_state), b"")
                # Keep a few entries before the snapshot for followers that are only slightly behind.
                idx = node.applied_index - self.rng.randrange(4)
                if idx > st.ents[0].index:
                    st.compact(idx)
        if node.removed:
            self.log(f"{node.id} removed from the cluster; stopping")
            node.rn = None

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

    def _cut(self, a: int, b: int) -> bool:
        if self.partition is None:
            return False
        return not any(a in g and b in g for g in self.partition)

    def deliver_due(self) -> bool:
        due = [x for x in self.network if x[0] <= self.now]
        if not due:
            return False
        self.network = [x for x in self.network if x[0] > self.now]
        # Random order among due messages: reordering beyond what delays give.
        self.rng.shuffle(due)
        for _, _, m in due:
            dst = self.nodes.get(m.to)
            if dst is None or dst.rn is None or self._cut(m.frm, m.to):
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
        self.log(f"crash {node.id} ({why})", "crash")
        node.rn = None

    def restart(self, node: SimNode) -> None:
        if node.removed:
            return
        st = node.storage
        node.applied_index = st.snap.metadata.index
        node.conf_state = _copy_cs(st.snap.metadata.conf_state)
        # The state machine is restored from the snapshot: everything up to it counts as applied.
        node.rn = RawNode(self._config(node.id, st, st.snap.metadata.index))
        self.log(f"restart {node.id} (term {st.hard_state.term}, last {st.last_index()})", "restart")

    def random_fault(self) -> None:
        o = self.opts
        r = self.rng.random()
        nodes = [n for n in self.nodes.values() if not n.removed]
        if r < o.crash:
            live = [n for n in nodes if n.rn is not None]
            if live:
                self.crash(self.rng.choice(live), "random")
        elif r < 2 * o.crash + 0.02:
            dead = [n for n in nodes if n.rn is None]
            if dead:
                self.restart(self.rng.choice(dead))
        elif r < 2 * o.crash + 0.02 + o.partition:
            ids = [n.id for n in nodes]
            self.rng.shuffle(ids)
            k = self.rng.randrange(1, len(ids))
            self.partition = [set(ids[:k]), set(ids[k:])]
            self.log(f"partition {self.partition}", "partition")
        elif r < 2 * o.crash + 0.02 + 3 * o.partition:
            if self.partition is not None:
                self.log("heal partition")
            self.partition = None

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

    def run(self) -> None:
        o = self.opts
        for _ in range(o.chaos_ticks):
            if self.rng.random() < 0.5:
                self.random_fault()
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
        self.partition = None
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
