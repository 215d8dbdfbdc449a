"""One seed of the whole-server simulation: build the cluster, run clients and nemesis, heal, check.

`run_seed(seed)` is deterministic: the seed makes the cluster size, the fault rates, every delay and
every choice, and the loop runs on virtual time, so the same seed gives the same run (its `digest`
says so) and a failing seed replays exactly:

    SERVER_SIM_SEED=<seed> python -m pytest tests/sim/test_server_sim.py -k replay -q
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from typing import Any

from etcdpy.storage.kv_types import RangeRequest
from tests.sim.checkers import Checker, MemberFinal, kv_hash
from tests.sim.cluster import MemberDown, NetParams, PowerCut, SimCluster
from tests.sim.loop import SimLoop
from tests.sim.workload import History, Workload

WORKLOAD_S = 4.0  # virtual seconds of clients under faults
QUIESCE_S = 10.0  # healed: lease TTLs (<= 6 s) run out, watchers and lagging members catch up


@dataclass
class SimResult:
    seed: int
    members: int
    problems: list[str]
    notes: list[str] = field(default_factory=list)
    ops: int = 0
    acked: int = 0
    watches: int = 0
    revision: int = 0
    digest: str = ""

    def report(self) -> str:
        lines = [f"server simulation seed {self.seed} ({self.members} members, {self.ops} ops, "
                 f"{self.acked} acknowledged, {self.watches} watches, revision {self.revision}):"]
        lines += [f"  PROBLEM: {p}" for p in self.problems[:15]]
        lines += ["  nemesis:"] + [f"    {n}" for n in self.notes[-40:]]
        lines.append(f"  replay: SERVER_SIM_SEED={self.seed} python -m pytest tests/sim/test_server_sim.py "
                     "-k replay -q")
        return "\n".join(lines)


def _base_dir() -> str:
    root = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="etcdpy-sim-", dir=root)


def run_seed(seed: int, *, workload_s: float = WORKLOAD_S) -> SimResult:
    # A simulated fatal is not news; the level is put back so later tests still see etcdpy's logs.
    logger = logging.getLogger("etcdpy")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        return _run_seed(seed, workload_s)
    finally:
        logger.setLevel(level)


def _run_seed(seed: int, workload_s: float) -> SimResult:
    rng = random.Random(seed)
    loop = SimLoop()
    unexpected: list[str] = []

    def on_error(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not isinstance(exc, (PowerCut, MemberDown)):
            unexpected.append(f"{context.get('message')}: {exc!r}")
    loop.set_exception_handler(on_error)
    size = 5 if rng.random() < 0.25 else 3
    net = NetParams(drop_p=rng.choice([0.0, 0.01, 0.05]), dup_p=rng.choice([0.0, 0.02]))
    cluster = SimCluster(loop, rng, _base_dir(), size, net=net, snapshot_count=rng.choice([20, 50]),
                         catch_up_entries=rng.choice([5, 20]))
    history = History()
    workload = Workload(cluster, rng, history)
    finals: list[MemberFinal] = []

    async def main() -> None:
        cluster.start_all()
        while cluster.leader() is None:
            await asyncio.sleep(0.1)
        end = loop.time() + workload_s
        end_of_run = end + QUIESCE_S
        tasks = [loop.spawn(workload.client(end)) for _ in range(rng.randint(3, 6))]
        tasks += [loop.spawn(workload.watcher(end, end_of_run)) for _ in range(3)]
        tasks.append(loop.spawn(workload.nemesis(end)))
        await asyncio.sleep(workload_s)
        cluster.note("heal")
        # Heal: no more faults; every member that can come back does.
        cluster.cut.clear()
        cluster.net.drop_p = cluster.net.dup_p = 0.0
        for m in cluster.members.values():
            m.disk.plan = None
        for _ in range(int(QUIESCE_S / 0.5)):
            for m in list(cluster.members.values()):
                if not m.alive and not m.removed:
                    cluster.start(m)
            await asyncio.sleep(0.5)
        await asyncio.wait(tasks, timeout=5.0)
        for m in cluster.members.values():
            if m.removed and m.alive:
                await m.crash("removed")
        finals.extend(_finals(cluster))
        await cluster.shutdown()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    problems = Checker(history, cluster.trace, finals, cluster.election_ms / 1000).run()
    problems += [f"unexpected error in a task: {text}" for text in unexpected]
    digest = hashlib.sha256(repr([(op.kind, op.member, op.invoke, op.complete, op.status)
                                  for op in history.ops]).encode()
                            + repr(sorted(cluster.trace.applied)).encode()).hexdigest()[:16]
    return SimResult(seed, size, problems, cluster.trace.notes, len(history.ops),
                     sum(op.status == "ok" for op in history.ops), len(history.watches),
                     max(cluster.trace.applied, default=1), digest)


def _finals(cluster: SimCluster) -> list[MemberFinal]:
    out: list[MemberFinal] = []
    live = [m for m in cluster.live() if not m.removed]
    floor = max((m.server.store.compact_revision for m in live if m.server), default=0)
    for m in live:
        server = m.server
        assert server is not None
        store = server.store
        rev = store.current_revision
        hashes = {}
        for r in sorted({rev, max(floor, 1), (rev + max(floor, 1)) // 2}):
            if max(floor, 1) <= r <= rev:
                hashes[r] = kv_hash(store.range(RangeRequest(key=b"\0", range_end=b"\0", revision=r,
                                                             serializable=True)).kvs)
        kvs = store.range(RangeRequest(key=b"\0", range_end=b"\0", serializable=True)).kvs
        out.append(MemberFinal(m.name, rev, store.compact_revision, list(kvs), hashes,
                               sorted(server.leases.lessor.leases), sorted(server.membership.members)))
    return out
