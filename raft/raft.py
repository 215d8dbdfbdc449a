"""Raft: the consensus state machine of one node, driven by step() and tick().

Owns roles (follower, pre-candidate, candidate, leader) and their transitions,
elections (with pre-vote and check-quorum), replication and commit, snapshots sent
to lagging followers, ReadIndex, leadership transfer and applying membership changes.
It only appends outgoing messages to `msgs`; RawNode hands them to the driver.
"""

from __future__ import annotations

from collections.abc import Callable

from etcdpy.raft import confchange
from etcdpy.raft.confcodec import decode_conf_change
from etcdpy.raft.config import NO_LIMIT, Config, ReadOnlyOption
from etcdpy.raft.errors import ErrCompacted, ErrProposalDropped, ErrSnapshotTemporarilyUnavailable
from etcdpy.raft.log import RaftLog
from etcdpy.raft.progress import Progress
from etcdpy.raft.quorum import VoteResult
from etcdpy.raft.read_only import ReadOnly
from etcdpy.raft.tracker import ProgressTracker, TrackerConfig
from etcdpy.raft.types import (
    NONE,
    ConfChange,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProgressStateType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    vote_resp_type,
)

MT = MessageType
PST = ProgressStateType

# Context marking a vote request caused by leadership transfer: it must not be ignored by
# nodes that still believe in a live leader (check-quorum lease), since that leader asked for it.
CAMPAIGN_TRANSFER = b"CampaignTransfer"
CAMPAIGN_PRE_ELECTION = b"CampaignPreElection"
CAMPAIGN_ELECTION = b"CampaignElection"


class Raft:
    def __init__(self, c: Config) -> None:
        c.validate()
        self.id = c.id
        self.raft_log = RaftLog(c.storage, c.max_committed_size_per_ready)
        hs, cs = c.storage.initial_state()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.is_learner = False
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.max_msg_size = c.max_size_per_msg
        self.max_uncommitted_size = c.max_uncommitted_entries_size
        self.prs = ProgressTracker(c.max_inflight_msgs)
        self.election_timeout = c.election_tick
        self.heartbeat_timeout = c.heartbeat_tick
        self.check_quorum = c.check_quorum
        self.pre_vote = c.pre_vote
        self.read_only = ReadOnly(c.read_only_option)
        self.disable_proposal_forwarding = c.disable_proposal_forwarding
        self.rng = c.rng
        self.lead_transferee = NONE
        # Index of the latest conf change that may not be applied yet; a new one waits for it.
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        # ReadIndex requests that arrived before this leader committed an entry of its term.
        self.pending_read_index_messages: list[Message] = []
        # The MsgProp that RawNode is stepping on behalf of a local caller, if any (see append_entry).
        self.local_proposal: Message | None = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = 0
        self.tick: Callable[[], None] = self.tick_election
        self.step_fn: Callable[[Message], None] = self.step_follower

        cfg, prs = confchange.restore(self.prs, self.raft_log.last_index(), cs)
        got = self.switch_to_config(cfg, prs)
        if not got.equivalent(cs):
            raise AssertionError(f"restored conf state {got} differs from {cs}")
        if not hs.is_empty():
            self.load_state(hs)
        if c.applied > 0:
            self.raft_log.applied_to(c.applied)
        self.become_follower(self.term, NONE)

    # -- state --------------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.state)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.raft_log.committed)

    def load_state(self, hs: HardState) -> None:
        log = self.raft_log
        if hs.commit < log.committed or hs.commit > log.last_index():
            raise AssertionError(f"{self.id} state.commit {hs.commit} is out of range "
                                 f"[{log.committed}, {log.last_index()}]")
        log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        """Only a voter without a pending snapshot may campaign."""
        pr = self.prs.progress.get(self.id)
        return pr is not None and not pr.is_learner and self.raft_log.unstable.snapshot is None

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def reset_randomized_election_timeout(self) -> None:
        # Randomised in [election_timeout, 2*election_timeout) so split votes resolve (§5.2).
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(self.election_timeout)

    # -- sending ------------------------------------------------------------------------

    def send(self, m: Message) -> None:
        if m.frm == NONE:
            m.frm = self.id
        t = m.type
        if t in (MT.MsgVote, MT.MsgVoteResp, MT.MsgPreVote, MT.MsgPreVoteResp):
            if m.term == 0:
                # Vote messages carry the term they are about, which is not always ours (pre-vote).
                raise AssertionError(f"term should be set when sending {t.name}")
        else:
            if m.term != 0:
                raise AssertionError(f"term should not be set when sending {t.name} (was {m.term})")
            # Proposals and read-index requests are forwarded as "local" messages (term 0).
            if t != MT.MsgProp and t != MT.MsgReadIndex:
                m.term = self.term
        self.msgs.append(m)

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, True)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send to `to` the entries it lacks (or a snapshot); return whether a message was sent."""
        pr = self.prs.progress[to]
        if pr.is_paused():
            return False
        log = self.raft_log
        try:
            prev_term = log.term(pr.next - 1)
            ents = log.entries(pr.next, self.max_msg_size)
        except ErrCompacted:
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        m = Message(type=MT.MsgApp, to=to, index=pr.next - 1, log_term=prev_term, entries=ents,
                    commit=log.committed)
        if pr.state == PST.REPLICATE:
            if ents:
                last = ents[-1].index
                pr.next = last + 1
                pr.inflights.add(last)
        elif pr.state == PST.PROBE:
            pr.probe_sent = True
        self.send(m)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        # A peer that has not answered lately is probably down: don't ship it a snapshot.
        if not pr.recent_active:
            return False
        try:
            snap = self.raft_log.snapshot()
        except ErrSnapshotTemporarilyUnavailable:
            return False
        if snap.is_empty():
            raise AssertionError("need non-empty snapshot")
        pr.become_snapshot(snap.metadata.index)
        self.send(Message(type=MT.MsgSnap, to=to, snapshot=snap))
        return True

    def send_heartbeat(self, to: int, ctx: bytes) -> None:
        # Never tell a follower to commit beyond what it is known to hold: it may lack those entries.
        commit = min(self.prs.progress[to].match, self.raft_log.committed)
        self.send(Message(type=MT.MsgHeartbeat, to=to, commit=commit, context=ctx))

    def bcast_append(self) -> None:
        for id_ in sorted(self.prs.progress):
            if id_ != self.id:
                self.maybe_send_append(id_, True)

    def bcast_heartbeat(self) -> None:
        self.bcast_heartbeat_with_ctx(self.read_only.last_pending_request_ctx())

    def bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for id_ in sorted(self.prs.progress):
            if id_ != self.id:
                self.send_heartbeat(id_, ctx)

    # -- commit -------------------------------------------------------------------------

    def maybe_commit(self) -> bool:
        """Advance the commit index to what a quorum acknowledged, if the rules allow it."""
        mci = self.prs.committed()
        log = self.raft_log
        if mci > log.committed and self._may_commit_by_counting(mci):
            log.commit_to(mci)
            return True
        return False

    def _may_commit_by_counting(self, index: int) -> bool:
        # §5.4.2: only entries of the current term are committed by counting replicas; earlier
        # ones are committed indirectly with them (see Figure 8 of the Raft paper).
        return self.raft_log.zero_term_on_compacted(index) == self.term

    def _candidate_log_ok(self, m: Message) -> bool:
        # §5.4.1: grant a vote only to a candidate whose log is at least as up to date as ours.
        return self.raft_log.is_up_to_date(m.index, m.log_term)

    # -- role transitions ---------------------------------------------------------------

    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.prs.reset_votes()
        last = self.raft_log.last_index()
        mi = self.prs.max_inflight
        for id_, old in self.prs.progress.items():
            pr = Progress(0, last + 1, mi, old.is_learner)
            if id_ == self.id:
                pr.match = last
            self.prs.progress[id_] = pr
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly(self.read_only.option)
        self.pending_read_index_messages = []

    def become_follower(self, term: int, lead: int) -> None:
        self.step_fn = self.step_follower
        self.reset(term)
        self.tick = self.tick_election
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> candidate]")
        self.step_fn = self.step_candidate
        self.reset(self.term + 1)
        self.tick = self.tick_election
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_pre_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        # A pre-candidate changes neither term nor vote: a failed pre-election leaves no trace,
        # which is what keeps a partitioned node from disrupting the cluster when it returns.
        self.step_fn = self.step_candidate
        self.prs.reset_votes()
        self.tick = self.tick_election
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise AssertionError("invalid transition [follower -> leader]")
        self.step_fn = self.step_leader
        self.reset(self.term)
        self.tick = self.tick_heartbeat
        self.lead = self.id
        self.state = StateType.LEADER
        pr = self.prs.progress[self.id]
        pr.become_replicate()
        pr.recent_active = True
        # Conservatively treat any unapplied entry as a possible conf change.
        self.pending_conf_index = self.raft_log.last_index()
        # An entry of our own term lets us commit (and so learn the commit index of) prior entries.
        if not self.append_entry([Entry()], owned=True):
            raise AssertionError("empty entry was dropped")

    def hup(self, t: bytes) -> None:
        if self.state == StateType.LEADER:
            return
        if not self.promotable():
            return
        log = self.raft_log
        if log.committed > log.applied:
            ents = log.slice(log.applied + 1, log.committed + 1, NO_LIMIT)
            # Applying a pending conf change could remove us; campaign only once it is applied.
            if any(e.type != EntryType.NORMAL for e in ents):
                return
        self.campaign(t)

    def campaign(self, t: bytes) -> None:
        if not self.promotable():
            return
        if t == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.MsgPreVote
            # Ask with the term we would use, without adopting it yet.
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.MsgVote
            term = self.term
        _, _, res = self.poll(self.id, vote_resp_type(vote_msg), True)
        if res == VoteResult.WON:
            # Single voter: we won on our own vote.
            if t == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if t == CAMPAIGN_TRANSFER else b""
        li = self.raft_log.last_index()
        lt = self.raft_log.last_term()
        for id_ in sorted(self.prs.config.voters.ids()):
            if id_ == self.id:
                continue
            self.send(Message(type=vote_msg, to=id_, term=term, index=li, log_term=lt, context=ctx))

    def poll(self, id_: int, t: MessageType, v: bool) -> tuple[int, int, VoteResult]:
        self.prs.record_vote(id_, v)
        return self.prs.tally_votes()

    # -- step ---------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type in (MT.MsgVote, MT.MsgPreVote):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (self.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.election_timeout)
                if not force and in_lease:
                    # We heard from a leader within the election timeout: ignore the (pre)vote,
                    # so a partitioned node cannot unseat a healthy leader (§9.6 / thesis 4.2.3).
                    return
            if m.type == MT.MsgPreVote:
                pass  # never change our term for a pre-vote
            elif m.type == MT.MsgPreVoteResp and not m.reject:
                pass  # term is bumped once a quorum granted the pre-vote
            elif m.type in (MT.MsgApp, MT.MsgHeartbeat, MT.MsgSnap):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if m.type in (MT.MsgHeartbeat, MT.MsgApp):
                # §5.1: answer with our term so a stale leader steps down. etcd only does this with
                # pre-vote/check-quorum on, relying otherwise on our campaign to raise its term; but a
                # learner (or a voter demoted while its term was ahead) never campaigns, and would
                # ignore the leader forever.
                self.send(Message(type=MT.MsgAppResp, to=m.frm))
            elif m.type == MT.MsgPreVote:
                self.send(Message(type=MT.MsgPreVoteResp, to=m.frm, term=self.term, reject=True))
            return

        t = m.type
        if t == MT.MsgHup:
            self.hup(CAMPAIGN_PRE_ELECTION if self.pre_vote else CAMPAIGN_ELECTION)
        elif t == MT.MsgVote or t == MT.MsgPreVote:
            can_vote = (
                self.vote == m.frm
                or (self.vote == NONE and self.lead == NONE)
                or (t == MT.MsgPreVote and m.term > self.term)
            )
            if can_vote and self._candidate_log_ok(m):
                # Reply with the request's term: a granted pre-vote speaks of a future term.
                self.send(Message(type=vote_resp_type(t), to=m.frm, term=m.term))
                if t == MT.MsgVote:
                    self.election_elapsed = 0
                    self.vote = m.frm
            else:
                self.send(Message(type=vote_resp_type(t), to=m.frm, term=self.term, reject=True))
        else:
            self.step_fn(m)

    def step_leader(self, m: Message) -> None:
        t = m.type
        if t == MT.MsgBeat:
            self.bcast_heartbeat()
            return
        if t == MT.MsgCheckQuorum:
            if not self.prs.quorum_active():
                self.become_follower(self.term, NONE)
            for id_, other in self.prs.progress.items():
                if id_ != self.id:
                    other.recent_active = False
            return
        if t == MT.MsgProp:
            self._leader_propose(m)
            return
        if t == MT.MsgReadIndex:
            if self.prs.is_singleton():
                resp = self.response_to_read_index_req(m, self.raft_log.committed)
                if resp.to != NONE:
                    self.send(resp)
                return
            # Until an entry of this term commits we may not know the latest commit index (§8).
            if not self.committed_entry_in_current_term():
                self.pending_read_index_messages.append(m)
                return
            self.send_msg_read_index_response(m)
            return

        pr = self.prs.progress.get(m.frm)
        if pr is None:
            return
        if t == MT.MsgAppResp:
            self._handle_append_response(m, pr)
        elif t == MT.MsgHeartbeatResp:
            pr.recent_active = True
            pr.probe_sent = False
            # A heartbeat answer proves the link works; let one more append through a full window.
            if pr.state == PST.REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.raft_log.last_index():
                self.send_append(m.frm)
            if self.read_only.option != ReadOnlyOption.SAFE or not m.context:
                return
            acks = self.read_only.recv_ack(m.frm, m.context)
            if acks is None or self.prs.config.voters.vote_result(acks) != VoteResult.WON:
                return
            for rs in self.read_only.advance(m.context):
                resp = self.response_to_read_index_req(rs.req, rs.index)
                if resp.to != NONE:
                    self.send(resp)
        elif t == MT.MsgSnapStatus:
            if pr.state != PST.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for an answer (append or heartbeat response) before probing further.
            pr.probe_sent = True
        elif t == MT.MsgUnreachable:
            if pr.state == PST.REPLICATE:
                pr.become_probe()
        elif t == MT.MsgTransferLeader:
            self._leader_transfer(m, pr)

    def _leader_propose(self, m: Message) -> None:
        if not m.entries:
            raise AssertionError("stepped empty MsgProp")
        if self.id not in self.prs.progress:
            # We were removed from the configuration; a proposal here could never commit.
            raise ErrProposalDropped("leader was removed from the configuration")
        if self.lead_transferee != NONE:
            raise ErrProposalDropped("leadership transfer in progress")
        ents = m.entries
        for i, e in enumerate(ents):
            if e.type == EntryType.NORMAL:
                continue
            cc = decode_conf_change(e.data, e.type == EntryType.CONF_CHANGE_V2)
            already_pending = self.pending_conf_index > self.raft_log.applied
            already_joint = bool(self.prs.config.voters.outgoing.ids)
            wants_leave_joint = isinstance(cc, ConfChangeV2) and not cc.changes
            if already_pending or (already_joint and not wants_leave_joint) or (
                not already_joint and wants_leave_joint
            ):
                # Keep the slot (callers may count entries) but make it a no-op.
                if ents is m.entries:
                    ents = list(ents)
                ents[i] = Entry()
            else:
                self.pending_conf_index = self.raft_log.last_index() + i + 1
        # Only the proposal our own RawNode is stepping right now carries entries made for this call.
        # Anything else (even with frm == our id: a proposal we forwarded may come back, possibly
        # duplicated) may share entries with other messages and is copied.
        if not self.append_entry(ents, owned=m is self.local_proposal and ents is m.entries):
            raise ErrProposalDropped("uncommitted log size limit reached")
        self.bcast_append()

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of a term the follower does not have (fast back-off).
                next_probe = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == PST.REPLICATE:
                    pr.become_probe()
                self.send_append(m.frm)
            return
        old_paused = pr.is_paused()
        # An ack of exactly the current match while probing still proves where the logs agree
        # (e.g. an empty probe after becoming leader): switch to replication without waiting.
        if not pr.maybe_update(m.index) and not (pr.match == m.index and pr.state == PST.PROBE):
            return
        if pr.state == PST.PROBE:
            pr.become_replicate()
        elif pr.state == PST.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == PST.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self.release_pending_read_index_messages()
            self.bcast_append()
        elif old_paused:
            self.send_append(m.frm)
        while self.maybe_send_append(m.frm, False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.raft_log.last_index():
            self.send_timeout_now(m.frm)

    def _leader_transfer(self, m: Message, pr: Progress) -> None:
        if pr.is_learner:
            return
        transferee = m.frm
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.abort_leader_transfer()
        if transferee == self.id:
            return
        # The transfer must finish within an election timeout or it is abandoned.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.raft_log.last_index():
            self.send_timeout_now(transferee)
        else:
            self.send_append(transferee)

    def step_candidate(self, m: Message) -> None:
        my_resp = MT.MsgPreVoteResp if self.state == StateType.PRE_CANDIDATE else MT.MsgVoteResp
        t = m.type
        if t == MT.MsgProp:
            raise ErrProposalDropped("no leader")
        if t == MT.MsgApp:
            self.become_follower(m.term, m.frm)
            self.handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.become_follower(m.term, m.frm)
            self.handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.become_follower(m.term, m.frm)
            self.handle_snapshot(m)
        elif t == my_resp:
            _, _, res = self.poll(m.frm, t, not m.reject)
            if res == VoteResult.WON:
                if self.state == StateType.PRE_CANDIDATE:
                    self.campaign(CAMPAIGN_ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == VoteResult.LOST:
                # Stay in the same term; a later timeout starts a new (pre-)election.
                self.become_follower(self.term, NONE)

    def step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.MsgProp:
            if self.lead == NONE:
                raise ErrProposalDropped("no leader")
            if self.disable_proposal_forwarding:
                raise ErrProposalDropped("proposal forwarding disabled")
            m.to = self.lead
            self.send(m)
        elif t == MT.MsgApp:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_snapshot(m)
        elif t == MT.MsgTransferLeader:
            if self.lead == NONE:
                return
            m.to = self.lead
            self.send(m)
        elif t == MT.MsgTimeoutNow:
            # The leader asked us to take over: campaign at once, skipping pre-vote, with the
            # transfer context so voters inside a leader lease still answer.
            self.hup(CAMPAIGN_TRANSFER)
        elif t == MT.MsgReadIndex:
            if self.lead == NONE:
                return
            m.to = self.lead
            self.send(m)
        elif t == MT.MsgReadIndexResp:
            if len(m.entries) != 1:
                return
            self.read_states.append(ReadState(m.index, m.entries[0].data))

    # -- follower handlers ----------------------------------------------------------------

    def handle_append_entries(self, m: Message) -> None:
        log = self.raft_log
        if m.index < log.committed:
            self.send(Message(type=MT.MsgAppResp, to=m.frm, index=log.committed))
            return
        lastnewi = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if lastnewi is not None:
            self.send(Message(type=MT.MsgAppResp, to=m.frm, index=lastnewi))
            return
        # Tell the leader where to look next: the last index at or before m.index whose term is
        # at most m.log_term can be the match point; everything after it cannot.
        hint = min(m.index, log.last_index())
        hint = log.find_conflict_by_term(hint, m.log_term)
        hint_term = log.zero_term_on_compacted(hint)
        self.send(Message(type=MT.MsgAppResp, to=m.frm, index=m.index, reject=True, reject_hint=hint,
                          log_term=hint_term))

    def handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self.send(Message(type=MT.MsgHeartbeatResp, to=m.frm, context=m.context))

    def handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        if self.restore(m.snapshot):
            self.send(Message(type=MT.MsgAppResp, to=m.frm, index=self.raft_log.last_index()))
        else:
            self.send(Message(type=MT.MsgAppResp, to=m.frm, index=self.raft_log.committed))

    def restore(self, s: Snapshot) -> bool:
        """Install snapshot s unless we already have what it covers; return whether we did."""
        meta = s.metadata
        log = self.raft_log
        if meta.index <= log.committed:
            return False
        if self.state != StateType.FOLLOWER:
            # Only a follower is sent snapshots; be defensive rather than corrupt leader state.
            self.become_follower(self.term + 1, NONE)
            return False
        cs = meta.conf_state
        if self.id not in cs.voters and self.id not in cs.learners and self.id not in cs.voters_outgoing:
            # A snapshot of a configuration that does not include us: likely a stale message.
            return False
        if log.match_term(meta.index, meta.term):
            # We already hold the snapshot's last entry: just fast-forward the commit index.
            log.commit_to(meta.index)
            return False
        log.restore(s)
        self.prs = ProgressTracker(self.prs.max_inflight)
        cfg, prs = confchange.restore(self.prs, log.last_index(), cs)
        got = self.switch_to_config(cfg, prs)
        if not got.equivalent(cs):
            raise AssertionError(f"restored conf state {got} differs from snapshot's {cs}")
        pr = self.prs.progress[self.id]
        pr.maybe_update(pr.next - 1)
        return True

    # -- ticks --------------------------------------------------------------------------

    def tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.MsgHup, frm=self.id))

    def tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MT.MsgCheckQuorum, frm=self.id))
            # A transfer that did not complete within an election timeout is abandoned.
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.MsgBeat, frm=self.id))

    # -- log ----------------------------------------------------------------------------

    def append_entry(self, es: list[Entry], owned: bool = False) -> bool:
        """Append entries at the end of our log in the current term.

        Unless `owned` (created by our own RawNode for this call), entries are copied: a forwarded or
        duplicated network message must never alias entries in our log.
        """
        log = self.raft_log
        li = log.last_index()
        term = self.term
        if owned:
            ents = es
            i = li
            for e in ents:
                i += 1
                e.term = term
                e.index = i
        else:
            ents = [Entry(term, li + 1 + i, e.type, e.data) for i, e in enumerate(es)]
        if self.max_uncommitted_size < NO_LIMIT:
            s = sum(len(e.data) for e in ents)
            if self.uncommitted_size > 0 and s > 0 and self.uncommitted_size + s > self.max_uncommitted_size:
                return False
            self.uncommitted_size += s
        li = log.append(ents)
        # The leader counts its own copy at once (etcd 3.4 style); the driver persists it before
        # sending any message or applying anything from the same Ready.
        self.prs.progress[self.id].maybe_update(li)
        self.maybe_commit()
        return True

    def reduce_uncommitted_size(self, ents: list[Entry]) -> None:
        if self.max_uncommitted_size >= NO_LIMIT or self.uncommitted_size == 0:
            return
        s = sum(len(e.data) for e in ents)
        self.uncommitted_size = max(0, self.uncommitted_size - s)

    def committed_entry_in_current_term(self) -> bool:
        return self.raft_log.zero_term_on_compacted(self.raft_log.committed) == self.term

    # -- read index ---------------------------------------------------------------------

    def response_to_read_index_req(self, req: Message, read_index: int) -> Message:
        if req.frm == NONE or req.frm == self.id:
            self.read_states.append(ReadState(read_index, req.entries[0].data))
            return Message()
        return Message(type=MT.MsgReadIndexResp, to=req.frm, index=read_index, entries=req.entries)

    def send_msg_read_index_response(self, m: Message) -> None:
        if self.read_only.option == ReadOnlyOption.SAFE:
            self.read_only.add_request(self.raft_log.committed, m)
            self.read_only.recv_ack(self.id, m.entries[0].data)
            self.bcast_heartbeat_with_ctx(m.entries[0].data)
        else:
            resp = self.response_to_read_index_req(m, self.raft_log.committed)
            if resp.to != NONE:
                self.send(resp)

    def release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages or not self.committed_entry_in_current_term():
            return
        msgs = self.pending_read_index_messages
        self.pending_read_index_messages = []
        for m in msgs:
            self.send_msg_read_index_response(m)

    # -- leadership transfer --------------------------------------------------------------

    def send_timeout_now(self, to: int) -> None:
        self.send(Message(type=MT.MsgTimeoutNow, to=to))

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- membership -----------------------------------------------------------------------

    def apply_conf_change(self, cc: ConfChange | ConfChangeV2) -> ConfState:
        v2 = cc.as_v2()
        changer = confchange.Changer(self.prs, self.raft_log.last_index())
        if v2.leave_joint():
            cfg, prs = changer.leave_joint()
        else:
            joint, auto_leave = v2.enter_joint()
            if joint:
                cfg, prs = changer.enter_joint(auto_leave, v2.changes)
            else:
                cfg, prs = changer.simple(v2.changes)
        return self.switch_to_config(cfg, prs)

    def switch_to_config(self, cfg: TrackerConfig, prs: dict[int, Progress]) -> ConfState:
        self.prs.config = cfg
        self.prs.progress = prs
        cs = self.prs.conf_state()
        pr = prs.get(self.id)
        self.is_learner = pr is not None and pr.is_learner
        if (pr is None or self.is_learner) and self.state == StateType.LEADER:
            # Removed or demoted leader: step down so the remaining voters elect a leader among
            # themselves after an election timeout (etcd keeps leading; stepping down is simpler
            # and equally safe).
            self.become_follower(self.term, NONE)
            return cs
        if self.state != StateType.LEADER or not cs.voters:
            return cs
        # The quorum may be smaller (or different) now, so more entries may be committed.
        if self.maybe_commit():
            self.bcast_append()
        else:
            for id_ in sorted(self.prs.progress):
                if id_ != self.id:
                    self.maybe_send_append(id_, False)
        if self.lead_transferee != NONE and self.lead_transferee not in self.prs.config.voters.ids():
            self.abort_leader_transfer()
        return cs

