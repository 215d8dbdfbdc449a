"""Unit tests of the pure building blocks: storage, log, inflights, quorum, conf changes, codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcdpy.raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    ErrCompacted,
    ErrSnapOutOfDate,
    ErrUnavailable,
    MemoryStorage,
    decode_conf_change,
    encode_conf_change,
)
from etcdpy.raft.confchange import Changer, restore
from etcdpy.raft.errors import ErrConfChangeInvalid
from etcdpy.raft.log import RaftLog
from etcdpy.raft.progress import Inflights
from etcdpy.raft.quorum import JointConfig, MajorityConfig, VoteResult
from etcdpy.raft.tracker import ProgressTracker


def mem(ents: list[tuple[int, int]]) -> MemoryStorage:
    s = MemoryStorage()
    s.append([Entry(t, i) for t, i in ents])
    return s


# -- MemoryStorage ---------------------------------------------------------------------------


def test_memory_storage_reads_and_errors() -> None:
    s = mem([(1, 1), (1, 2), (2, 3)])
    assert (s.first_index(), s.last_index()) == (1, 3)
    assert [e.index for e in s.entries(1, 4, 1 << 30)] == [1, 2, 3]
    assert [e.index for e in s.entries(1, 4, 0)] == [1], "at least one entry even over the limit"
    assert s.term(3) == 2
    with pytest.raises(ErrUnavailable):
        s.term(4)
    s.create_snapshot(2, ConfState(voters=[1]), b"snap")
    s.compact(2)
    assert s.first_index() == 3
    with pytest.raises(ErrCompacted):
        s.entries(2, 3, 100)
    with pytest.raises(ErrCompacted):
        s.term(1)
    assert s.term(2) == 1
    with pytest.raises(ErrSnapOutOfDate):
        s.create_snapshot(1, None, b"")
    with pytest.raises(ErrCompacted):
        s.compact(2)


def test_memory_storage_append_truncates_conflicts() -> None:
    s = mem([(1, 1), (1, 2), (1, 3)])
    s.append([Entry(2, 2)])
    assert [(e.term, e.index) for e in s.ents[1:]] == [(1, 1), (2, 2)]
    with pytest.raises(ValueError):
        s.append([Entry(2, 5)])


# -- RaftLog -----------------------------------------------------------------------------------


def test_find_conflict_and_maybe_append() -> None:
    log = RaftLog(mem([(1, 1), (2, 2), (3, 3)]))
    assert log.find_conflict([Entry(1, 1), Entry(2, 2)]) == 0
    assert log.find_conflict([Entry(2, 2), Entry(4, 3)]) == 3
    assert log.find_conflict([Entry(3, 3), Entry(4, 4)]) == 4
    assert log.maybe_append(1, 9, 3, [Entry(4, 2)]) is None, "previous term mismatch"
    assert log.maybe_append(1, 1, 3, [Entry(4, 2)]) == 2
    assert log.last_index() == 2 and log.committed == 2, "commit is capped at the last new index"


def test_find_conflict_by_term() -> None:
    log = RaftLog(mem([(1, 1), (2, 2), (2, 3), (2, 4), (5, 5)]))
    assert log.find_conflict_by_term(5, 4) == 4
    assert log.find_conflict_by_term(4, 1) == 1
    assert log.find_conflict_by_term(9, 1) == 9, "beyond the log: unchanged"


def test_is_up_to_date() -> None:
    log = RaftLog(mem([(1, 1), (2, 2)]))
    assert log.is_up_to_date(2, 2) and log.is_up_to_date(1, 3) and not log.is_up_to_date(1, 2)


# -- Inflights ----------------------------------------------------------------------------------


def test_inflights_window() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        inf.add(i)
    assert inf.full()
    with pytest.raises(AssertionError):
        inf.add(10)
    inf.free_le(7)
    assert inf.count() == 1 and not inf.full()
    inf.free_first_one()
    assert inf.count() == 0


# -- quorum -------------------------------------------------------------------------------------


@given(st.dictionaries(st.integers(1, 9), st.integers(0, 100), min_size=1, max_size=9))
def test_majority_committed_index_matches_brute_force(acked: dict[int, int]) -> None:
    cfg = MajorityConfig(acked)
    got = cfg.committed_index(acked.get)
    # The largest index that a majority has acknowledged.
    want = max(i for i in [0, *acked.values()] if sum(v >= i for v in acked.values()) > len(acked) // 2)
    assert got == want


@given(st.sets(st.integers(1, 7), min_size=1), st.sets(st.integers(1, 7), min_size=1),
       st.dictionaries(st.integers(1, 7), st.integers(0, 50)))
def test_joint_committed_index_is_min_of_halves(a: set[int], b: set[int], acked: dict[int, int]) -> None:
    j = JointConfig(MajorityConfig(a), MajorityConfig(b))
    assert j.committed_index(acked.get) == min(MajorityConfig(a).committed_index(acked.get),
                                               MajorityConfig(b).committed_index(acked.get))


def test_vote_results() -> None:
    m = MajorityConfig({1, 2, 3})
    assert m.vote_result({1: True}) == VoteResult.PENDING
    assert m.vote_result({1: True, 2: True}) == VoteResult.WON
    assert m.vote_result({1: False, 2: False}) == VoteResult.LOST
    j = JointConfig(MajorityConfig({1, 2, 3}), MajorityConfig({3, 4, 5}))
    assert j.vote_result({1: True, 2: True}) == VoteResult.PENDING
    assert j.vote_result({1: True, 2: True, 4: False, 5: False}) == VoteResult.LOST
    assert j.vote_result({1: True, 3: True, 4: True}) == VoteResult.WON


# -- conf changes ------------------------------------------------------------------------------


def tracker(voters: list[int], learners: list[int] | None = None) -> ProgressTracker:
    t = ProgressTracker(8)
    restore(t, 10, ConfState(voters=voters, learners=learners or []))
    return t


def cc(*specs: str) -> list[ConfChangeSingle]:
    kinds = {"v": ConfChangeType.ADD_NODE, "l": ConfChangeType.ADD_LEARNER_NODE,
             "r": ConfChangeType.REMOVE_NODE}
    return [ConfChangeSingle(kinds[s[0]], int(s[1:])) for s in specs]


def test_simple_change_allows_one_voter_delta() -> None:
    t = tracker([1, 2, 3])
    cfg, prs = Changer(t, 10).simple(cc("v4"))
    assert cfg.voters.incoming.ids == {1, 2, 3, 4} and prs[4].next == 10
    with pytest.raises(ErrConfChangeInvalid):
        Changer(t, 10).simple(cc("v4", "v5"))
    with pytest.raises(ErrConfChangeInvalid):
        Changer(tracker([1]), 10).simple(cc("r1"))


def test_joint_enter_and_leave_with_demotion() -> None:
    t = tracker([1, 2, 3])
    cfg, prs = Changer(t, 10).enter_joint(True, cc("l3", "v4"))
    assert cfg.voters.incoming.ids == {1, 2, 4} and cfg.voters.outgoing.ids == {1, 2, 3}
    assert cfg.learners_next == {3}, "a voter of the outgoing config becomes a learner only on leave"
    t.config, t.progress = cfg, prs
    with pytest.raises(ErrConfChangeInvalid):
        Changer(t, 10).enter_joint(True, cc("v5"))
    cfg, prs = Changer(t, 10).leave_joint()
    assert cfg.voters.outgoing.ids == set() and cfg.learners == {3} and prs[3].is_learner
    t.config, t.progress = cfg, prs
    assert t.conf_state() == ConfState(voters=[1, 2, 4], learners=[3])


def test_restore_joint_conf_state() -> None:
    cs = ConfState(voters=[1, 2, 4], learners=[5], voters_outgoing=[1, 2, 3], learners_next=[3],
                   auto_leave=True)
    t = ProgressTracker(8)
    restore(t, 10, cs)
    assert t.conf_state().equivalent(cs)


# -- codec ---------------------------------------------------------------------------------------


@given(st.integers(0, 2), st.integers(0, 2**64), st.binary(max_size=40), st.integers(0, 2**32))
def test_conf_change_v1_roundtrip(t: int, node_id: int, ctx: bytes, id_: int) -> None:
    c = ConfChange(ConfChangeType(t), node_id, ctx, id_)
    assert decode_conf_change(encode_conf_change(c), False) == c


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 1000)), max_size=5), st.integers(0, 2),
       st.binary(max_size=10))
def test_conf_change_v2_roundtrip(changes: list[tuple[int, int]], tr: int, ctx: bytes) -> None:
    singles = [ConfChangeSingle(ConfChangeType(t), n) for t, n in changes]
    c = ConfChangeV2(singles, ConfChangeTransition(tr), ctx)
    assert decode_conf_change(encode_conf_change(c), True) == c
