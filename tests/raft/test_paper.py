"""Rules of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
Algorithm", extended version) and of the Raft thesis, each checked by one test.

Every test's docstring names the rule it checks and where it comes from. Single-node
rules are checked on a bare Raft instance by inspecting the messages it emits; cluster
rules use the interaction environment (messages delivered by hand).
"""

from __future__ import annotations

import random

import pytest

from etcdpy.raft import (
    ConfChangeSingle,
    ConfChangeType,
    ConfChangeV2,
    Config,
    ConfState,
    Entry,
    ErrProposalDropped,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProgressStateType,
    RawNode,
    StateType,
)
from etcdpy.raft.raft import Raft
from tests.raft.interaction import InteractionEnv

MT = MessageType


# -- helpers ------------------------------------------------------------------------------------


def new_raft(id_: int, voters: list[int], learners: list[int] | None = None, election: int = 10,
             heartbeat: int = 1, storage: MemoryStorage | None = None, **kw: object) -> Raft:
    st = storage or MemoryStorage()
    if storage is None:
        st.snap.metadata.conf_state = ConfState(voters=list(voters), learners=list(learners or []))
    cfg = Config(id=id_, storage=st, election_tick=election, heartbeat_tick=heartbeat, rng=random.Random(id_))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return Raft(cfg)


def take(r: Raft) -> list[Message]:
    msgs, r.msgs = r.msgs, []
    return msgs


def storage_with(ents: list[tuple[int, int]], voters: list[int], term: int = 0) -> MemoryStorage:
    """A storage holding entries given as (term, index), persisted by an earlier life."""
    st = MemoryStorage()
    st.snap.metadata.conf_state = ConfState(voters=list(voters))
    st.append([Entry(term=t, index=i, data=f"{t}/{i}".encode()) for t, i in ents])
    if term:
        st.set_hard_state(HardState(term=term))
    return st


def cluster(n: int, **kw: str) -> InteractionEnv:
    env = InteractionEnv()
    voters = ",".join(str(i) for i in range(1, n + 1))
    extra = [f"{k.replace('_', '-')}={v}" for k, v in kw.items()]
    env.run("add-nodes", [str(n), f"voters=({voters})", "index=1", *extra])
    return env


def do(env: InteractionEnv, line: str) -> str:
    parts = line.split()
    return env.run(parts[0], parts[1:])


def role(env: InteractionEnv, id_: int) -> tuple[StateType, int]:
    r = env.nodes[id_].rn.raft
    return r.state, r.term


def elect(env: InteractionEnv, id_: int) -> None:
    do(env, f"campaign {id_}")
    do(env, "stabilize")
    assert role(env, id_)[0] == StateType.LEADER


# -- §5.1: terms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [StateType.FOLLOWER, StateType.CANDIDATE, StateType.LEADER])
def test_update_term_from_message(state: StateType) -> None:
    """§5.1: "If one server's current term is smaller than the other's, then it updates its current
    term to the larger value. If a candidate or leader discovers that its term is out of date, it
    immediately reverts to follower state." """
    r = new_raft(1, [1, 2, 3])
    if state == StateType.CANDIDATE:
        r.become_candidate()
    elif state == StateType.LEADER:
        r.become_candidate()
        r.become_leader()
    r.step(Message(type=MT.MsgApp, frm=2, to=1, term=5))
    assert r.term == 5
    assert r.state == StateType.FOLLOWER
    assert r.lead == 2


def test_reject_stale_term_message() -> None:
    """§5.1: "If a server receives a request with a stale term number, it rejects the request", and its
    answer carries its current term so that the stale leader steps down."""
    r = new_raft(1, [1, 2, 3])
    r.load_state(HardState(term=2))
    r.step(Message(type=MT.MsgApp, frm=2, to=1, term=1, entries=[Entry(1, 1)]))
    assert r.raft_log.last_index() == 0
    assert r.term == 2
    assert [(m.type, m.to, m.term) for m in take(r)] == [(MT.MsgAppResp, 2, 2)]


# -- §5.2: leader election --------------------------------------------------------------------


def test_start_as_follower() -> None:
    """§5.2: "When servers start up, they begin as followers." """
    assert new_raft(1, [1, 2, 3]).state == StateType.FOLLOWER


def test_leader_bcast_beat() -> None:
    """§5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all
    followers in order to maintain their authority." """
    r = new_raft(1, [1, 2, 3], heartbeat=1)
    r.become_candidate()
    r.become_leader()
    take(r)
    r.tick()
    msgs = sorted(take(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.MsgHeartbeat, 2, 1), (MT.MsgHeartbeat, 3, 1)]
    assert all(not m.entries for m in msgs)


@pytest.mark.parametrize("state", [StateType.FOLLOWER, StateType.CANDIDATE])
def test_nonleader_start_election(state: StateType) -> None:
    """§5.2: "If a follower receives no communication over a period of time called the election
    timeout, then it ... begins an election": it increments its term, votes for itself and issues
    RequestVote RPCs in parallel to each of the other servers. A candidate whose election times out
    starts a new one the same way."""
    r = new_raft(1, [1, 2, 3], election=10)
    if state == StateType.CANDIDATE:
        r.become_candidate()
    take(r)
    term = r.term
    for _ in range(2 * 10):
        r.tick()
    assert r.term == term + 1
    assert r.state == StateType.CANDIDATE
    assert r.vote == 1
    msgs = sorted(take(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.MsgVote, 2, term + 1), (MT.MsgVote, 3, term + 1)]


@pytest.mark.parametrize("size,votes,want", [
    (1, {}, StateType.LEADER),
    (3, {2: True, 3: True}, StateType.LEADER),
    (3, {2: True}, StateType.LEADER),
    (5, {2: True, 3: True, 4: True, 5: True}, StateType.LEADER),
    (5, {2: True, 3: True}, StateType.LEADER),
    (3, {2: False, 3: False}, StateType.FOLLOWER),
    (5, {2: False, 3: False, 4: False}, StateType.FOLLOWER),
    (5, {2: True}, StateType.CANDIDATE),
    (5, {2: True, 3: False, 4: False}, StateType.CANDIDATE),
])
def test_leader_election_in_one_round(size: int, votes: dict[int, bool], want: StateType) -> None:
    """§5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
    full cluster for the same term." Lost elections revert to follower; undecided ones wait."""
    r = new_raft(1, list(range(1, size + 1)))
    r.step(Message(type=MT.MsgHup, frm=1))
    for id_, granted in votes.items():
        r.step(Message(type=MT.MsgVoteResp, frm=id_, to=1, term=r.term, reject=not granted))
    assert r.state == want
    assert r.term == 1


def test_follower_vote_once_per_term() -> None:
    """§5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-
    served basis." A repeated request from the same candidate is granted again."""
    r = new_raft(1, [1, 2, 3])
    r.step(Message(type=MT.MsgVote, frm=2, to=1, term=1))
    r.step(Message(type=MT.MsgVote, frm=3, to=1, term=1))
    r.step(Message(type=MT.MsgVote, frm=2, to=1, term=1))
    got = [(m.to, m.reject) for m in take(r)]
    assert got == [(2, False), (3, True), (2, False)]
    assert r.vote == 2


def test_candidate_falls_back_on_leader_append() -> None:
    """§5.2: "If the leader's term ... is at least as large as the candidate's current term, then the
    candidate recognizes the leader as legitimate and returns to follower state." """
    for term in (1, 2):
        r = new_raft(1, [1, 2, 3])
        r.step(Message(type=MT.MsgHup, frm=1))
        assert r.state == StateType.CANDIDATE
        r.step(Message(type=MT.MsgApp, frm=2, to=1, term=term))
        assert r.state == StateType.FOLLOWER
        assert r.term == term
        assert r.lead == 2


def test_election_timeout_randomized() -> None:
    """§5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval";
    here [election_tick, 2*election_tick), so split votes are rare and resolve quickly."""
    seen = set()
    for seed in range(50):
        r = new_raft(1, [1, 2, 3], election=10, rng=random.Random(seed))
        assert 10 <= r.randomized_election_timeout < 20
        seen.add(r.randomized_election_timeout)
        ticks = 0
        while r.state == StateType.FOLLOWER:
            r.tick()
            ticks += 1
        assert 10 <= ticks < 20
    assert len(seen) > 5


# -- §5.3: log replication ---------------------------------------------------------------------------


def test_leader_start_replication() -> None:
    """§5.3: "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs
    in parallel to each of the other servers to replicate the entry", carrying the index and term of
    the preceding entry and the leader's commit index."""
    r = new_raft(1, [1, 2, 3])
    r.become_candidate()
    r.become_leader()
    for id_ in (2, 3):
        r.step(Message(type=MT.MsgAppResp, frm=id_, to=1, term=1, index=1))
    take(r)
    r.step(Message(type=MT.MsgProp, frm=1, entries=[Entry(data=b"some data")]))
    assert r.raft_log.last_index() == 2
    msgs = sorted(take(r), key=lambda m: m.to)
    for m, to in zip(msgs, (2, 3), strict=True):
        assert (m.type, m.to, m.index, m.log_term, m.commit) == (MT.MsgApp, to, 1, 1, 1)
        assert [(e.term, e.index, e.data) for e in m.entries] == [(1, 2, b"some data")]


def test_leader_commit_entry_and_followers_learn_it() -> None:
    """§5.3: "A log entry is committed once the leader that created the entry has replicated it on a
    majority of the servers ... The leader keeps track of the highest index it knows to be committed,
    and it includes that index in future AppendEntries RPCs ... Once a follower learns that a log
    entry is committed, it applies the entry to its local state machine." """
    env = cluster(3)
    elect(env, 1)
    do(env, "propose 1 v")
    do(env, "stabilize")
    for id_ in (1, 2, 3):
        assert env.nodes[id_].applied == [b"v"]
        assert env.nodes[id_].rn.raft.raft_log.committed == 3


@pytest.mark.parametrize("size,acks,committed", [
    (1, set(), True), (3, set(), False), (3, {2}, True), (3, {2, 3}, True),
    (5, {2}, False), (5, {2, 3}, True), (5, {2, 3, 4, 5}, True),
])
def test_leader_acknowledged_commit(size: int, acks: set[int], committed: bool) -> None:
    """§5.3: an entry is committed exactly when a majority (counting the leader) has it."""
    r = new_raft(1, list(range(1, size + 1)))
    r.become_candidate()
    r.become_leader()
    for id_ in range(2, size + 1):
        r.step(Message(type=MT.MsgAppResp, frm=id_, to=1, term=1, index=1))
    r.step(Message(type=MT.MsgProp, frm=1, entries=[Entry(data=b"x")]))
    li = r.raft_log.last_index()
    for id_ in acks:
        r.step(Message(type=MT.MsgAppResp, frm=id_, to=1, term=1, index=li))
    assert (r.raft_log.committed >= li) == committed


def test_follower_rejects_mismatched_append() -> None:
    """§5.3: "If the follower does not find an entry in its log with the same index and term [as the
    preceding entry], then it refuses the new entries", with a hint for the leader to back off."""
    r = new_raft(1, [1, 2, 3], storage=storage_with([(1, 1), (2, 2)], [1, 2, 3], term=2))
    r.become_follower(2, 2)
    cases = [((2, 2), False), ((1, 1), False), ((3, 2), True), ((2, 3), True)]
    for (term, index), reject in cases:
        r.step(Message(type=MT.MsgApp, frm=2, to=1, term=2, log_term=term, index=index, commit=1))
        (m,) = take(r)
        assert m.type == MT.MsgAppResp and m.reject == reject, (term, index)
        if reject:
            assert m.reject_hint <= 2


def test_follower_append_entries_truncates_conflicts() -> None:
    """§5.3: "If an existing entry conflicts with a new one (same index but different terms), delete
    the existing entry and all that follow it"; entries already present are left alone."""
    st = storage_with([(1, 1), (2, 2)], [1, 2, 3], term=3)
    r = new_raft(1, [1, 2, 3], storage=st)
    r.become_follower(3, 2)
    ents = [Entry(3, 2), Entry(3, 3)]
    r.step(Message(type=MT.MsgApp, frm=2, to=1, term=3, log_term=1, index=1, entries=ents))
    assert [(e.term, e.index) for e in r.raft_log.all_entries()] == [(1, 1), (3, 2), (3, 3)]
    assert [(e.term, e.index) for e in r.raft_log.unstable_entries()] == [(3, 2), (3, 3)]
    r.step(Message(type=MT.MsgApp, frm=2, to=1, term=3, log_term=1, index=1, entries=[Entry(3, 2)]))
    assert r.raft_log.last_index() == 3


# Figure 7 of the paper: the leader for term 8 and six follower logs (terms of entries 1..n).
FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6],
    [1, 1, 1, 4],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    [1, 1, 1, 4, 4, 4, 4],
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
]


@pytest.mark.parametrize("follower", FIG7_FOLLOWERS, ids=list("abcdef"))
def test_leader_sync_follower_log(follower: list[int]) -> None:
    """§5.3 / Figure 7: "the leader handles inconsistencies by forcing the followers' logs to duplicate
    its own" -- missing entries are filled in and extraneous ones overwritten."""
    lead_st = storage_with([(t, i + 1) for i, t in enumerate(FIG7_LEADER)], [1, 2, 3], term=8)
    foll_st = storage_with([(t, i + 1) for i, t in enumerate(follower)], [1, 2, 3], term=7)
    env = InteractionEnv()
    from tests.raft.interaction import Node
    for id_, st in ((1, lead_st), (2, foll_st), (3, MemoryStorage())):
        if id_ == 3:
            st.snap.metadata.conf_state = ConfState(voters=[1, 2, 3])
        cfg = Config(id=id_, storage=st, rng=random.Random(id_))
        env.nodes[id_] = Node(RawNode(cfg), st, ConfState(voters=[1, 2, 3]))
    # Node 3 (empty log) votes for the leader; the follower under test is only replicated to.
    r1 = env.nodes[1].rn.raft
    r1.become_candidate()
    r1.poll(1, MT.MsgVoteResp, True)
    r1.step(Message(type=MT.MsgVoteResp, frm=3, to=1, term=r1.term))
    assert r1.state == StateType.LEADER
    do(env, "stabilize")
    want = [(e.term, e.index) for e in r1.raft_log.all_entries()]
    got = [(e.term, e.index) for e in env.nodes[2].rn.raft.raft_log.all_entries()]
    assert got == want
    assert [e.term for e in env.nodes[2].storage.ents[1:]] == FIG7_LEADER + [r1.term]


def test_fast_backoff_skips_a_whole_term() -> None:
    """§5.3 (optimisation at the end of the section): on rejection the follower reports the conflicting
    term and the first index it stores for that term, so the leader skips all entries of that term in
    one step instead of one entry per round trip."""
    env = InteractionEnv()
    from tests.raft.interaction import Node
    long_tail = [1] + [2] * 50
    for id_, terms in ((1, [1, 3]), (2, long_tail), (3, [1])):
        st = storage_with([(t, i + 1) for i, t in enumerate(terms)], [1, 2, 3], term=3)
        env.nodes[id_] = Node(RawNode(Config(id=id_, storage=st, rng=random.Random(id_))), st,
                              ConfState(voters=[1, 2, 3]))
    r1 = env.nodes[1].rn.raft
    r1.become_candidate()
    r1.poll(1, MT.MsgVoteResp, True)
    r1.step(Message(type=MT.MsgVoteResp, frm=3, to=1, term=r1.term))
    out = do(env, "stabilize")
    rejections = [line for line in out.split("\n") if "2->1 MsgAppResp" in line and "Rejected" in line]
    assert len(rejections) <= 2
    assert [e.term for e in env.nodes[2].storage.ents[1:]] == [1, 3, 4]


# -- §5.4: safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cand_term,cand_index,granted", [
    (1, 1, False), (1, 2, False), (1, 3, False), (2, 1, False), (2, 2, True), (2, 3, True),
    (3, 1, True), (3, 2, True),
])
def test_voter_checks_log_up_to_date(cand_term: int, cand_index: int, granted: bool) -> None:
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the candidate":
    the later last term wins; with equal last terms the longer log wins."""
    st = storage_with([(1, 1), (2, 2)], [1, 2, 3])
    r = new_raft(1, [1, 2, 3], storage=st)
    r.step(Message(type=MT.MsgVote, frm=2, to=1, term=3, log_term=cand_term, index=cand_index))
    (m,) = take(r)
    assert m.type == MT.MsgVoteResp and m.reject == (not granted)


def test_leader_only_commits_current_term_by_counting() -> None:
    """§5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log entries
    from the leader's current term are committed by counting replicas." (cf. Figure 8)"""
    st = storage_with([(1, 1), (2, 2)], [1, 2, 3], term=2)
    r = new_raft(1, [1, 2, 3], storage=st)
    r.become_candidate()
    r.become_leader()  # term 3, no-op at index 3
    assert r.term == 3
    r.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=3, index=2))
    assert r.raft_log.committed == 0, "index 2 (term 2) is on a majority but must not be committed"
    r.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=3, index=3))
    assert r.raft_log.committed == 3, "committing the term-3 entry commits index 2 indirectly"


def test_figure8_scenario_is_safe() -> None:
    """§5.4.2 / Figure 8: the full five-node scenario, driven message by message, with the simulator's
    invariants (leader completeness, state machine safety) watching every step."""
    from tests.raft.simulator import ManualCluster
    from tests.raft.test_mutations import figure8

    figure8(ManualCluster(5, max_size_per_msg=1))


# -- §6: cluster membership changes ---------------------------------------------------------------


def test_learner_neither_votes_nor_counts() -> None:
    """§6 (thesis §4.2.1, non-voting members): a learner receives the log but is not part of any
    majority: it never campaigns and its acknowledgement does not help commit."""
    r = new_raft(1, [1, 2], learners=[3])
    r.become_candidate()
    r.poll(1, MT.MsgVoteResp, True)
    r.step(Message(type=MT.MsgVoteResp, frm=3, to=1, term=1))
    assert r.state == StateType.CANDIDATE, "a learner's vote must not count"
    r.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    assert r.state == StateType.LEADER
    r.step(Message(type=MT.MsgAppResp, frm=3, to=1, term=1, index=1))
    assert r.raft_log.committed == 0
    learner = new_raft(3, [1, 2], learners=[3])
    for _ in range(100):
        learner.tick()
    assert learner.state == StateType.FOLLOWER and not learner.msgs


def test_joint_consensus_needs_both_majorities() -> None:
    """§6: "Agreement (for elections and entry commitment) requires separate majorities from both the
    old and new configurations" while in the joint configuration C_old,new."""
    r = new_raft(1, [1, 2, 3])
    r.become_candidate()
    r.become_leader()
    r.apply_conf_change(ConfChangeV2([ConfChangeSingle(ConfChangeType.ADD_NODE, 4),
                                      ConfChangeSingle(ConfChangeType.ADD_NODE, 5),
                                      ConfChangeSingle(ConfChangeType.REMOVE_NODE, 2),
                                      ConfChangeSingle(ConfChangeType.REMOVE_NODE, 3)]))
    assert r.prs.config.voters.outgoing.ids == {1, 2, 3}
    r.step(Message(type=MT.MsgProp, frm=1, entries=[Entry(data=b"x")]))
    li = r.raft_log.last_index()
    for id_ in (4, 5):  # majority of the new config only
        r.step(Message(type=MT.MsgAppResp, frm=id_, to=1, term=1, index=li))
    assert r.raft_log.committed < li
    r.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=li))  # now the old one too
    assert r.raft_log.committed == li


def test_one_conf_change_at_a_time() -> None:
    """§6 (thesis §4.1): a leader does not start a new membership change until the previous one is
    applied; an early second change is replaced by an empty entry."""
    env = cluster(3)
    elect(env, 1)
    do(env, "propose-conf-change 1 l4 v1")
    do(env, "propose-conf-change 1 l5 v1")
    do(env, "stabilize")
    assert env.nodes[1].rn.raft.prs.conf_state().learners == [4]


# -- §8: client interaction, read-only queries ----------------------------------------------------


def test_read_index_waits_for_heartbeat_quorum() -> None:
    """§8: "a leader must check whether it has been deposed before processing a read-only request ...
    by exchanging heartbeat messages with a majority of the cluster", using the commit index as the
    read index, and only after committing an entry of its own term."""
    r = new_raft(1, [1, 2, 3])
    r.become_candidate()
    r.become_leader()
    r.step(Message(type=MT.MsgReadIndex, frm=1, entries=[Entry(data=b"ctx")]))
    assert not r.read_states and r.pending_read_index_messages, "must wait for an entry of its term"
    r.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=1))
    assert r.raft_log.committed == 1
    hbs = [m for m in take(r) if m.type == MT.MsgHeartbeat]
    assert hbs and all(m.context == b"ctx" for m in hbs)
    assert not r.read_states, "leadership not yet confirmed"
    r.step(Message(type=MT.MsgHeartbeatResp, frm=3, to=1, term=1, context=b"ctx"))
    assert [(rs.index, rs.request_ctx) for rs in r.read_states] == [(1, b"ctx")]


def check_deposed_leader_serves_no_stale_reads() -> None:
    env = cluster(3)
    elect(env, 1)
    do(env, "isolate 1")
    do(env, "campaign 2")
    do(env, "stabilize 2 3")
    assert role(env, 2)[0] == StateType.LEADER
    do(env, "propose 2 new")
    do(env, "stabilize 2 3")
    committed = env.nodes[2].rn.raft.raft_log.committed
    # Node 1 still believes it leads; a read there must not return an index below `committed`, and
    # while it cannot hear a majority it must not answer at all.
    do(env, "read-index 1 stale")
    out = do(env, "stabilize 1")
    stale = read_indexes(out, b"stale")
    for index in stale:
        assert index >= committed, f"stale read at index {index} < {committed}"
    assert not stale, "an isolated leader answered a read without confirming its leadership"
    # Healed, node 1 learns of the new term and steps down; a read it then issues goes to the new
    # leader and is answered at an index that includes the new entry.
    do(env, "heal")
    out = do(env, "stabilize") + do(env, "tick-heartbeat 2") + do(env, "stabilize")
    assert role(env, 1) == (StateType.FOLLOWER, role(env, 2)[1])
    assert env.nodes[1].rn.raft.lead == 2
    assert all(index >= committed for index in read_indexes(out, b"stale"))
    do(env, "read-index 1 fresh")
    fresh = read_indexes(do(env, "stabilize"), b"fresh")
    assert fresh and all(index >= committed for index in fresh), f"read after healing: {fresh}"


def read_indexes(out: str, ctx: bytes) -> list[int]:
    """The indexes of the ReadStates for request context ctx in an interaction trace."""
    return [int(line.split("Index:")[1].split()[0]) for line in out.split("\n") if f"Ctx:{ctx!r}" in line]


def test_deposed_leader_serves_no_stale_reads() -> None:
    """§8: "a leader must check whether it has been deposed before processing a read-only request
    (its information may be stale if a more recent leader has been elected)". An isolated old leader
    cannot gather heartbeat acknowledgements from a majority, so it answers no reads."""
    check_deposed_leader_serves_no_stale_reads()


def test_read_index_on_follower_is_forwarded() -> None:
    """§8 (thesis §6.4): followers forward read requests to the leader and serve them locally once
    their applied index reaches the leader's read index."""
    env = cluster(3)
    elect(env, 1)
    do(env, "read-index 2 q")
    out = do(env, "stabilize")
    assert "2->1 MsgReadIndex" in out and "1->2 MsgReadIndexResp" in out
    # The ReadState surfaces in node 2's Ready, at the leader's commit index.
    handled_by_2 = out.split("> 2 handling Ready")[-1]
    committed = env.nodes[1].rn.raft.raft_log.committed
    assert f"Index:{committed} Ctx:b'q'" in handled_by_2


def test_proposal_without_leader_is_dropped() -> None:
    """§8: "If the client contacts a follower, the follower rejects its request" unless it knows a
    leader to forward to; with no leader the proposal fails fast."""
    r = RawNode(Config(id=1, storage=_st([1, 2, 3]), rng=random.Random(1)))
    with pytest.raises(ErrProposalDropped):
        r.propose(b"x")


def _st(voters: list[int]) -> MemoryStorage:
    st = MemoryStorage()
    st.snap.metadata.conf_state = ConfState(voters=voters)
    return st


# -- thesis §9.6 / §6.2: pre-vote, check-quorum; §3.10: leadership transfer -------------------------


def check_prevote_keeps_partitioned_node_from_disrupting() -> None:
    env = cluster(3, pre_vote="true", check_quorum="true")
    elect(env, 1)
    term = role(env, 1)[1]
    do(env, "isolate 3")
    for _ in range(5):
        do(env, "tick-election 3")
        do(env, "stabilize")
    assert role(env, 3)[1] == term, "a pre-candidate must not increase its term"
    do(env, "heal")
    do(env, "tick-election 3")
    do(env, "stabilize")
    do(env, "tick-heartbeat 1")
    do(env, "stabilize")
    assert role(env, 1) == (StateType.LEADER, term), "the healthy leader must not be disrupted"
    assert role(env, 3) == (StateType.FOLLOWER, term)


def test_prevote_keeps_partitioned_node_from_disrupting() -> None:
    """Thesis §9.6: with pre-vote a node first asks whether it could win; a partitioned node cannot, so
    it never increases its term and does not depose the leader when it rejoins."""
    check_prevote_keeps_partitioned_node_from_disrupting()


def check_isolated_leader_steps_down() -> None:
    env = cluster(3, check_quorum="true")
    elect(env, 1)
    do(env, "isolate 1")
    do(env, "tick-heartbeat 1 20")
    assert role(env, 1)[0] == StateType.FOLLOWER, "a leader without a live quorum must step down"


def test_check_quorum_isolated_leader_steps_down() -> None:
    """Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round of
    heartbeats to a majority of its cluster", so clients can find the real leader."""
    check_isolated_leader_steps_down()


def test_check_quorum_ignores_votes_within_lease() -> None:
    """Thesis §4.2.3: a server that heard from a current leader within the minimum election timeout
    does not update its term or grant its vote."""
    r = new_raft(1, [1, 2, 3], check_quorum=True)
    r.become_follower(1, 2)
    r.step(Message(type=MT.MsgVote, frm=3, to=1, term=2, log_term=5, index=10))
    assert r.term == 1 and not r.msgs


def test_leader_transfer() -> None:
    """Thesis §3.10: the leader stops accepting requests, brings the target up to date, then sends
    TimeoutNow so it starts an election at once (bypassing pre-vote and leases)."""
    env = cluster(3, pre_vote="true", check_quorum="true")
    elect(env, 1)
    do(env, "transfer-leader 1 2")
    assert "ErrProposalDropped" in do(env, "propose 1 x")
    do(env, "stabilize")
    assert role(env, 2)[0] == StateType.LEADER
    assert role(env, 1)[0] == StateType.FOLLOWER


def test_snapshot_sent_to_follower_behind_compaction() -> None:
    """§7: "the leader must occasionally send snapshots to followers that lag behind" when the entries
    they need were discarded; the follower's progress returns to replication once it has caught up."""
    env = cluster(3)
    elect(env, 1)
    do(env, "isolate 3")
    do(env, "propose-many 1 a b c")
    do(env, "stabilize")
    do(env, "compact 1 4")
    do(env, "heal")
    do(env, "tick-heartbeat 1")
    out = do(env, "stabilize")
    assert "MsgSnap" in out
    pr = env.nodes[1].rn.status().progress[3]
    assert pr.state == ProgressStateType.REPLICATE
    assert pr.match == env.nodes[1].rn.raft.raft_log.last_index()
