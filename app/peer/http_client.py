"""A minimal HTTP/1.1 client on asyncio streams, for peer traffic and the benchmark's Python workloads.

httpx costs several hundred microseconds of client CPU per request; this client costs a fraction of that,
which matters on a 2-core machine where the client shares CPUs with the server (and where every Raft
heartbeat is a request). It supports exactly what those callers need: keep-alive POSTs with
Content-Length or chunked responses (with trailers), and a chunked *upload* kept open for interactive
streams (/v3/watch). An https endpoint is dialled with the `ssl.SSLContext` the caller gives (peer TLS,
app/tls.py); an http one never touches TLS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ssl import SSLContext
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    pass


def host_port(endpoint: str, https: bool = False) -> tuple[str, int]:
    u = urlsplit(endpoint if "://" in endpoint else "http://" + endpoint)
    if u.scheme not in (("http", "https") if https else ("http",)) or u.hostname is None:
        raise ValueError(f"only http:// endpoints are supported: {endpoint}")
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


class HttpConn:
    def __init__(self, endpoint: str, ssl: SSLContext | None = None) -> None:
        """`ssl` is required for an https endpoint (and unused for an http one)."""
        self.host, self.port = host_port(endpoint, https=ssl is not None)
        self._ssl = ssl if endpoint.startswith("https://") else None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24,
                                                                   ssl=self._ssl)

    @property
    def reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            raise HttpError("not connected")
        return self._reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise HttpError("not connected")
        return self._writer

    def abort(self) -> None:
        """Drop the connection at once, without waiting for the other end (which may not be reading)."""
        if self._writer is not None:
            self._writer.transport.abort()
        self._writer = None
        self._reader = None

    async def close(self) -> None:
        if self._ssl is not None:
            # No TLS close_notify exchange: a peer that stopped answering (a partition that swallows
            # bytes) would hold this close, and the sender with it, for the TLS shutdown timeout (30 s).
            # HTTP framing already marks the end of every answer, so nothing is lost by cutting.
            self.abort()
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self._writer = None
            self._reader = None

    def _head(self, path: str, extra: str, content_type: str = "application/json") -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\n{extra}\r\n").encode()

    async def post(self, path: str, body: bytes, content_type: str = "application/json",
                   authorization: str | None = None) -> tuple[int, bytes]:
        """One keep-alive request; a chunked answer (stream paths, errors) is joined into one body."""
        if self._writer is not None and self.reader.at_eof():
            # The server closed this idle keep-alive connection (uvicorn does after 5 s): a new one.
            await self.close()
        if self._writer is None:
            await self.connect()
        extra = f"Content-Length: {len(body)}\r\n"
        if authorization is not None:
            extra += f"Authorization: {authorization}\r\n"
        request = self._head(path, extra, content_type) + body
        # Never sent twice: a request whose answer did not come back may still have been served (a
        # member killed or cut off after reading it), and a resent batch of Raft proposals would be
        # appended, and applied, twice. The caller decides what a lost answer means.
        self.writer.write(request)
        status, headers = await self.read_head()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = b"".join([c async for c in self.iter_chunks()])
        else:
            raise HttpError("response without length or chunked framing")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def read_head(self) -> tuple[int, dict[str, str]]:
        line = await self.reader.readuntil(b"\r\n")
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise HttpError(f"bad status line {line!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            h = await self.reader.readuntil(b"\r\n")
            if h == b"\r\n":
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:  # Expect: 100-continue is never sent, but tolerate it
            return await self.read_head()
        return status, headers

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Chunk payloads of a chunked body until the last chunk (trailers are skipped)."""
        r = self.reader
        while True:
            size_line = await r.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while await r.readuntil(b"\r\n") != b"\r\n":
                    pass
                return
            data = await r.readexactly(size + 2)
            yield data[:-2]

    async def open_upload(self, path: str, first: bytes) -> None:
        """Start a request whose chunked body stays open, for interactive streams."""
        if self._writer is None:
            await self.connect()
        # etcd 3.4's gateway does not start a streaming RPC on an open chunked body unless the client
        # asked for "Expect: 100-continue" (curl -T does; a bare chunked POST hangs with no answer).
        self.writer.write(self._head(path, "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"))
        await self.writer.drain()
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout=2.0)
        except TimeoutError:
            line = b""  # RFC 9110: a client may send the body anyway when no 100 comes
        if line and not line.startswith(b"HTTP/1.1 100"):
            status = line.split(b"\r\n", 1)[0].decode("latin-1")
            raise HttpError(f"POST {path} refused by the server: {status}")
        self.writer.write(_chunk(first))
        await self.writer.drain()

    async def send_chunk(self, data: bytes) -> None:
        self.writer.write(_chunk(data))
        await self.writer.drain()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Stream messages are one JSON object per line; do not rely on one message per chunk."""
    buf = b""
    async for c in chunks:
        buf += c
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            line, buf = buf[:i], buf[i + 1:]
            if line.strip():
                yield line
    if buf.strip():
        yield buf
