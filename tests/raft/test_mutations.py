"""Mutation checks: break one Raft rule in the core and show that the tests notice.

If the simulator's invariants or the targeted scenarios still passed with a rule broken,
they would be giving false comfort. Each test monkeypatches a small seam of raft.Raft or
RawNode, or of the simulated driver's Ready handling (no test-only flags exist in production
code), and expects a violation. The last group demands that the simulator's random runs, not
only hand-written scenarios, catch each rule broken in issue 12.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from etcdpy.raft import Message, MessageType, RawNode, Ready, StateType
from etcdpy.raft.raft import Raft
from tests.raft.simulator import InvariantViolation, ManualCluster, SimNode, Simulator
from tests.raft.test_paper import check_prevote_keeps_partitioned_node_from_disrupting
from tests.raft.test_simulation import run_case

MT = MessageType


def figure8(c: ManualCluster) -> None:
    """Figure 8 of the Raft paper, driven message by message on five nodes.

    Entries 1-5 are the bootstrap conf changes; the payload entry "x" lands at index 7.
    """
    # (a) S1 leads term 2 and replicates "x" (index 7, term 2) only to S2, then crashes.
    c.campaign(1)
    c.settle(lambda m: True)
    assert c.state(1) == (StateType.LEADER, 2)
    c.node(1).propose(b"x")
    c.settle(lambda m: m.to == 2 or m.frm == 2)
    c.crash(1)
    # (b) S5 wins term 3 with votes from S3 and S4, appends its no-op at index 7, and crashes.
    c.campaign(5)
    c.settle(lambda m: m.to in (3, 4, 5) and m.type != MT.MsgApp)
    assert c.state(5) == (StateType.LEADER, 3)
    c.settle(lambda m: False)
    c.crash(5)
    # (c) S1 restarts and wins term 4 (its first try in term 3 loses: S3, S4 voted for S5).
    c.restart(1)
    c.settle(lambda m: False)  # re-apply the committed bootstrap conf changes first

    def phase_c(m: Message) -> bool:
        if m.to == 5:
            return False
        if m.type != MT.MsgApp:
            return True
        if m.to == 2:
            return False
        # Probes that S3/S4 reject pass (they append nothing); appends carrying the term-4 entry
        # are lost, so S3 and S4 only ever receive index 7 (term 2).
        rejected = not c.node(m.to).raft.raft_log.match_term(m.index, m.log_term)
        return rejected or not any(e.term == 4 for e in m.entries)

    c.campaign(1)
    c.settle(phase_c)
    c.campaign(1)
    c.settle(phase_c)
    assert c.state(1) == (StateType.LEADER, 4)
    # Index 7 (term 2) is now on a majority (S1, S3, S4) -- yet only entries of the current term
    # may be committed by counting, so it must not be committed.
    c.crash(1)
    # (d) S5 restarts and wins term 5 with S2, S3, S4 (its last term 3 beats their 2), then
    # overwrites index 7. Safe only if index 7 was never committed.
    c.restart(5)
    c.settle(lambda m: False)
    for _ in range(2):
        c.campaign(5)
        c.settle(lambda m: m.to in (2, 3, 4, 5))
    assert c.state(5)[0] == StateType.LEADER
    c.settle(lambda m: True)


def test_figure8_is_safe_unmutated() -> None:
    c = ManualCluster(5, max_size_per_msg=1)
    figure8(c)
    # "x" was never committed, so overwriting it is allowed; S5's entries are what counts.
    assert all(d != b"x" for _, d in c.sim.applied.values())


def test_mutation_commit_previous_term_by_counting_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break §5.4.2: let a leader commit an entry of an earlier term by counting replicas."""
    monkeypatch.setattr(Raft, "_may_commit_by_counting", lambda self, index: True)
    c = ManualCluster(5, max_size_per_msg=1)
    with pytest.raises(InvariantViolation, match="leader completeness|committed entry lost|state machine"):
        figure8(c)


def test_mutation_vote_ignoring_log_is_caught_by_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break §5.4.1: grant votes regardless of whether the candidate's log is up to date."""
    monkeypatch.setattr(Raft, "_candidate_log_ok", lambda self, m: True)
    for seed in range(40):
        try:
            run_case(seed, 3)
        except InvariantViolation as e:
            assert "leader completeness" in str(e) or "state machine" in str(e) or "lost" in str(e)
            assert f"SEED={seed} N=3" in str(e)
            return
    pytest.fail("the simulator did not notice votes granted to out-of-date candidates in 40 seeds")


def test_mutation_pre_candidate_bumps_term_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break pre-vote's term protection: the pre-candidate increments its term like a candidate."""
    orig = Raft.become_pre_candidate

    def bumping(self: Raft) -> None:
        orig(self)
        self.term += 1
        self.vote = 0

    monkeypatch.setattr(Raft, "become_pre_candidate", bumping)
    with pytest.raises(AssertionError):
        check_prevote_keeps_partitioned_node_from_disrupting()


def test_mutation_read_index_without_heartbeat_round_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break §8: answer ReadIndex with the local commit index without confirming leadership."""
    from tests.raft.test_paper import check_deposed_leader_serves_no_stale_reads

    def immediate(self: Raft, m: Message) -> None:
        resp = self.response_to_read_index_req(m, self.raft_log.committed)
        if resp.to:
            self.send(resp)

    monkeypatch.setattr(Raft, "send_msg_read_index_response", immediate)
    with pytest.raises(AssertionError, match="stale read"):
        check_deposed_leader_serves_no_stale_reads()


def test_mutation_no_check_quorum_step_down_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break check-quorum: the leader never notices it lost its majority."""
    from etcdpy.raft.tracker import ProgressTracker
    from tests.raft.test_paper import check_isolated_leader_steps_down

    monkeypatch.setattr(ProgressTracker, "quorum_active", lambda self: True)
    with pytest.raises(AssertionError):
        check_isolated_leader_steps_down()


# -- the random runs catch the mutations of issue 12 ---------------------------------------------------
#
# Each mutation must be caught by the CI simulation's own random runs (seeds and options as in
# test_simulation.options_for), not only by a scenario written for it: 3- and 5-node runs
# alternately, at most 300 short runs, stopping at the first violation.

RANDOM_RUNS = [(n, seed) for seed in range(150) for n in (3, 5)]


def commit_earlier_term_by_counting(mp: pytest.MonkeyPatch) -> None:
    """§5.4.2 / Figure 8: a leader commits an entry of an earlier term once a majority holds it."""
    mp.setattr(Raft, "_may_commit_by_counting", lambda self, index: True)


def vote_not_synced(mp: pytest.MonkeyPatch) -> None:
    """Ready.must_sync ignores a vote or term change: the vote is written, answered, and a crash loses it."""
    orig = RawNode.ready

    def ready(self: RawNode) -> Ready:
        rd = orig(self)
        rd.must_sync = bool(rd.entries)
        return rd

    mp.setattr(RawNode, "ready", ready)


def reply_before_persisting(mp: pytest.MonkeyPatch) -> None:
    """The driver sends every member's messages (votes, acknowledgements) before persisting the Ready,
    not only a leader's."""

    def always(self: Simulator, node: SimNode, rd: Ready) -> bool:
        return True

    mp.setattr(Simulator, "sends_before_persisting", always)


def accept_stale_term_appends(mp: pytest.MonkeyPatch) -> None:
    """§5.1: the stale-term guard lets a MsgApp from an older term through to the role's handler."""
    orig = Raft.step

    def step(self: Raft, m: Message) -> None:
        if m.type == MT.MsgApp and 0 < m.term < self.term:
            self.step_fn(m)
            return
        orig(self, m)

    mp.setattr(Raft, "step", step)


def append_stale_term_entries(mp: pytest.MonkeyPatch) -> None:
    """A narrower §5.1 break: a stale-term MsgApp's entries are appended, but role and leader stay."""
    orig = Raft.step

    def step(self: Raft, m: Message) -> None:
        if m.type == MT.MsgApp and 0 < m.term < self.term:
            self.handle_append_entries(m)
            return
        orig(self, m)

    mp.setattr(Raft, "step", step)


MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "commit_earlier_term_by_counting": commit_earlier_term_by_counting,
    "vote_not_synced": vote_not_synced,
    "reply_before_persisting": reply_before_persisting,
    "accept_stale_term_appends": accept_stale_term_appends,
    "append_stale_term_entries": append_stale_term_entries,
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_random_runs_catch_mutation(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MUTATIONS[name](monkeypatch)
    for n, seed in RANDOM_RUNS:
        try:
            run_case(seed, n)
        except InvariantViolation as e:
            caught = str(e)
            break
    else:
        pytest.fail(f"mutation {name} survived {len(RANDOM_RUNS)} random simulator runs")
    # The failure names its seed, and that seed replays it exactly.
    assert f"SEED={seed} N={n}" in caught
    with pytest.raises(InvariantViolation) as again:
        run_case(seed, n)
    assert str(again.value) == caught


def test_one_voter_leader_sending_before_its_sync_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The regression seeds of app/server/node_core.py's send order still reach the bug they pin: a leader
    that alone is a quorum sending its Ready (announcing entries as committed) before syncing it."""

    def leader_always_first(self: Simulator, node: SimNode, rd: Ready) -> bool:
        return node.role == StateType.LEADER

    monkeypatch.setattr(Simulator, "sends_before_persisting", leader_always_first)
    for seed in (132, 357):
        with pytest.raises(InvariantViolation, match="leader completeness"):
            run_case(seed, 1, conf_changes=True)
