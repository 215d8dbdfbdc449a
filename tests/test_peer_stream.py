"""Raft messages on a peer stream (app/peer/stream.py), against a real peer listener on 127.0.0.1:
order and acknowledgment on one long-lived request, a removed member told so, an older peer without
streams reached by POSTs, and the failures Raft must hear of (a peer that stops reading, a listener
that ends its streams)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from etcdpy.app.cli import _uvicorn
from etcdpy.app.config import Config
from etcdpy.app.peer import stream
from etcdpy.app.peer.stream import PeerSender
from etcdpy.app.peer.transport import PeerApp
from etcdpy.raft import Entry, Message, MessageType

Scope = dict[str, Any]


def heartbeat(term: int, frm: int = 1) -> Message:
    return Message(MessageType.MsgHeartbeat, to=2, frm=frm, term=term)


class Peer:
    """What member 2's peer listener saw."""

    def __init__(self) -> None:
        self.stepped: list[Message] = []
        self.requests: list[str] = []
        self.removed: set[int] = set()
        self.arrived = asyncio.Event()

    def step(self, msg: Message) -> None:
        self.stepped.append(msg)
        self.arrived.set()

    async def wait_for(self, count: int) -> None:
        while len(self.stepped) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)


def peer_app(peer: Peer, streams: bool = True) -> tuple[PeerApp, Callable[..., Any]]:
    app = PeerApp(step=peer.step, receive_snapshot=lambda m, p: None, members=dict,
                  snapshot_dir="/nonexistent", is_removed=lambda member: member in peer.removed,
                  client_app=lambda scope, receive, send: asyncio.sleep(0))

    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peer.requests.append(scope["path"])
            if scope["path"] == stream.STREAM_PATH and not streams:
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"404 page not found\n"})
                return
        await app(scope, receive, send)
    return app, asgi


@asynccontextmanager
async def listener(asgi: Callable[..., Any]) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = _uvicorn(asgi, Config(log_level="warn"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)  # uvicorn sets a flag, no event, once it listens
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), 10)


class Reports:
    def __init__(self) -> None:
        self.unreachable = asyncio.Event()
        self.removed = asyncio.Event()

    def sender(self, url: str) -> PeerSender:
        return PeerSender(2, url, "?from=http%3A%2F%2F127.0.0.1%3A1", None,
                          unreachable=lambda peer: self.unreachable.set(), removed=self.removed.set)


def test_messages_arrive_in_order_on_one_stream_and_are_acknowledged() -> None:
    async def main() -> None:
        peer, reports = Peer(), Reports()
        _, asgi = peer_app(peer)
        async with listener(asgi) as url:
            sender = reports.sender(url)
            for term in range(1, 4):
                sender.send(heartbeat(term))
            await peer.wait_for(3)
            entries = [Entry(5, 10, data=b"x" * 300_000)]  # a frame larger than one read of the socket
            sender.send(Message(MessageType.MsgApp, to=2, frm=1, term=5, entries=entries))
            for term in range(6, 9):
                sender.send(heartbeat(term))
            await peer.wait_for(7)
            await until(lambda: sender._unacked_since is None)  # the receiver acknowledged the frames
            sender.stop()
        assert [m.term for m in peer.stepped] == [1, 2, 3, 5, 6, 7, 8]
        assert peer.stepped[3].entries[0].data == b"x" * 300_000
        assert peer.requests == [stream.STREAM_PATH]  # one request carried every batch
        assert sender.healthy and not reports.unreachable.is_set()
    asyncio.run(main())


def test_a_removed_member_is_told_and_its_messages_are_not_stepped() -> None:
    async def main() -> None:
        peer, reports = Peer(), Reports()
        peer.removed.add(1)
        _, asgi = peer_app(peer)
        async with listener(asgi) as url:
            sender = reports.sender(url)
            sender.send(heartbeat(1))
            await asyncio.wait_for(reports.removed.wait(), 10)
            sender.send(heartbeat(2))  # a removed member's sender sends nothing more
            sender.stop()
        assert peer.stepped == []
        assert peer.requests == [stream.STREAM_PATH]
    asyncio.run(main())


def test_a_peer_without_streams_gets_one_post_per_batch() -> None:
    async def main() -> None:
        peer, reports = Peer(), Reports()
        _, asgi = peer_app(peer, streams=False)
        async with listener(asgi) as url:
            sender = reports.sender(url)
            sender.send(heartbeat(1))
            await peer.wait_for(1)
            sender.send(heartbeat(2))
            sender.send(heartbeat(3))
            await peer.wait_for(3)
            peer.removed.add(1)
            sender.send(heartbeat(4))
            await asyncio.wait_for(reports.removed.wait(), 10)  # 410 Gone
            sender.stop()
        assert [m.term for m in peer.stepped] == [1, 2, 3]
        assert peer.requests[0] == stream.STREAM_PATH
        assert set(peer.requests[1:]) == {stream.MESSAGES_PATH}
        assert not reports.unreachable.is_set()
    asyncio.run(main())


def test_a_peer_that_stops_acknowledging_is_reported_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like a paused member or a partition that swallows bytes: the stream starts, then nothing comes
    back. Raft must hear the peer is unreachable, and the next messages go on a new connection."""
    monkeypatch.setattr(stream, "SEND_TIMEOUT", 0.2)

    async def main() -> None:
        connections: list[asyncio.StreamReader] = []

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(reader)
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while await reader.read(65536):
                pass  # read and never acknowledge
        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        reports = Reports()
        sender = reports.sender(url)
        sender.send(heartbeat(1))
        await asyncio.wait_for(reports.unreachable.wait(), 10)
        assert not sender.healthy
        sender.send(heartbeat(2))
        await until(lambda: len(connections) == 2)
        sender.stop()
        server.close()
    asyncio.run(main())


def test_a_stopping_listener_ends_its_streams() -> None:
    """PeerApp.close (a member shutting down) ends the incoming streams at once instead of leaving
    uvicorn to wait them out; their senders hear of it and dial again."""
    async def main() -> None:
        peer, reports = Peer(), Reports()
        app, asgi = peer_app(peer)
        async with listener(asgi) as url:
            sender = reports.sender(url)
            sender.send(heartbeat(1))
            await peer.wait_for(1)
            app.close()
            await asyncio.wait_for(reports.unreachable.wait(), 10)
            assert not sender.healthy
            app._closing = False  # the listener serves again: the next message takes a new stream
            sender.send(heartbeat(2))
            await peer.wait_for(2)
            sender.stop()
        assert peer.requests == [stream.STREAM_PATH, stream.STREAM_PATH]
    asyncio.run(main())
