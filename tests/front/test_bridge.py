"""The member's end of a worker channel (app/front/bridge.py), in process, with small ASGI apps in place
of the gateway: what scope a request frame becomes, that requests run concurrently, that a cancel
frame is the app's `http.disconnect`, and that every answer can be framed by the worker."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from etcdpy.app.front import frames
from etcdpy.app.front.bridge import FLUSH_AT, MemberChannel

App = Callable[[Scope, Receive, Send], Awaitable[None]]
SERVER = ("127.0.0.1", 2379)


class WorkerEnd:
    """The worker's side of the channel, driven by the test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = frames.FrameReader()
        self.queued: list[list[Any]] = []

    def send(self, *sent: list[Any]) -> None:
        self.writer.write(b"".join(frames.encode(f) for f in sent))

    async def next(self) -> list[Any]:
        while not self.queued:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "the member closed the channel"
            self.queued += self.frames.feed(data)
        return self.queued.pop(0)


def request(rid: int, body: bytes = b"{}", path: str = "/v3/kv/put") -> list[Any]:
    return [frames.REQUEST, rid, "POST", path, b"q=1", [[b"host", b"h"], [b"x-a", b"1"]], ["10.0.0.9", 4242],
            body, None]


def run(app: App, test: Callable[[MemberChannel, WorkerEnd], Awaitable[None]]) -> None:
    async def main() -> None:
        mine, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        _, channel = await loop.connect_accepted_socket(lambda: MemberChannel(app, SERVER, None), mine)
        reader, writer = await asyncio.open_connection(sock=theirs)
        try:
            await test(channel, WorkerEnd(reader, writer))
        finally:
            writer.close()
            await asyncio.wait_for(channel.closed, 10)

    asyncio.run(main())


async def respond(send: Send, status: int, *chunks: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                  length: bool = True) -> None:
    body = b"".join(chunks)
    out = list(headers or [])
    if length:
        out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    for i, chunk in enumerate(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})


def test_a_request_frame_is_an_http_scope_and_its_answer_one_frame() -> None:
    seen: list[tuple[Scope, Message]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, await receive()))
        await respond(send, 201, b"ab", b"", b"c", headers=[(b"content-type", b"x/y")])

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.send(request(7, b'{"k":1}'))
        assert await worker.next() == [frames.RESPONSE, 7, 201, [[b"content-type", b"x/y"],
                                                                 [b"content-length", b"3"]], b"abc"]
        assert channel.running == {}

    run(app, test)
    scope, message = seen[0]
    assert message == {"type": "http.request", "body": b'{"k":1}', "more_body": False}
    assert {k: scope[k] for k in ("type", "http_version", "method", "scheme", "path", "raw_path",
                                  "query_string", "root_path", "headers", "client", "server")} == {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/v3/kv/put",
        "raw_path": b"/v3/kv/put", "query_string": b"q=1", "root_path": "",
        "headers": [(b"host", b"h"), (b"x-a", b"1")], "client": ("10.0.0.9", 4242), "server": SERVER}


def test_requests_run_concurrently() -> None:
    second_arrived = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        if body == b"first":
            await second_arrived.wait()  # answers only once the second request is running
        else:
            second_arrived.set()
        await respond(send, 200, body)

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.send(request(1, b"first"), request(2, b"second"))
        answers = [await worker.next(), await worker.next()]
        assert [(a[1], a[4]) for a in answers] == [(2, b"second"), (1, b"first")]

    run(app, test)


def test_a_cancel_frame_is_the_apps_disconnect_and_gets_no_answer() -> None:
    disconnected = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        if body == b"wait":
            assert await receive() == {"type": "http.disconnect"}
            disconnected.set()
            await respond(send, 200, b"too late")  # the client is gone: this goes nowhere
            return
        await respond(send, 200, body)

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.send(request(1, b"wait"))
        worker.send([frames.CANCEL, 1], [frames.CANCEL, 99])  # 99: unknown (already answered)
        await asyncio.wait_for(disconnected.wait(), 10)
        worker.send(request(2, b"next"))
        assert await worker.next() == [frames.RESPONSE, 2, 200, [[b"content-length", b"4"]], b"next"]

    run(app, test)


def test_every_answer_carries_its_framing() -> None:
    """A response without a length (a stream that ended with its body) is marked chunked, as uvicorn
    sends it; no response at all, or a failure, is uvicorn's 500: every answer is one a client can read."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        if body == b"stream":
            await respond(send, 200, b"a", b"b", length=False)
        elif body == b"raise":
            raise RuntimeError("a bug")
        # b"nothing": returns without answering

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.send(request(1, b"stream"))
        assert await worker.next() == [frames.RESPONSE, 1, 200, [[b"transfer-encoding", b"chunked"]], b"ab"]
        error = [[b"content-type", b"text/plain; charset=utf-8"], [b"content-length", b"21"]]
        for rid, body in ((2, b"raise"), (3, b"nothing")):
            worker.send(request(rid, body))
            assert await worker.next() == [frames.RESPONSE, rid, 500, error, b"Internal Server Error"]

    run(app, test)


def test_a_closed_channel_cancels_what_runs() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.send(request(1))
        await asyncio.wait_for(started.wait(), 10)
        worker.writer.close()
        await asyncio.wait_for(channel.closed, 10)
        await asyncio.wait_for(cancelled.wait(), 10)

    run(app, test)


def test_a_corrupt_channel_is_closed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        worker.writer.write(b"\xff\xff\xff\xff")
        assert await asyncio.wait_for(worker.reader.read(), 10) == b""  # closed by the member
        await asyncio.wait_for(channel.closed, 10)

    run(app, test)


def test_it_spins_once_nothing_is_in_flight() -> None:
    """After answering, the member polls for a lone client's next request (app/front/spin.py) until it
    comes, but not while another request is still unanswered, nor for one whose client went away."""
    release = asyncio.Event()
    disconnected = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        if body == b"wait":
            assert await receive() == {"type": "http.disconnect"}
            disconnected.set()
            return
        if body == b"slow":
            await release.wait()
        await respond(send, 200, body)

    async def test(channel: MemberChannel, worker: WorkerEnd) -> None:
        channel.spinner.window = 10.0  # whatever this machine's CPUs
        worker.send(request(1, b"slow"), request(2, b"fast"))
        assert (await worker.next())[1] == 2
        assert channel.unanswered == 1 and not channel.spinner.spinning
        release.set()
        assert (await worker.next())[1] == 1
        assert channel.unanswered == 0 and channel.spinner.spinning
        # The next request ends the spin: what it waited for has come.
        worker.send(request(3, b"wait"), [frames.CANCEL, 3])
        await asyncio.wait_for(disconnected.wait(), 10)
        assert channel.unanswered == 0 and not channel.spinner.spinning
        worker.send(request(4, b"next"))
        assert (await worker.next())[1] == 4
        assert channel.unanswered == 0 and channel.spinner.spinning
        channel.spinner._until = 1.0

    run(app, test)


def test_answers_go_out_in_groups_without_waiting_for_the_loop() -> None:
    """Answers made inside one long callback (a write group's apply) are written FLUSH_AT at a time as
    they come, the rest when the loop next turns; each frame exactly once, in order."""

    class Transport:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return False

    async def main() -> None:
        channel = MemberChannel(None, SERVER, None)  # type: ignore[arg-type]
        transport = Transport()
        channel.connection_made(transport)  # type: ignore[arg-type]
        count = 2 * FLUSH_AT + 3
        channel.unanswered = count
        for rid in range(count):  # one callback: the loop does not turn in between
            channel._reply(rid, 200, [], b"x")
        assert len(transport.writes) == 2
        await asyncio.sleep(0)
        assert len(transport.writes) == 3
        reader = frames.FrameReader()
        got = [f for data in transport.writes for f in reader.feed(data)]
        assert [f[1] for f in got] == list(range(count))
        assert channel.unanswered == 0
        await asyncio.sleep(0)
        assert len(transport.writes) == 3  # nothing written twice

    asyncio.run(main())
