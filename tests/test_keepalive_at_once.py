"""`Gateway.answer_stream_at_once`, the task-free path for a whole keep-alive body a front worker
forwards: it answers exactly what the keep-alive stream answers (the same line, the same renewal, the
same metrics) and declines, having done nothing, what only the stream handler may answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from etcdpy.app.gateway.dispatch import _JSON_OK, Gateway
from etcdpy.app.gateway.lease import grant
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.lessor import Lease
from tests.test_propose_decoded import run

PATH = "/v3/lease/keepalive"
CLIENT = ["127.0.0.1", 1]


async def streamed(gateway: Gateway, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The keep-alive stream's answer through the gateway's ASGI entry: status, headers, body."""
    sent = False
    start: dict[str, object] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays: the stream ends with the body, not with it
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message.get("body", b""))  # type: ignore[arg-type]

    scope = {"type": "http", "method": "POST", "path": PATH, "headers": [], "client": tuple(CLIENT)}
    await gateway(scope, receive, send)  # type: ignore[arg-type]
    return start["status"], start["headers"], b"".join(chunks)  # type: ignore[return-value]


def at_once(gateway: Gateway, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> bytes | None:
    tasks = asyncio.all_tasks()
    answer = gateway.answer_stream_at_once(PATH, headers or [], CLIENT, body)
    assert asyncio.all_tasks() == tasks, "the at-once path started a task"
    return answer


def test_one_request_is_answered_as_the_stream_answers_it(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        await grant(server, 60, 4660)
        stats = gateway.stats.method(PATH)
        for body in [b'{"ID":4660}', b' \r\n{"ID":"4660"}\n\t', b'{"ID":99}', b"{}", b"null",
                     b'{"zz":1,"ID":4660}']:
            before = stats.started
            fast = at_once(gateway, body)
            status, headers, slow = await streamed(gateway, body)
            assert (status, headers) == (200, _JSON_OK)
            assert fast == slow, body
            assert stats.started == before + 2  # counted as the stream counts its calls
        assert at_once(gateway, b'{"ID":4660}') == b'{"result":{"header":%s,"ID":"4660","TTL":"60"}}\n' % (
            b'{"cluster_id":"%d","member_id":"%d","revision":"%d","raft_term":"%d"}' % (
                server.cluster_id, server.member_id, server.store.current_revision, server.node.term))

    run(tmp_path, scenario)


async def half_spent_lease(server: EtcdServer) -> tuple[Lease, float]:
    """Lease 4660 (TTL 60) granted, with half its time gone: a renewal shows as a later expiry."""
    await grant(server, 60, 4660)
    lease = server.leases.lessor.leases[4660]
    lease.expiry -= 30
    return lease, lease.expiry


def test_it_renews_the_lease(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        lease, expiry = await half_spent_lease(server)
        assert at_once(gateway, b'{"ID":4660}') is not None
        assert lease.expiry > expiry + 29

    run(tmp_path, scenario)


def test_it_declines_what_the_stream_must_answer(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        lease, expiry = await half_spent_lease(server)
        stats = gateway.stats.method(PATH)
        started = stats.started
        for body in [b'{"ID":4660} {"ID":4660}', b'{"ID":4660}x', b'{"ID":"x"}', b'{"ID":', b"", b"  ",
                     b"[]"]:
            assert at_once(gateway, body) is None, body
        # A token must be checked first (it may have to wait for its auth revision).
        assert at_once(gateway, b'{"ID":4660}', [(b"authorization", b"t")]) is None
        # A follower forwards the renewal to its leader: that waits.
        leader = server.node.leader
        server.node.leader = 0
        try:
            assert at_once(gateway, b'{"ID":4660}') is None
        finally:
            server.node.leader = leader
        assert lease.expiry == expiry and stats.started == started

    run(tmp_path, scenario)
