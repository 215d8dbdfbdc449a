"""A crash around a snapshot install (found with the simulation; fixed by installing in etcd's order).

A follower receiving a snapshot used to swap its database in first and write the WAL's snapshot marker
after, durable only with the Ready's sync: a crash in between left a database that had applied more than
its WAL held, and the member refused to restart (DataDirError, or Raft's "state.commit … is out of range"
check). Now, as in etcd, the marker is made durable first and the database is swapped in after the
sync; a crash in that window finds the marker at start-up and installs the snapshot's database then.
Both windows are hit on purpose here, on seeds that install snapshots, and every run must pass all the
simulation's checks (the member restarts and converges).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from etcdpy.app.server.node_core import ReadyBatch
from tests.sim import cluster as sim_cluster
from tests.sim.runner import run_seed

SEEDS = range(12)


@pytest.mark.parametrize("when", ["before the marker's sync", "after the marker's sync"])
def test_crash_around_a_snapshot_install_restarts(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    original = sim_cluster.SimMember._run_io
    injected: list[str] = []

    async def run_io(self: sim_cluster.SimMember, io: Callable[[], None]) -> None:
        batch = getattr(io, "__self__", None)
        target = isinstance(batch, ReadyBatch) and batch.ready.snapshot is not None and not injected
        if target and when.startswith("after"):
            await original(self, io)
        if target:
            injected.append(self.name)
            self.cluster.note(f"crash {self.name} {when}")
            self.cluster.loop.spawn(self.crash(when))
            await asyncio.sleep(1.0)  # cancelled by the crash: the Ready is never finished
        await original(self, io)
    monkeypatch.setattr(sim_cluster.SimMember, "_run_io", run_io)
    tried = 0
    for seed in SEEDS:
        injected.clear()
        result = run_seed(seed)
        if injected:
            tried += 1
            assert not result.problems, result.report()
    assert tried >= 3, f"only {tried} seeds installed a snapshot"
