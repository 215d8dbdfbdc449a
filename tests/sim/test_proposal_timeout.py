"""A write that can never commit is answered with etcd's timeout error once REQUEST_TIMEOUT has passed,
on both ways of waiting for a proposal (a coroutine, `EtcdServer.put`; a callback,
`EtcdServer.propose_then`), and leaves nothing pending. Run on the whole-server simulation: three real
members on virtual time, the leader cut off from both followers before the writes."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from typing import Any

from etcdpy.app.errors import EtcdError
from etcdpy.app.server.etcd_server import REQUEST_TIMEOUT
from etcdpy.app.server.proposals import SWEEP_SECONDS
from etcdpy.storage.kv_types import PutRequest
from tests.sim.cluster import NetParams, SimCluster
from tests.sim.loop import OWNER, SimLoop


def test_an_uncommittable_write_times_out_on_both_paths() -> None:
    loop = SimLoop()
    base = tempfile.mkdtemp(prefix="etcdpy-sim-timeout-")
    cluster = SimCluster(loop, random.Random(7), base, 3, net=NetParams(drop_p=0.0, dup_p=0.0, slow_p=0.0),
                         snapshot_count=1000, catch_up_entries=20)
    outcomes: dict[str, tuple[float, Any]] = {}

    async def main() -> None:
        cluster.start_all()
        while (leader := cluster.leader()) is None:
            await asyncio.sleep(0.1)
        server = leader.server
        assert server is not None
        token = OWNER.set(leader)
        try:
            await server.put(PutRequest(key=b"before", value=b"1"))  # the cluster commits writes
            for other in cluster.members.values():
                if other is not leader:
                    cluster.cut |= {(leader.name, other.name), (other.name, leader.name)}
            start = loop.time()
            done = loop.create_future()

            def then(result: Any) -> None:
                outcomes["callback"] = (loop.time() - start, result)
                done.set_result(None)
            server.propose_then(server.put_command(PutRequest(key=b"cb", value=b"2")), then)
            try:
                # wait_for only so that a broken timeout fails the test instead of hanging it
                await asyncio.wait_for(server.put(PutRequest(key=b"co", value=b"3")), 2 * REQUEST_TIMEOUT)
            except EtcdError as exc:
                outcomes["coroutine"] = (loop.time() - start, exc)
            await asyncio.wait_for(done, REQUEST_TIMEOUT)
            assert server.pending_proposals == 0
        finally:
            OWNER.reset(token)
            await cluster.shutdown()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        shutil.rmtree(base, ignore_errors=True)
    assert set(outcomes) == {"callback", "coroutine"}
    for path, (took, result) in outcomes.items():
        assert isinstance(result, EtcdError), (path, result)
        # The leader steps down when it hears from no quorum (check-quorum): the message may say so.
        assert result.message.startswith("etcdserver: request timed out"), (path, result.message)
        assert REQUEST_TIMEOUT <= took <= REQUEST_TIMEOUT + SWEEP_SECONDS + 0.01, (path, took)
