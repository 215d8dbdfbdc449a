"""RawNode: the only door into the Raft core for a driver (server, simulator, benchmark).

It turns calls (tick, propose, step, ...) into messages for Raft and packages Raft's
output into Ready batches, tracking what the driver has already been handed so that
each change is reported exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.raft.confcodec import conf_change_to_entry
from etcdpy.raft.config import Config
from etcdpy.raft.errors import ErrProposalDropped, ErrStepLocalMsg, ErrStepPeerNotFound, RaftError
from etcdpy.raft.raft import Raft
from etcdpy.raft.types import (
    LOCAL_MESSAGES,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Peer,
    ProgressStateType,
    Ready,
    SnapshotStatus,
    SoftState,
    StateType,
)

MT = MessageType


@dataclass(slots=True)
class ProgressStatus:
    match: int = 0
    next: int = 0
    state: ProgressStateType = ProgressStateType.PROBE
    is_learner: bool = False
    recent_active: bool = False
    paused: bool = False


@dataclass(slots=True)
class Status:
    id: int = 0
    hard_state: HardState = field(default_factory=HardState)
    soft_state: SoftState = field(default_factory=SoftState)
    applied: int = 0
    # Only filled on the leader: the leader's view of every member's log.
    progress: dict[int, ProgressStatus] = field(default_factory=dict)
    lead_transferee: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


class RawNode:
    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self.prev_soft_state = self.raft.soft_state()
        self.prev_hard_state = self.raft.hard_state()

    def bootstrap(self, peers: list[Peer]) -> None:
        """Start a brand-new cluster: one committed AddNode conf-change entry per peer at term 1.

        Storage must be empty. The entries show up in the next Ready (to persist and apply);
        applying them again through apply_conf_change is harmless.
        """
        if not peers:
            raise RaftError("must provide at least one peer to bootstrap")
        r = self.raft
        if r.raft_log.storage.last_index() != 0:
            raise RaftError("can't bootstrap a nonempty Storage")
        # Report the hard state as changed so the bootstrap is persisted.
        self.prev_hard_state = HardState()
        r.become_follower(1, 0)
        ccs = [ConfChange(ConfChangeType.ADD_NODE, p.id, p.context) for p in peers]
        ents = []
        for i, cc in enumerate(ccs):
            e = conf_change_to_entry(cc)
            e.term = 1
            e.index = i + 1
            ents.append(e)
        r.raft_log.append(ents)
        r.raft_log.committed = len(ents)
        for cc in ccs:
            r.apply_conf_change(cc)

    # -- inputs -------------------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def tick_quiesced(self) -> None:
        """Advance the election clock without triggering elections or heartbeats."""
        self.raft.election_elapsed += 1

    def campaign(self) -> None:
        self.raft.step(Message(type=MT.MsgHup))

    def propose(self, data: bytes) -> None:
        """Propose one entry. Raises ErrProposalDropped if it cannot be accepted now."""
        self._propose([Entry(data=data)])

    def propose_many(self, datas: list[bytes]) -> None:
        """Propose a batch of entries in one MsgProp (one MsgApp to each follower)."""
        if datas:
            self._propose([Entry(data=d) for d in datas])

    def propose_conf_change(self, cc: ConfChange | ConfChangeV2) -> None:
        self._propose([conf_change_to_entry(cc)])

    def _propose(self, ents: list[Entry]) -> None:
        r = self.raft
        m = Message(type=MT.MsgProp, frm=r.id, entries=ents)
        # The entries were made for this call, so a leader may adopt them without copying.
        r.local_proposal = m
        try:
            r.step(m)
        finally:
            r.local_proposal = None

    def apply_conf_change(self, cc: ConfChange | ConfChangeV2) -> ConfState:
        """Apply a committed conf change; call it when applying the conf-change entry."""
        return self.raft.apply_conf_change(cc)

    def step(self, m: Message) -> None:
        """Feed a message received from the network."""
        if m.type in LOCAL_MESSAGES:
            raise ErrStepLocalMsg(f"cannot step raft local message {m.type.name}")
        if m.type in RESPONSE_MESSAGES and m.frm not in self.raft.prs.progress:
            raise ErrStepPeerNotFound(f"peer {m.frm} not found")
        self.raft.step(m)

    def read_index(self, rctx: bytes) -> None:
        """Request a read index; the answer arrives as a ReadState in a later Ready."""
        r = self.raft
        r.step(Message(type=MT.MsgReadIndex, frm=r.id, entries=[Entry(data=rctx)]))

    def transfer_leader(self, transferee: int) -> None:
        self.raft.step(Message(type=MT.MsgTransferLeader, frm=transferee))

    def report_unreachable(self, id_: int) -> None:
        try:
            self.raft.step(Message(type=MT.MsgUnreachable, frm=id_))
        except ErrProposalDropped:
            pass

    def report_snapshot(self, id_: int, status: SnapshotStatus) -> None:
        self.raft.step(Message(type=MT.MsgSnapStatus, frm=id_, reject=status == SnapshotStatus.FAILURE))

    # -- outputs ------------------------------------------------------------------------

    def has_ready(self) -> bool:
        r = self.raft
        if r.msgs or r.read_states:
            return True
        log = r.raft_log
        if log.unstable.entries or log.unstable.snapshot is not None or log.has_next_ents():
            return True
        if r.lead != self.prev_soft_state.lead or r.state != self.prev_soft_state.raft_state:
            return True
        ps = self.prev_hard_state
        return r.term != ps.term or r.vote != ps.vote or log.committed != ps.commit

    def ready(self) -> Ready:
        """Collect pending work; every Ready must be followed by advance(rd) once handled."""
        r = self.raft
        log = r.raft_log
        rd = Ready(entries=list(log.unstable.entries), committed_entries=log.next_ents(), messages=r.msgs)
        r.msgs = []
        if r.lead != self.prev_soft_state.lead or r.state != self.prev_soft_state.raft_state:
            rd.soft_state = SoftState(r.lead, r.state)
            self.prev_soft_state = rd.soft_state
        ps = self.prev_hard_state
        if r.term != ps.term or r.vote != ps.vote or log.committed != ps.commit:
            rd.hard_state = HardState(r.term, r.vote, log.committed)
        if log.unstable.snapshot is not None:
            rd.snapshot = log.unstable.snapshot
        if r.read_states:
            rd.read_states = r.read_states
            r.read_states = []
        # A vote or term change or new entries must be durable before replying; a commit index
        # change alone may be lost (it is recomputed from the log and peers).
        rd.must_sync = bool(rd.entries) or (
            rd.hard_state is not None and (rd.hard_state.term != ps.term or rd.hard_state.vote != ps.vote)
        )
        if rd.committed_entries:
            r.reduce_uncommitted_size(rd.committed_entries)
        return rd

    def advance(self, rd: Ready) -> None:
        """Tell Raft that rd was persisted, sent and applied."""
        r = self.raft
        log = r.raft_log
        if rd.hard_state is not None:
            self.prev_hard_state = rd.hard_state
        old_applied = log.applied
        applied = rd.applied_cursor()
        if applied > 0:
            log.applied_to(applied)
        if rd.entries:
            e = rd.entries[-1]
            log.stable_to(e.index, e.term)
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.metadata.index)
        # Leave a joint configuration automatically once its entering entry is applied.
        if (r.prs.config.auto_leave and r.state == StateType.LEADER
                and old_applied <= r.pending_conf_index <= log.applied):
            r.append_entry([Entry(type=EntryType.CONF_CHANGE_V2)], owned=True)
            r.pending_conf_index = log.last_index()
            r.bcast_append()

    # -- introspection ------------------------------------------------------------------

    def status(self) -> Status:
        r = self.raft
        st = Status(
            id=r.id,
            hard_state=r.hard_state(),
            soft_state=r.soft_state(),
            applied=r.raft_log.applied,
            lead_transferee=r.lead_transferee,
            conf_state=r.prs.conf_state(),
        )
        if r.state == StateType.LEADER:
            for id_ in sorted(r.prs.progress):
                pr = r.prs.progress[id_]
                st.progress[id_] = ProgressStatus(pr.match, pr.next, pr.state, pr.is_learner,
                                                  pr.recent_active, pr.is_paused())
        return st
