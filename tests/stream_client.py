"""A raw HTTP/1.1 client for etcd's streaming gateway paths, for tests.

The request body is sent with chunked transfer encoding, one request object at a time (so a watch is
interactive, as with etcd's gateway); the response is read chunk by chunk, and each chunk is kept, so
tests can check that every message is exactly one chunk.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit


class StreamClosed(Exception):
    pass


class StreamConn:
    def __init__(self, url: str, path: str = "/v3/watch", timeout: float = 10.0,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.timeout = timeout
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n{extra}"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                # etcd's gateway reads a chunked body interactively only after a 100 Continue.
                "Expect: 100-continue\r\n\r\n")
        self.sock.sendall(head.encode())
        self.buf = b""
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []  # every response chunk, as received
        self.pending: list[bytes] = []  # complete lines not yet returned
        self.partial = b""
        self.chunked = True
        self.ended = False

    # ------------------------------------------------------------------ request side

    def send(self, *objs: Any) -> None:
        data = b"".join(o if isinstance(o, bytes) else json.dumps(o, separators=(",", ":")).encode()
                        for o in objs)
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end_body(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")

    # ------------------------------------------------------------------ response side

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no data before the deadline") from None
        if not data:
            raise StreamClosed()
        self.buf += data

    def _read_head(self, deadline: float) -> None:
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill(deadline)
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 1"):
                break  # skip interim responses (100 Continue)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for h in lines[1:]:
            k, _, v = h.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _read_chunk(self, deadline: float) -> bytes | None:
        if not self.chunked:
            length = int(self.headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._fill(deadline)
            body, self.buf = self.buf[:length], self.buf[length:]
            self.ended = True
            return body or None
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        size_line, rest = self.buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            self._fill(deadline)
            size_line, rest = self.buf.split(b"\r\n", 1)
        chunk = rest[:size]
        self.buf = rest[size + 2:]
        if size == 0:
            self.ended = True
            return None
        return chunk

    def read_head(self, timeout: float | None = None) -> int:
        if self.status is None:
            self._read_head(time.monotonic() + (self.timeout if timeout is None else timeout))
        assert self.status is not None
        return self.status

    def read_line(self, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if self.status is None:
            self._read_head(deadline)
        while not self.pending:
            if self.ended:
                raise StreamClosed()
            chunk = self._read_chunk(deadline)
            if chunk is None:
                raise StreamClosed()
            self.chunks.append(chunk)
            data = self.partial + chunk
            *lines, self.partial = data.split(b"\n")
            self.pending.extend(line + b"\n" for line in lines)
            if self.partial and not self.chunked:
                self.pending.append(self.partial)
                self.partial = b""
        return self.pending.pop(0)

    def read_lines(self, n: int, timeout: float | None = None) -> list[bytes]:
        return [self.read_line(timeout) for _ in range(n)]

    def read_json(self, timeout: float | None = None) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.read_line(timeout))
        return value

    def quiet(self, seconds: float) -> bool:
        """True if nothing arrives for `seconds` (the stream may stay open)."""
        try:
            line = self.read_line(seconds)
        except (TimeoutError, StreamClosed):
            return True
        self.pending.insert(0, line)
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
