"""Where the runner syncs the log: on the loop's thread for a lone member with at most one request
waiting (two thread hand-offs saved per write), on the sync thread otherwise (entries are applied and
requests served while the disk syncs). Either way the entry is durable before it is applied."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path

from etcdpy.app.server.node_core import NodeCallbacks
from etcdpy.app.server.raft_node import RaftNode
from etcdpy.raft import Entry, EntryType, Peer, Snapshot
from etcdpy.storage.wal import WAL
from etcdpy.storage.wal_files import OsFiles


class ThreadTracingFiles(OsFiles):
    """Records, for each fdatasync, the thread it ran on."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace

    def fdatasync(self, fd: int) -> None:
        self.trace.append(f"sync on {threading.current_thread().name}")
        super().fdatasync(fd)


def make_node(tmp: Path, peers: list[int], trace: list[str], waiting: int) -> RaftNode:
    wal = WAL(str(tmp / "wal"), files=ThreadTracingFiles(trace))
    state = wal.open()

    def apply(entries: list[Entry]) -> None:
        trace.extend(f"apply {e.index}" for e in entries if e.type == EntryType.NORMAL and e.data)

    def install(snap: Snapshot) -> int:
        raise AssertionError("no snapshot expected")
    cb = NodeCallbacks(apply=apply, send=lambda msgs: None, snapshot_applied=install,
                       install_snapshot=install, make_durable=lambda: None,
                       on_leader_change=lambda lead, term: None, dropped=lambda batch: None)
    return RaftNode(1, wal, state, cb, tick_ms=100, election_ticks=10, snapshot_count=1000,
                    bootstrap=[Peer(p, b"") for p in peers], rng=random.Random(1),
                    waiting=lambda: waiting)


async def _write_one(node: RaftNode, trace: list[str]) -> list[str]:
    node.start()
    try:
        while not node.is_leader:
            await asyncio.sleep(0)  # a lone member campaigns at once; this only lets the loop run it
        while node.applied < node.commit_index or node.raw.has_ready():
            await asyncio.sleep(0)
        trace.clear()
        node.propose(b"x")
        while not any(t.startswith("apply") for t in trace):
            await asyncio.sleep(0)
        return list(trace)
    finally:
        await node.stop()


def test_a_lone_writer_is_synced_on_the_loop_thread(tmp_path: Path) -> None:
    trace: list[str] = []
    node = make_node(tmp_path, [1], trace, waiting=1)
    seen = asyncio.run(_write_one(node, trace))
    assert seen[0] == "sync on MainThread" and seen[-1].startswith("apply")


def test_under_load_the_sync_runs_on_its_own_thread(tmp_path: Path) -> None:
    trace: list[str] = []
    node = make_node(tmp_path, [1], trace, waiting=2)
    seen = asyncio.run(_write_one(node, trace))
    assert seen[0].startswith("sync on wal-sync") and seen[-1].startswith("apply")


def test_a_member_with_peers_never_blocks_its_loop_on_a_sync(tmp_path: Path) -> None:
    trace: list[str] = []
    node = make_node(tmp_path, [1, 2, 3], trace, waiting=0)
    assert not node.alone()
    assert not node._sync_here()


def test_committed_entries_are_applied_while_a_later_ready_syncs(tmp_path: Path) -> None:
    # A run_io that records when each sync is handed over and models a request arriving during it
    # (a new proposal). The entries a Ready committed must be applied after the next Ready's sync was
    # handed over, not before it is even built: that is what lets applying overlap the disk.
    trace: list[str] = []
    wal = WAL(str(tmp_path / "wal"))
    state = wal.open()
    arriving = [b"e2", b"e3", b"e4"]

    def apply(entries: list[Entry]) -> None:
        trace.extend(f"apply {e.data.decode()}" for e in entries if e.type == EntryType.NORMAL and e.data)

    def install(snap: Snapshot) -> int:
        raise AssertionError("no snapshot expected")

    def run_io(io: Callable[[], None]) -> asyncio.Future[None]:
        io()
        carried = [e.data.decode() for e in node.raw.raft.raft_log.unstable_entries() if e.data]
        trace.append(f"sync {','.join(carried)}")
        if arriving and trace[0] != "setup":
            node.propose(arriving.pop(0))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    cb = NodeCallbacks(apply=apply, send=lambda msgs: None, snapshot_applied=install,
                       install_snapshot=install, make_durable=lambda: None,
                       on_leader_change=lambda lead, term: None, dropped=lambda batch: None)
    node = RaftNode(1, wal, state, cb, tick_ms=100, election_ticks=10, snapshot_count=1000,
                    bootstrap=[Peer(1, b"")], rng=random.Random(1), run_io=run_io)

    async def main() -> None:
        trace.append("setup")
        node.start()
        try:
            while not node.is_leader or node.applied < node.commit_index or node.raw.has_ready():
                await asyncio.sleep(0)
            trace.clear()
            node.propose(b"e1")
            while "apply e4" not in trace:
                await asyncio.sleep(0)
        finally:
            await node.stop()

    asyncio.run(main())
    # A lone member commits an entry in the Ready that appends it: e1 is applied during e2's sync.
    assert trace.index("apply e1") > trace.index("sync e2")
    assert [t for t in trace if t.startswith("apply")] == ["apply e1", "apply e2", "apply e3", "apply e4"]
