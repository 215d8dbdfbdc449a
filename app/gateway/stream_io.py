"""Reading and writing etcd's gateway streams over raw ASGI.

Requests: the body is a sequence of JSON objects (concatenated or newline-separated); each is handed over
as soon as it is complete, so a chunked upload is interactive. Responses: one `{"result":…}\\n` line per
HTTP chunk, with the status line and headers sent only together with the first line (etcd's gateway
writes nothing until it has a message).
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import Receive, Send

from etcdpy.app.errors import EtcdError
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.dispatch import _JSON_ERR, _JSON_OK, CORS, respond, respond_error
from etcdpy.app.gateway.json_body import JsonSyntaxError, _Scanner

_WS = b" \t\r\n"
# An empty keepalive stream: 200 with etcd's headers but no Grpc-Metadata-Content-Type.
_JSON_EMPTY = [(b"content-type", b"application/json"), *CORS]


def scan_value(data: bytes) -> int:
    """End offset of the first JSON value in `data` (Go's decoder errors, `unexpected EOF` if cut)."""
    scanner = _Scanner(data)
    scanner.parse()
    return scanner.pos


def only_value(body: bytes) -> bytes | None:
    """The body's JSON value when the whole body is exactly one (with the whitespace the reader skips
    around it), else None: empty, several values, or malformed (the reader then reports those)."""
    raw = body.strip(_WS)
    try:
        return raw if raw and scan_value(raw) == len(raw) else None
    except JsonSyntaxError:
        return None


class Disconnected(Exception):
    """The client went away."""


class RequestReader:
    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.buf = b""
        self.more = True
        self.disconnected = False

    async def next_object(self) -> bytes | None:
        """The next complete JSON value's bytes; None at the end of the body. Raises JsonSyntaxError
        (Go's message) for malformed input and Disconnected when the client leaves."""
        while True:
            buf = self.buf.lstrip(_WS)
            self.buf = buf
            if buf:
                try:
                    end = scan_value(buf)
                except JsonSyntaxError as exc:
                    if str(exc) != "unexpected EOF" or not self.more:
                        raise
                else:
                    self.buf = buf[end:]
                    return buf[:end]
                if len(buf) > self.limit:
                    raise JsonSyntaxError("request too large")
            elif not self.more:
                return None
            await self._read()

    def pop_buffered(self) -> bytes | None:
        """The next complete object already received, without waiting; None if there is none yet."""
        buf = self.buf.lstrip(_WS)
        self.buf = buf
        if not buf:
            return None
        try:
            end = scan_value(buf)
        except JsonSyntaxError as exc:
            if str(exc) == "unexpected EOF" and self.more:
                return None
            raise
        self.buf = buf[end:]
        return buf[:end]

    async def _read(self) -> None:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            self.more = False
            raise Disconnected()
        self.buf += message.get("body", b"")
        self.more = bool(message.get("more_body", False))

    async def wait_disconnect(self) -> None:
        """After the body: block until the client disconnects (http.disconnect)."""
        while not self.disconnected:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True


class LineWriter:
    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False
        self.finished = False

    async def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": 200, "headers": _JSON_OK})
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": 200, "headers": _JSON_EMPTY})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def fail(self, err: EtcdError) -> None:
        """A request error before anything was written: etcd answers it as a unary error."""
        self.started = self.finished = True
        await respond_error(self.send, err)

    async def fail_stream(self, err: EtcdError) -> None:
        """An error of the stream call itself before it sent anything (e.g. permission denied on a
        snapshot): grpc-gateway answers it in its stream error shape, with the code's HTTP status."""
        self.started = self.finished = True
        status = err.http_status
        body = codec.stream_error_json(err.message, err.code, status, HTTPStatus(status).phrase)
        await respond(self.send, status, body, _JSON_ERR)


__all__ = ["RequestReader", "LineWriter", "Disconnected", "only_value", "_JSON_ERR"]
