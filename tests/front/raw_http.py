"""A raw HTTP/1.1 client for the front worker tests: exact bytes out, exact bytes back.

httpx would hide what these tests are about (pipelining, split writes, header order and case,
`connection: close`, a connection changing hands mid-way), so requests are built by hand and
responses parsed by hand, keeping every header as sent, in order.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Response:
    status_line: bytes
    headers: list[tuple[bytes, bytes]]  # as sent: name case and order kept
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split(b" ")[1])

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def without(self, *names: bytes) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in self.headers if k.lower() not in names]


def request(method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
            host: str = "127.0.0.1", length: bool = True) -> bytes:
    """One request's bytes: `Host`, the given headers, then `Content-Length` unless `length` is False."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post(path: str, body: object, *headers: tuple[str, str]) -> bytes:
    """A JSON POST, as etcd's gateway takes one."""
    return request("POST", path, json.dumps(body).encode(), [("Content-Type", "application/json"), *headers])


def b64(text: str | bytes) -> str:
    """etcd's JSON encoding of bytes (keys, values)."""
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def chunked(body: bytes, size: int = 5) -> bytes:
    """`body` as a chunked request body (with the terminating chunk)."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


class Conn:
    """One client connection to `url`; responses are read in order, with a deadline on every read."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more into the buffer; False at the end of the stream."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer in time; have {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionError(f"closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_exactly(self, n: int, timeout: float | None = None) -> bytes:
        return self._take(n, time.monotonic() + (timeout or self.timeout))

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError(f"closed in a line: {self.buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_head(self, timeout: float | None = None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill(deadline):
                    raise ConnectionError(f"closed before a response head: {self.buf!r}")
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1.1 1"):
                break  # an interim 100 Continue is skipped
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        return lines[0], headers

    def read_chunk(self, timeout: float | None = None) -> bytes | None:
        """The next chunk of a chunked body; None for the last (empty) one."""
        deadline = time.monotonic() + (timeout or self.timeout)
        size = int(self._line(deadline).split(b";")[0], 16)
        if size == 0:
            while self._line(deadline):  # trailer fields, up to the empty line that ends the body
                pass
            return None
        return self._take(size + 2, deadline)[:-2]

    def read_response(self, timeout: float | None = None) -> Response:
        deadline = time.monotonic() + (timeout or self.timeout)
        status_line, headers = self.read_head(deadline - time.monotonic())
        response = Response(status_line, headers, b"")
        length = response.header(b"content-length")
        if length is not None:
            body = self._take(int(length), deadline)
        elif (response.header(b"transfer-encoding") or b"").lower() == b"chunked":
            parts = []
            while (chunk := self.read_chunk(deadline - time.monotonic())) is not None:
                parts.append(chunk)
            body = b"".join(parts)
        elif response.status in (204, 304):
            body = b""
        else:
            while self._fill(deadline):
                pass
            body, self.buf = self.buf, b""
        return Response(status_line, headers, body)

    def closed_by_server(self, timeout: float | None = None) -> bool:
        """True if the server closes its side (sending nothing more) within `timeout`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            return not self._fill(deadline) and not self.buf
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def exchange(url: str, data: bytes, count: int = 1) -> list[Response]:
    """Send `data` on a new connection and read `count` responses."""
    with Conn(url) as conn:
        conn.send(data)
        return [conn.read_response() for _ in range(count)]
