"""A crash between a snapshot install and the fdatasync of its WAL marker (found with the simulation).

`NodeCore.begin_ready` replaces the database with the leader's snapshot, then writes the WAL's snapshot
marker, which becomes durable only with the Ready's sync. A crash in between leaves a database that has
applied more than the WAL holds: the member refuses to restart (DataDirError) or Raft rejects its hard
state ("state.commit … is out of range"), and the member must be removed and added back. etcd avoids
this by persisting the snapshot (snap file and WAL record, synced) before it swaps the backend, and by
installing a persisted but not yet applied snapshot at start-up. Until etcdpy does the same, this test
is an expected failure (strict: it starts failing once the window is closed, so the marker goes too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from etcdpy.app.server.node_core import ReadyBatch
from tests.sim import cluster as sim_cluster
from tests.sim.runner import run_seed

SEEDS = range(12)


@pytest.mark.xfail(strict=True, reason="the snapshot install is not yet durable before the database is "
                                       "swapped (see the module docstring)")
def test_crash_right_after_a_snapshot_install_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sim_cluster.SimMember._run_io
    injected: list[str] = []

    async def run_io(self: sim_cluster.SimMember, io: Callable[[], None]) -> None:
        batch = getattr(io, "__self__", None)
        if isinstance(batch, ReadyBatch) and batch.ready.snapshot is not None and not injected:
            injected.append(self.name)
            self.cluster.note(f"crash {self.name} before its snapshot marker is durable")
            self.cluster.loop.spawn(self.crash("before the snapshot marker's sync"))
            await asyncio.sleep(1.0)  # cancelled by the crash: the sync never happens
        await original(self, io)
    monkeypatch.setattr(sim_cluster.SimMember, "_run_io", run_io)
    tried = 0
    for seed in SEEDS:
        injected.clear()
        result = run_seed(seed)
        if injected:
            tried += 1
            assert not result.problems, result.report()
    assert tried, "no seed installed a snapshot"
