"""The lean peer HTTP client never sends a request twice: an unanswered request may have been served."""

from __future__ import annotations

import asyncio

import pytest

from etcdpy.app.peer.http_client import HttpConn


def test_a_request_whose_answer_is_lost_is_not_resent() -> None:
    """A member that reads a batch of Raft proposals and dies before answering has still received it;
    resending the batch on a new connection appended (and applied) the proposals twice."""
    received: list[bytes] = []

    async def scenario() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                received.append(await reader.readexactly(length))
                if len(received) > 1:
                    break  # the second request: read, then gone without a word
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = HttpConn(f"http://127.0.0.1:{port}")
        try:
            assert (await conn.post("/raft/messages", b"first"))[0] == 204
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await conn.post("/raft/messages", b"second")
        finally:
            await conn.close()
            server.close()

    asyncio.run(scenario())
    assert received == [b"first", b"second"]


def test_an_idle_connection_the_server_closed_is_replaced_before_sending() -> None:
    """uvicorn closes idle keep-alive connections; the next request goes out on a fresh one, once."""
    received: list[bytes] = []

    async def scenario() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            received.append(await reader.readexactly(length))
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()  # an idle close right after the answer

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = HttpConn(f"http://127.0.0.1:{port}")
        try:
            assert (await conn.post("/raft/messages", b"one"))[0] == 204
            async def closed_by_server() -> None:
                while not conn.reader.at_eof():
                    await asyncio.sleep(0)

            await asyncio.wait_for(closed_by_server(), 5)  # the idle close has reached the client
            assert (await conn.post("/raft/messages", b"two"))[0] == 204
        finally:
            await conn.close()
            server.close()

    asyncio.run(scenario())
    assert received == [b"one", b"two"]
