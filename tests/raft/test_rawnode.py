"""RawNode's contract with its driver: the Ready cycle, errors, bootstrap and status."""

from __future__ import annotations

import random

import pytest

from etcdpy import raft
from etcdpy.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    EntryType,
    ErrProposalDropped,
    ErrStepLocalMsg,
    ErrStepPeerNotFound,
    MemoryStorage,
    Message,
    MessageType,
    Peer,
    ProgressStateType,
    RawNode,
    ReadOnlyOption,
    Ready,
    StateType,
    conf_change_from_entry,
)
from etcdpy.raft.errors import ErrConfigInvalid

MT = MessageType


def node(id_: int = 1, voters: list[int] | None = None, **kw: object) -> tuple[RawNode, MemoryStorage]:
    st = MemoryStorage()
    st.snap.metadata.conf_state = ConfState(voters=voters or [1])
    cfg = Config(id=id_, storage=st, rng=random.Random(id_))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return RawNode(cfg), st


def handle(rn: RawNode, st: MemoryStorage) -> Ready:
    rd = rn.ready()
    if rd.hard_state is not None:
        st.set_hard_state(rd.hard_state)
    if rd.snapshot is not None:
        st.apply_snapshot(rd.snapshot)
    st.append(rd.entries)
    for e in rd.committed_entries:
        if e.type != EntryType.NORMAL:
            rn.apply_conf_change(conf_change_from_entry(e))
    rn.advance(rd)
    return rd


def test_public_api_names() -> None:
    for name in ("RawNode", "Config", "MemoryStorage", "Entry", "EntryType", "HardState", "Message",
                 "MessageType", "Snapshot", "SnapshotMetadata", "ConfState", "ConfChange", "ConfChangeType",
                 "ConfChangeV2", "Ready", "ReadState", "SoftState", "StateType", "Peer", "SnapshotStatus",
                 "ProgressStateType"):
        assert hasattr(raft, name), name
    assert {s.name for s in raft.StateType} == {"FOLLOWER", "CANDIDATE", "LEADER", "PRE_CANDIDATE"}
    e = raft.Entry(term=1, index=2, type=raft.EntryType.NORMAL, data=b"x")
    assert not hasattr(e, "__dict__"), "data types are slotted dataclasses"


def test_single_node_commits_through_ready() -> None:
    """A one-member cluster commits at once (etcd 3.4 style): the same Ready carries the entry to
    persist and to apply; the driver persists before applying, so durability holds."""
    rn, st = node()
    rn.campaign()
    rd = handle(rn, st)
    assert rd.soft_state is not None and rd.soft_state.raft_state == StateType.LEADER
    assert not rn.has_ready()
    rn.propose(b"hello")
    assert rn.has_ready()
    rd = handle(rn, st)
    assert [e.data for e in rd.entries] == [b"hello"]
    assert [e.data for e in rd.committed_entries] == [b"hello"]
    assert rd.hard_state is not None and rd.hard_state.commit == 2
    assert rd.must_sync
    assert not rn.has_ready()
    assert st.last_index() == 2 and rn.status().applied == 2


def test_propose_many_is_one_append() -> None:
    rn, st = node()
    rn.campaign()
    handle(rn, st)
    rn.propose_many([b"a", b"b", b"c"])
    rd = handle(rn, st)
    assert [(e.index, e.data) for e in rd.entries] == [(2, b"a"), (3, b"b"), (4, b"c")]


def test_step_rejects_local_and_unknown_peer_messages() -> None:
    rn, _ = node(voters=[1, 2])
    with pytest.raises(ErrStepLocalMsg):
        rn.step(Message(type=MT.MsgHup, frm=2, to=1))
    with pytest.raises(ErrStepPeerNotFound):
        rn.step(Message(type=MT.MsgAppResp, frm=9, to=1, term=1))


def test_proposal_dropped_without_leader() -> None:
    rn, _ = node(voters=[1, 2, 3])
    with pytest.raises(ErrProposalDropped):
        rn.propose(b"x")


def test_bootstrap_and_restart() -> None:
    st = MemoryStorage()
    rn = RawNode(Config(id=1, storage=st, rng=random.Random(1)))
    rn.bootstrap([Peer(1), Peer(2), Peer(3)])
    rd = handle(rn, st)
    assert [conf_change_from_entry(e) for e in rd.committed_entries] == [
        ConfChange(ConfChangeType.ADD_NODE, i) for i in (1, 2, 3)]
    assert rd.hard_state is not None and rd.hard_state.term == 1 and rd.hard_state.commit == 3
    assert rn.status().conf_state.voters == [1, 2, 3]
    with pytest.raises(raft.RaftError):
        rn.bootstrap([Peer(1)])
    # Restart from the persisted storage: the config is rebuilt by re-applying the log.
    rn2 = RawNode(Config(id=1, storage=st, rng=random.Random(1)))
    handle(rn2, st)
    assert rn2.status().conf_state.voters == [1, 2, 3]
    assert rn2.status().hard_state.term == 1


def test_status_reports_progress_on_leader() -> None:
    rn, st = node(voters=[1, 2])
    rn.campaign()
    handle(rn, st)
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    handle(rn, st)
    s = rn.status()
    assert s.soft_state.raft_state == StateType.LEADER and s.soft_state.lead == 1
    assert set(s.progress) == {1, 2}
    assert s.progress[1].match == 1 and s.progress[1].state == ProgressStateType.REPLICATE
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=1))
    assert rn.status().progress[2].match == 1
    assert rn.status().progress[2].state == ProgressStateType.REPLICATE


def test_ready_messages_come_after_persist_marker() -> None:
    """Votes travel in the same Ready as the HardState that records them (sent after persisting)."""
    rn, _ = node(voters=[1, 2, 3])
    rn.campaign()
    rd = rn.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1
    assert {m.type for m in rd.messages} == {MT.MsgVote}
    assert rd.must_sync


def test_lease_based_read_index_requires_check_quorum() -> None:
    with pytest.raises(ErrConfigInvalid):
        node(read_only_option=ReadOnlyOption.LEASE_BASED)
    rn, st = node(voters=[1, 2], read_only_option=ReadOnlyOption.LEASE_BASED, check_quorum=True)
    rn.campaign()
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=1))
    handle(rn, st)
    rn.read_index(b"r")
    rd = handle(rn, st)
    # No heartbeat round: the lease answers at once.
    assert [(rs.index, rs.request_ctx) for rs in rd.read_states] == [(1, b"r")]
    assert not any(m.type == MT.MsgHeartbeat for m in rd.messages)


def test_max_uncommitted_size_drops_proposals() -> None:
    rn, st = node(voters=[1, 2], max_uncommitted_entries_size=10)
    rn.campaign()
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    rn.propose(b"x" * 8)
    with pytest.raises(ErrProposalDropped):
        rn.propose(b"y" * 8)


def test_flow_control_limits_inflight_messages() -> None:
    rn, st = node(voters=[1, 2], max_inflight_msgs=2, max_size_per_msg=1)
    rn.campaign()
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=1))
    handle(rn, st)
    for i in range(5):
        rn.propose(f"e{i}".encode())
    rd = handle(rn, st)
    apps = [m for m in rd.messages if m.type == MT.MsgApp and m.entries]
    assert len(apps) == 2, "window of two in-flight appends"
    assert all(len(m.entries) == 1 for m in apps), "max_size_per_msg limits each append to one entry"
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=apps[0].entries[-1].index))
    rd = handle(rn, st)
    assert len([m for m in rd.messages if m.type == MT.MsgApp and m.entries]) == 1


def test_report_snapshot_and_unreachable_move_progress() -> None:
    rn, st = node(voters=[1, 2])
    rn.campaign()
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=1))
    assert rn.status().progress[2].state == ProgressStateType.REPLICATE
    rn.report_unreachable(2)
    assert rn.status().progress[2].state == ProgressStateType.PROBE
    pr = rn.raft.prs.progress[2]
    pr.become_snapshot(5)
    rn.report_snapshot(2, raft.SnapshotStatus.FAILURE)
    assert rn.status().progress[2].state == ProgressStateType.PROBE


def test_snapshot_temporarily_unavailable_is_retried() -> None:
    """A storage still building its snapshot raises ErrSnapshotTemporarilyUnavailable; the leader
    sends nothing then and tries again on a later heartbeat response."""

    class SlowSnapshots(MemoryStorage):
        ready_after = 1

        def snapshot(self) -> raft.Snapshot:
            if self.ready_after > 0:
                self.ready_after -= 1
                raise raft.ErrSnapshotTemporarilyUnavailable("building")
            return super().snapshot()

    st = SlowSnapshots()
    st.apply_snapshot(raft.Snapshot(metadata=raft.SnapshotMetadata(ConfState(voters=[1, 2]), 5, 1)))
    rn = RawNode(Config(id=1, storage=st, rng=random.Random(1)))
    rn.campaign()
    rn.step(Message(type=MT.MsgVoteResp, frm=2, to=1, term=1))
    handle(rn, st)
    # Follower 2 has nothing: its rejection sends the leader back to index 1 < first index 6.
    rn.step(Message(type=MT.MsgAppResp, frm=2, to=1, term=1, index=5, reject=True, reject_hint=0))
    rd = handle(rn, st)
    assert not any(m.type == MT.MsgSnap for m in rd.messages)
    rn.step(Message(type=MT.MsgHeartbeatResp, frm=2, to=1, term=1))
    rd = handle(rn, st)
    snaps = [m for m in rd.messages if m.type == MT.MsgSnap]
    assert len(snaps) == 1 and snaps[0].snapshot is not None and snaps[0].snapshot.metadata.index == 5
    assert rn.status().progress[2].state == ProgressStateType.SNAPSHOT
