"""Durability under power loss: every acknowledged write survives with the revision it was given.

A SIGKILL keeps the page cache, so it cannot tell a WAL that syncs from one that does not. Here a member
runs in-process (a real EtcdServer on a real event loop, driven through its API) on a `PowerLossDisk`
(tests/power_loss.py): bytes written but not yet `fdatasync`ed are kept apart, and a simulated power
loss drops them (or keeps a torn part of them), undoes file creations and removals no directory fsync
covered, and puts RocksDB back to its last durable point. The member then restarts on what survived and
every acknowledged put must be there with its revision; writes in flight may or may not be.

The power goes off at random disk operations (seeded: ETCDPY_POWER_SEED repeats a run), and at chosen
crash points: a WAL segment roll, log compaction (RocksDB's flush, the snapshot marker, the release of
old segments). Small segments and a small --snapshot-count make those happen every few dozen writes.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from etcdpy.app.config import Config
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.kv_types import PutRequest, RangeRequest
from tests.power_loss import DurableDb, FaultPlan, PowerCut, PowerLossDisk

SEGMENT_BYTES = 8 * 1024
SNAPSHOT_COUNT = 40
WRITERS = 4
PREFIX = b"pl/"
DEADLINE_S = 10.0


@dataclass
class Run:
    seed: int
    rng: random.Random
    data_dir: Path
    disk: PowerLossDisk
    durable_db: DurableDb
    acked: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)  # key -> (value, revision)
    losses: list[str] = field(default_factory=list)
    seq: int = 0

    def fail(self, msg: str) -> str:
        return f"[seed {self.seed}] {msg}\npower losses:\n" + "\n".join(self.losses[-20:])


def config(data_dir: Path) -> Config:
    return Config(name="pl", data_dir=str(data_dir), snapshot_count=SNAPSHOT_COUNT,
                  heartbeat_interval=10, election_timeout=100)


async def wait_leader(server: EtcdServer) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not server.node.is_leader:
        assert loop.time() < deadline, "no leader after restart"
        await asyncio.sleep(0.01)


async def check_acked(run: Run, server: EtcdServer) -> None:
    """Every acknowledged write is present with its value and revision (a linearizable read: the
    restarted member has applied everything its log committed)."""
    end = PREFIX[:-1] + bytes([PREFIX[-1] + 1])
    result = await server.range(RangeRequest(key=PREFIX, range_end=end))
    live = {kv.key: (kv.value, kv.mod_revision) for kv in result.kvs}
    lost = {k: v for k, v in run.acked.items() if live.get(k) != v}
    examples = ", ".join(f"{k!r}: acked {v}, now {live.get(k)}" for k, v in list(lost.items())[:3])
    assert not lost, run.fail(f"{len(lost)} of {len(run.acked)} acknowledged writes lost, e.g. {examples}")
    assert server.store.current_revision >= max((r for _, r in run.acked.values()), default=0)


async def writer(run: Run, server: EtcdServer, me: int) -> None:
    while True:
        run.seq += 1
        key = PREFIX + f"{me}/{run.seq:06d}".encode()
        value = f"v{run.seq}.{run.rng.random()}".encode()
        result = await server.put(PutRequest(key=key, value=value))
        run.acked[key] = (value, result.revision)


async def life(run: Run, arm: Callable[[EtcdServer], None], min_acks: int) -> None:
    """Start the member on what the disk holds, check it, write until the power goes off, tear down."""
    cut = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = EtcdServer(config(run.data_dir), wal_files=run.disk, wal_segment_bytes=SEGMENT_BYTES)
    flush = server.node.cb.make_durable

    def make_durable() -> None:
        flush()
        run.durable_db.mark(server.store.db)

    server.node.cb.make_durable = make_durable
    server.start()
    writers: list[asyncio.Task[None]] = []
    try:
        await wait_leader(server)
        await check_acked(run, server)
        acked_before = len(run.acked)
        writers = [loop.create_task(writer(run, server, w)) for w in range(WRITERS)]
        while len(run.acked) < acked_before + min_acks:
            await asyncio.sleep(0.005)
        def on_cut() -> None:
            loop.call_soon_threadsafe(cut.set)
        run.disk.on_cut = on_cut
        arm(server)
        try:
            await asyncio.wait_for(cut.wait(), DEADLINE_S)
        except TimeoutError:
            pytest.fail(run.fail("the armed crash point was never reached"))
    finally:
        run.disk.cut_power()
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        try:
            await server.node.stop()
        except PowerCut:
            pass
        server.node._sync_thread.shutdown(wait=True)
        if server.transport is not None:
            await server.transport.close()
        server.watch_service.stop()
        server.wal.close()
        server.store.close()
    run.losses += run.disk.power_loss()
    run.durable_db.power_loss()


def new_run(tmp_path: Path) -> Run:
    seed = int(os.environ.get("ETCDPY_POWER_SEED", random.SystemRandom().randrange(2**32)))
    print(f"power loss test seed {seed}")
    rng = random.Random(seed)
    data_dir = tmp_path / "pl.etcdpy"
    return Run(seed, rng, data_dir, PowerLossDisk(random.Random(rng.random())),
               DurableDb(str(data_dir / "member" / "db")))


async def final_check(run: Run) -> None:
    server = EtcdServer(config(run.data_dir), wal_files=run.disk, wal_segment_bytes=SEGMENT_BYTES)
    server.start()
    try:
        await wait_leader(server)
        await check_acked(run, server)
        key = PREFIX + b"final"
        result = await server.put(PutRequest(key=key, value=b"after"))
        assert result.revision == server.store.current_revision
    finally:
        await server.stop()
        server.close()


def test_acknowledged_writes_survive_power_loss(tmp_path: Path) -> None:
    """Power off at a random disk operation, several times over; restart on what survived."""
    run = new_run(tmp_path)

    def at_random_op(server: EtcdServer) -> None:
        run.disk.plan = FaultPlan("*", nth=run.rng.randint(1, 120))

    async def main() -> None:
        for _ in range(6):
            await life(run, at_random_op, min_acks=run.rng.randint(10, 60))
        await final_check(run)

    asyncio.run(main())
    print(f"seed {run.seed}: {len(run.acked)} acknowledged writes survived 6 power losses")


def _cut_on(run: Run, wanted: Callable[[str, str], bool]) -> Callable[[EtcdServer], None]:
    def arm(server: EtcdServer) -> None:
        def observe(op: str, path: str) -> None:
            if wanted(op, path):
                run.disk.cut_power()
        run.disk.on_op = observe
    return arm


def _after_removal(run: Run) -> Callable[[EtcdServer], None]:
    """Between deleting released segments and the directory fsync that makes the deletion durable."""
    removed = [False]

    def wanted(op: str, path: str) -> bool:
        if op == "remove":
            removed[0] = True
            return False
        return op == "fsync_dir" and removed[0]
    return _cut_on(run, wanted)


def _around_flush(run: Run, before: bool) -> Callable[[EtcdServer], None]:
    """Just before RocksDB's synced flush for log compaction, or just after it (before the WAL's
    snapshot marker is written)."""
    def arm(server: EtcdServer) -> None:
        durable = server.node.cb.make_durable

        def make_durable() -> None:
            if before:
                run.disk.cut_power()
                raise PowerCut("before the RocksDB flush")
            durable()
            run.disk.cut_power()
            raise PowerCut("after the RocksDB flush")
        server.node.cb.make_durable = make_durable
    return arm


def _after_snapshot_marker(run: Run) -> Callable[[EtcdServer], None]:
    """The snapshot marker is written but not yet synced."""
    def arm(server: EtcdServer) -> None:
        save = server.wal.save_snapshot

        def save_snapshot(index: int, term: int, data: bytes = b"") -> None:
            save(index, term, data)
            run.disk.cut_power()
        server.wal.save_snapshot = save_snapshot  # type: ignore[method-assign]
    return arm


CRASH_POINTS: dict[str, Callable[[Run], Callable[[EtcdServer], None]]] = {
    "segment-roll-create": lambda run: _cut_on(run, lambda op, path: op == "create"),
    "segment-roll-dir-fsync": lambda run: _cut_on(
        run, lambda op, path: op == "fsync_dir" and bool(run.disk.unsynced_creates)),
    "segment-roll-first-write": lambda run: _cut_on(
        run, lambda op, path: op == "write" and path in run.disk.unsynced_creates | _fresh(run)),
    "compaction-before-flush": lambda run: _around_flush(run, before=True),
    "compaction-after-flush": lambda run: _around_flush(run, before=False),
    "compaction-snapshot-marker": _after_snapshot_marker,
    "compaction-release": lambda run: _cut_on(run, lambda op, path: op == "remove"),
    "compaction-release-dir-fsync": _after_removal,
}


def _fresh(run: Run) -> set[str]:
    """Segments created and made durable, with nothing synced in them yet (just rolled to)."""
    return {p for p, n in run.disk.durable_len.items() if n == 0}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_power_loss_at_crash_point(tmp_path: Path, point: str) -> None:
    run = new_run(tmp_path)

    async def main() -> None:
        await life(run, CRASH_POINTS[point](run), min_acks=SNAPSHOT_COUNT + 5)
        await life(run, CRASH_POINTS[point](run), min_acks=5)
        await final_check(run)

    asyncio.run(main())
