"""The step-driven node: a whole member's Raft cycle runs with plain calls, no event loop, no thread.

Drives `NodeCore` synchronously on a real WAL (a disk that records the order of writes, syncs and sends)
and checks etcd's persistence order and group commit: proposals made before a Ready go out in one
batch made durable by one fdatasync; a follower's acknowledgement leaves only after that sync; a leader
sends its appends before it syncs.
"""

from __future__ import annotations

import random
from pathlib import Path

from etcdpy.app.server.node_core import NodeCallbacks, NodeCore
from etcdpy.raft import Entry, EntryType, Message, MessageType, Peer, Snapshot
from etcdpy.storage.wal import WAL
from etcdpy.storage.wal_files import OsFiles


class TracingFiles(OsFiles):
    def __init__(self, trace: list[str]) -> None:
        self.trace = trace

    def fdatasync(self, fd: int) -> None:
        self.trace.append("sync")
        super().fdatasync(fd)


def make_node(tmp: Path, node_id: int, peers: list[int], trace: list[str],
              applied: list[Entry]) -> NodeCore:
    wal = WAL(str(tmp / f"wal{node_id}"), files=TracingFiles(trace))
    state = wal.open()

    def send(msgs: list[Message]) -> None:
        trace.extend(f"send {m.type.name}" for m in msgs)

    def install(snap: Snapshot) -> int:
        raise AssertionError("no snapshot expected")
    cb = NodeCallbacks(apply=applied.extend, send=send, snapshot_applied=install, install_snapshot=install,
                       make_durable=lambda: None, on_leader_change=lambda lead, term: None,
                       dropped=lambda batch: None)
    return NodeCore(node_id, wal, state, cb, election_ticks=10, snapshot_count=1000,
                    bootstrap=[Peer(p, b"") for p in peers], rng=random.Random(node_id))


def test_single_member_commits_a_batch_with_one_sync(tmp_path: Path) -> None:
    trace: list[str] = []
    applied: list[Entry] = []
    node = make_node(tmp_path, 1, [1], trace, applied)
    while node.process_ready():
        pass
    assert node.is_leader
    trace.clear()
    for _ in range(3):
        node.propose(b"")  # empty data: the applier would treat them as no-ops; Raft does not care
    batch = node.begin_ready()
    assert batch is not None and [e.index for e in batch.ready.entries] == [3, 4, 5]
    assert trace == [] and batch.needs_sync  # written, not yet durable
    batch.durable_io()
    node.finish_ready(batch)
    while node.process_ready():
        pass
    assert trace.count("sync") == 1  # one for the batch (a commit-only hard state needs none)
    assert [e.index for e in applied if e.type == EntryType.NORMAL][-3:] == [3, 4, 5]
    assert node.applied == 5


def test_follower_acknowledges_only_after_its_sync(tmp_path: Path) -> None:
    trace: list[str] = []
    applied: list[Entry] = []
    node = make_node(tmp_path, 2, [1, 2], trace, applied)
    while node.process_ready():
        pass
    trace.clear()
    # The leader (1) appends an entry at term 1; the follower must make it durable before answering.
    node.step(Message(type=MessageType.MsgApp, to=2, frm=1, term=1, log_term=1, index=2,
                      entries=[Entry(1, 3, EntryType.NORMAL, b"x")], commit=2))
    batch = node.begin_ready()
    assert batch is not None and batch.needs_sync and not batch.sent
    assert "send MsgAppResp" not in trace
    batch.durable_io()
    node.finish_ready(batch)
    assert trace.index("sync") < trace.index("send MsgAppResp")


def test_deferred_apply_hands_entries_over_and_reads_wait_for_the_real_apply(tmp_path: Path) -> None:
    trace: list[str] = []
    applied: list[Entry] = []
    node = make_node(tmp_path, 1, [1], trace, applied)
    while node.process_ready():
        pass
    base = node.applied
    node.propose(b"a")
    node.propose(b"b")
    batch = node.begin_ready()
    assert batch is not None
    batch.durable_io()
    node.finish_ready(batch, defer_apply=True)
    # Committed and handed over, not applied: the applied index (what reads and snapshots trust) waits.
    assert node.commit_index == base + 2 and node.applied == base
    assert [e.data for e in applied if e.type == EntryType.NORMAL and e.data] == []
    served: list[BaseException | None] = []
    node.request_read(served.append)
    while (batch := node.begin_ready()) is not None:  # the read index comes back: base + 2
        batch.durable_io()
        node.finish_ready(batch, defer_apply=True)
    assert served == [] and node.applied == base
    node.apply_pending()
    # Served once both entries are applied, in order.
    assert served == [None] and node.applied == base + 2
    assert [e.data for e in applied if e.type == EntryType.NORMAL and e.data] == [b"a", b"b"]


def test_deferred_apply_applies_queued_entries_before_a_conf_change(tmp_path: Path) -> None:
    from etcdpy.raft import ConfChange, ConfChangeType

    trace: list[str] = []
    applied: list[Entry] = []
    node = make_node(tmp_path, 1, [1], trace, applied)
    while node.process_ready():
        pass
    node.propose(b"before")
    batch = node.begin_ready()
    assert batch is not None
    batch.durable_io()
    node.finish_ready(batch, defer_apply=True)
    assert node.applied < node.commit_index
    node.propose_conf_change(ConfChange(type=ConfChangeType.ADD_LEARNER_NODE, node_id=2))
    batch = node.begin_ready()
    assert batch is not None
    batch.durable_io()
    node.finish_ready(batch, defer_apply=True)
    # Raft's configuration must not run ahead of the apply: a conf change is applied at once, after
    # the plain entry queued before it.
    kinds = [(e.type, e.data) for e in applied if e.data or e.type != EntryType.NORMAL]
    assert kinds[-2][1] == b"before" and kinds[-1][0] == EntryType.CONF_CHANGE
    assert node.applied == node.commit_index
