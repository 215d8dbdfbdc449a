"""A front worker process: accepts client connections on the member's listening sockets and answers
the unary RPCs through its member, so HTTP parsing and socket work run on another core.

A worker only answers what it understands exactly: a `POST` of a path in the member's unary RPC
table (or a keep-alive renewal, whose stream ends with its body), with a `Content-Length` body and
nothing unusual (no `Transfer-Encoding`, `Expect`, `Upgrade` or `Origin`). It hands such a request to
the member as one frame, the KV RPCs' bodies already decoded with the gateway's codec, and the member
runs it through the same unary core (or ASGI application) it serves everything else with, so the
answer is byte for byte the one the member would have given; a success may come back as the payload,
which the worker encodes. Anything else (streams, WebSockets, SSE, the dashboard, CORS preflights,
malformed requests) turns the connection into a splice: the raw bytes from that request on are
relayed, both ways, to the member's own HTTP server on a private Unix socket.

Run by `pool`; never imports the server, so it starts in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import sys
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from etcdpy.app import interpreter
from etcdpy.app.front import frames
from etcdpy.app.front.spin import Spinner
from etcdpy.app.gateway import codec

# Requests bigger than this are spliced: the member's server then applies etcd's size limits and
# messages itself, and a worker never buffers more than this per connection.
MAX_FORWARDED_BODY = 2 * 1024 * 1024
MAX_HEAD = 64 * 1024
DRAIN_S = 2.0  # on SIGTERM: how long answers still owed are waited for
FLUSH_S = 0.05
_HIGH_WATER = 1 << 20
_SPLICE_HEADERS = (b"transfer-encoding", b"expect", b"upgrade", b"origin")
# What the member's server (httptools) accepts, and no more: header lines of an RFC 9110 token, a
# colon and a value without control bytes (tab aside), each ended by CRLF (one match for the head).
# A request outside this is spliced, so the member's server answers it as it would without workers
# (its 400 for a malformed one); a worker that forwarded it would answer what the member refuses, and
# one that waited for a CRLF head after bare-LF lines would never answer at all.
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_QUERY = re.compile(rb"[!-~]*")
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class _Date:
    """The `date` header, formatted once a second (as uvicorn does)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._value


class Channel(asyncio.Protocol):
    """The worker's end of its member channel: sends request frames, routes answers to connections."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reader = frames.FrameReader()
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, frame: list[Any]) -> None:
        # Frames queued in one loop iteration go out in one write (one syscall for many requests).
        data = frames.encode(frame)  # first: a frame that cannot be encoded changes nothing
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if self.transport is not None and self._out:
            self.transport.write(b"".join(self._out))
        self._out.clear()
        self.worker.wrote()

    def data_received(self, data: bytes) -> None:
        self.worker.spinner.stop()
        for frame in self.reader.feed(data):
            if frame[0] == frames.RESPONSE:
                conn = self.worker.pending.pop(frame[1], None)
                if not self.worker.pending:
                    self.worker.drained.set()
                if conn is not None:
                    conn.answer(frame[2], frame[3], frame[4])

    def connection_lost(self, exc: Exception | None) -> None:
        # The member is gone: so is the reason to hold its port.
        os._exit(0)


class ClientConnection(asyncio.Protocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: int | None = None  # id of the request the member is answering
        self.close_after = False
        self.splice: Splice | None = None
        self.splicing = False
        self.client: list[Any] | None = None
        # Flow control, as uvicorn's: a client that leaves its answers unread gets no new request
        # taken (write_paused), and one whose unanswered requests pile up is not read (read_paused).
        self.write_paused = False
        self.read_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = [peer[0], peer[1]] if isinstance(peer, tuple) else None

    def data_received(self, data: bytes) -> None:
        self.worker.spinner.stop()
        if self.splicing:
            if self.splice is not None and self.splice.transport is not None:
                self.splice.transport.write(data)
            else:
                self.buf += data  # the splice is still connecting
            return
        self.buf += data
        if self.waiting is None and not self.write_paused:
            self._next_request()
        if (self.waiting is not None or self.write_paused) and not self.splicing \
                and len(self.buf) > _HIGH_WATER and not self.read_paused:
            self.read_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self.splicing and self.splice is not None and self.splice.transport is not None:
            if self.splice.transport.can_write_eof():
                self.splice.transport.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None:
            self.worker.pending.pop(self.waiting, None)
            self.worker.channel.send([frames.CANCEL, self.waiting])
            self.waiting = None
        if self.splice is not None and self.splice.transport is not None:
            self.splice.transport.close()

    def pause_writing(self) -> None:
        if self.splicing:
            if self.splice is not None and self.splice.transport is not None:
                self.splice.transport.pause_reading()
        else:
            self.write_paused = True

    def resume_writing(self) -> None:
        if self.splicing:
            if self.splice is not None and self.splice.transport is not None:
                self.splice.transport.resume_reading()
        else:
            self.write_paused = False
            self._take_next()

    def _take_next(self) -> None:
        """Go on with the next pipelined request, unless one is being answered or the client is not
        reading its answers."""
        if self.waiting is not None or self.write_paused or self.splicing:
            return
        if self.read_paused:
            self.read_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        if self.buf:
            self._next_request()

    def _next_request(self) -> None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD or _BARE_LF.search(buf):
                self._start_splice()
            return
        head = bytes(buf[:end + 2])
        first = head.find(b"\r\n")
        if not _HEADER_LINES.fullmatch(head, first + 2):
            self._start_splice()
            return
        lines = head[:-2].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] != b"POST":
            self._start_splice()
            return
        path, _, query = parts[1].partition(b"?")
        if path not in self.worker.paths or query and (not _QUERY.fullmatch(query) or b"#" in query):
            self._start_splice()
            return
        headers = []
        length = -1
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            name = name.lower()
            value = value.strip(b" \t")
            if name in _SPLICE_HEADERS:
                self._start_splice()
                return
            if name == b"content-length":
                if length >= 0 or not value.isdigit():
                    self._start_splice()
                    return
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                if b"close" in (t.strip(b" \t") for t in value.lower().split(b",")):
                    self.close_after = True
            headers.append([name, value])
        if length < 0 or length > MAX_FORWARDED_BODY:
            self._start_splice()
            return
        total = end + 4 + length
        if len(buf) < total:
            return
        body = bytes(buf[end + 4:total])
        del buf[:total]
        worker = self.worker
        worker.next_id += 1
        self.waiting = worker.next_id
        worker.pending[self.waiting] = self
        text_path = path.decode("latin-1")
        frame = [frames.REQUEST, self.waiting, "POST", text_path, query, headers, self.client, body,
                 worker.decode(text_path, body)]
        try:
            worker.channel.send(frame)
        except (TypeError, ValueError, OverflowError):
            # A decoded body msgpack cannot carry exactly: the member decodes the bytes itself.
            frame[-1] = None
            worker.channel.send(frame)

    def answer(self, status: int, headers: list[list[bytes]], body: bytes | dict[str, Any]) -> None:
        self.waiting = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")), self.worker.date.header()]
        head.extend(name + b": " + value + b"\r\n" for name, value in headers)
        if not isinstance(body, bytes):
            body = codec.dumps(body)
            head.append(b"content-length: %d\r\n" % len(body))
        elif headers and headers[-1][0] == b"transfer-encoding":
            body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
        if self.close_after:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(body)
        transport.write(b"".join(head))
        self.worker.wrote()
        if self.close_after:
            transport.close()
        else:
            self._take_next()

    def _start_splice(self) -> None:
        self.splicing = True
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect_splice())

    async def _connect_splice(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            # uvloop cannot connect to an abstract name itself; a socket connected by Python it takes.
            await loop.sock_connect(sock, "\0" + self.worker.member_http)
            _, splice = await loop.create_unix_connection(lambda: Splice(self), sock=sock)
        except OSError:
            sock.close()
            if self.transport is not None:
                self.transport.close()
            return
        self.splice = splice
        if self.transport is None or self.transport.is_closing():
            splice.transport.close()  # type: ignore[union-attr]
            return
        if self.buf:
            splice.transport.write(bytes(self.buf))  # type: ignore[union-attr]
            self.buf.clear()
        self.transport.resume_reading()


class Splice(asyncio.Protocol):
    """The member's side of a spliced client connection: relays its bytes back to the client."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.client.transport is not None:
            self.client.transport.write(data)

    def eof_received(self) -> bool | None:
        if self.client.transport is not None and self.client.transport.can_write_eof():
            self.client.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client.transport is not None:
            self.client.transport.close()

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()


class Worker:
    def __init__(self, paths: frozenset[bytes], member_http: str, messages: dict[str, str]) -> None:
        self.paths = paths
        self.messages = messages  # path -> request message, for the RPCs this worker decodes
        self.member_http = member_http
        self.pending: dict[int, ClientConnection] = {}
        self.drained = asyncio.Event()  # set when the last pending request got its answer
        self.next_id = 0
        self.date = _Date()
        self.channel = Channel(self)
        self.spinner = Spinner()

    def wrote(self) -> None:
        """A request went to the member or an answer to a client: with one client in flight, its next
        message (the answer, the next request) is due within moments (spin.py)."""
        if len(self.pending) <= 1:
            self.spinner.kick()

    def decode(self, path: str, body: bytes) -> dict[str, Any] | None:
        """The body decoded as the member's gateway would, or None to let the member decode it (any
        failure: the member then answers with etcd's error, counted in its metrics)."""
        message = self.messages.get(path)
        if message is None:
            return None
        try:
            return codec.decode_request(body, message)
        except Exception:  # noqa: BLE001 - see the docstring
            return None


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    messages = dict(item.split("=", 1) for item in args.decode.split(",") if item)
    worker = Worker(frozenset(p.encode() for p in args.paths.split(",") if p), args.member_http, messages)
    channel_sock = socket.socket(fileno=args.channel_fd)
    await loop.connect_accepted_socket(lambda: worker.channel, channel_sock)
    servers = []
    for fd in args.listen_fd:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        servers.append(await loop.create_server(lambda: ClientConnection(worker), sock=sock, backlog=2048))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    # The member is stopping (pool.stop): take no new connections, let the requests it is answering
    # get their answers (it keeps serving until its workers are gone), then go.
    for server in servers:
        server.close()
    deadline = loop.time() + DRAIN_S
    while worker.pending and loop.time() < deadline:
        worker.drained.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.drained.wait(), deadline - loop.time())
    await asyncio.sleep(FLUSH_S)  # the last answers leave the socket buffers


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the member dies, so a killed member's port is free at once."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="etcdpy-front-worker")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--listen-fd", type=int, action="append", default=[])
    parser.add_argument("--member-http", required=True, help="abstract socket name, without its NUL")
    parser.add_argument("--paths", required=True)
    parser.add_argument("--decode", default="", help="path=RequestMessage,... this worker decodes")
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent()
    if os.getppid() != args.parent:
        os._exit(0)  # the member died before the death signal was armed
    # Ctrl-C in a terminal reaches the whole process group; the member decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interpreter.tune()
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])
