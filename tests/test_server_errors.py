"""etcd's overload and leader-change answers, produced by the server glue without a network."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from etcdpy.app import errors
from etcdpy.app.config import parse_args
from etcdpy.app.errors import EtcdError
from etcdpy.app.server.etcd_server import MAX_APPLY_GAP, EtcdServer
from etcdpy.storage.kv_types import PutRequest, RangeRequest


def make_server(tmp_path: Path) -> EtcdServer:
    peer = "http://127.0.0.1:1"  # never dialled: a lone member sends no peer traffic
    cfg = parse_args(["--data-dir", str(tmp_path / "m.etcdpy"), "--listen-peer-urls", peer,
                      "--initial-advertise-peer-urls", peer])
    return EtcdServer(cfg)


async def leader_elected(server: EtcdServer) -> None:
    while not server.node.leader:
        await asyncio.sleep(0.01)


def test_too_many_requests_when_applying_falls_behind(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = make_server(tmp_path)
        server.start()
        try:
            await asyncio.wait_for(leader_elected(server), 10)
            server.node.applied -= MAX_APPLY_GAP + 1  # as if the applier were this far behind
            with pytest.raises(EtcdError) as err:
                await server.put(PutRequest(key=b"k", value=b"v"))
            assert (err.value.message, err.value.code) == errors.TOO_MANY_REQUESTS
        finally:
            await server.stop()
            server.close()

    asyncio.run(scenario())


def test_waiting_linearizable_reads_fail_with_leader_changed(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = make_server(tmp_path)
        server.start()
        try:
            await asyncio.wait_for(leader_elected(server), 10)
            node = server.node
            # Hold the read before it reaches Raft, then report a leader change, as a follower sees it.
            node._read_inflight = (b"held", [], node._ticks)
            read = asyncio.ensure_future(server.range(RangeRequest(key=b"k")))
            while not node._read_waiting:  # the read is queued behind the held one
                await asyncio.sleep(0)
            server._on_leader_change(0, node.term + 1)
            with pytest.raises(EtcdError) as err:
                await read
            assert (err.value.message, err.value.code) == errors.LEADER_CHANGED
        finally:
            await server.stop()
            server.close()

    asyncio.run(scenario())
