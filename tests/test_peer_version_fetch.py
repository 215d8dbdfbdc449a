"""fetch_version (the leader's check of every member's version, every 4 s): the answer, None for a
member that does not answer, and one default TLS context for the process rather than one per call
(building one loads the CA bundle, tens of milliseconds of the event loop each time)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import Any

import pytest

from etcdpy.app.peer import transport


async def _version_server() -> tuple[asyncio.Server, str]:
    body = json.dumps({"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readuntil(b"\r\n\r\n")).startswith(b"GET /version "):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_versions_are_fetched_with_one_default_context(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []

    def counting() -> ssl.SSLContext:
        made.append(1)
        return ssl.create_default_context()
    monkeypatch.setattr(transport, "create_default_context", counting)
    transport._default_context.cache_clear()

    async def main() -> list[str | None]:
        server, url = await _version_server()
        try:
            got = [await transport.fetch_version(url) for _ in range(3)]
            got.append(await transport.fetch_version(f"http://127.0.0.1:{_closed_port()}", timeout=1.0))
            return got
        finally:
            server.close()
            await server.wait_closed()

    try:
        assert asyncio.run(main()) == ["3.4.23", "3.4.23", "3.4.23", None]
        assert len(made) == 1
    finally:
        transport._default_context.cache_clear()
