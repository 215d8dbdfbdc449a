"""etcd's v3 JSON gateway as a lean ASGI dispatcher.

`/v3/...` requests (and the `/v3beta/` alias) are answered here without FastAPI's per-request
machinery, which would cost more CPU than the whole request otherwise does (DESIGN §6); everything
else falls through to the FastAPI app. Routing, method and CORS behaviour copy etcd's gateway: text/plain
404 and 405 outside the RPC table, OPTIONS answered before routing, errors as `{"error","message","code"}`.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etcdpy.app.errors import (
    DEADLINE_EXCEEDED,
    INVALID_ARGUMENT,
    EtcdError,
    grpc_message_too_large,
    internal_error,
    to_etcd_error,
)
from etcdpy.app.gateway import codec, learner_gate
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.logs import event
from etcdpy.app.server.auth import request_cert_cn, request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.app.server.metrics import GRPC_CODES, MethodStats
from etcdpy.app.tls_scope import client_cert_cn
from etcdpy.storage.errors import StorageError

CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, GET, OPTIONS, PUT, DELETE"),
    (b"access-control-allow-headers", b"accept, content-type, authorization"),
]
_JSON_OK = [
    (b"content-type", b"application/json"), (b"grpc-metadata-content-type", b"application/grpc"), *CORS,
]
_JSON_ERR = [(b"content-type", b"application/json"), *CORS]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff"), *CORS]

GRPC_OVERHEAD = 512 * 1024  # etcd's gRPC receive limit is max-request-bytes plus this
BODY_READ_CAP = 64 * 1024 * 1024

Handler = Callable[[EtcdServer, bytes], Awaitable[dict[str, Any]]]
# A unary RPC given the body already decoded (`codec.decode_request(body, message)`) by a front worker.
DecodedHandler = Callable[[EtcdServer, dict[str, Any]], Awaitable[dict[str, Any]]]
StreamHandler = Callable[[EtcdServer, Scope, Receive, Send], Awaitable[None]]
# A bounded stream's whole answer to a whole body, when it can be given at once; None when the stream
# handler must answer (it may wait, or the answer is an error): `Gateway.answer_stream_at_once`.
AtOnce = Callable[[EtcdServer, bytes], bytes | None]
# What a front worker's decoded reply is given: status, headers, and the body or a success's payload.
Reply = Callable[[int, list[tuple[bytes, bytes]], bytes | dict[str, Any]], None]


@dataclass(frozen=True)
class Proposal:
    """A write RPC served from its decoded body without a coroutine (`Gateway.propose_decoded`)."""

    # The command to propose, checked as the RPC's handler checks it (size limits, request rules, user).
    prepare: Callable[[EtcdServer, dict[str, Any]], Any]
    encode: Callable[[Any, dict[str, str]], dict[str, Any]]  # the result and header -> the answer


@dataclass(frozen=True)
class Routes:
    """The gateway's one route table, built by `create_app` from each service module's table."""

    rpcs: dict[str, Handler]  # unary RPCs: a JSON body in, one JSON object out
    streams: dict[str, StreamHandler]  # streaming RPCs (watch, lease keepalive)
    own_preflight: frozenset[str] = frozenset()  # paths whose handler answers its own CORS preflight
    # unary RPCs that also take a decoded body: path -> (request message name, handler)
    decoded: dict[str, tuple[str, DecodedHandler]] = field(default_factory=dict)
    # streams whose answer ends when the request body does: a whole body is answered like a unary call
    bounded_streams: dict[str, AtOnce] = field(default_factory=dict)
    # unary writes that may skip the coroutine path when a front worker decoded them: path -> proposal
    proposals: dict[str, Proposal] = field(default_factory=dict)


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, err: EtcdError) -> None:
    await respond(send, err.http_status, codec.error_json(err.message, err.code), _JSON_ERR)


def _failure(err: EtcdError) -> tuple[int, int, list[tuple[bytes, bytes]], bytes]:
    return err.http_status, err.code, _JSON_ERR, codec.error_json(err.message, err.code)


def _failure_of(exc: Exception, path: str) -> tuple[int, int, list[tuple[bytes, bytes]], bytes]:
    """A unary RPC's answer to what its handler raised."""
    if isinstance(exc, DecodeError):
        return _failure(EtcdError(str(exc), INVALID_ARGUMENT))
    if isinstance(exc, (EtcdError, StorageError)):
        return _failure(to_etcd_error(exc))
    return _failure(internal_error(exc, path))  # a bug must still get an answer in etcd's shape


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None
        if not message.get("more_body"):
            break
    return b"".join(chunks)


_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_TIMEOUT_RE = re.compile(r"([0-9]{1,8})([HMSmun])")


def grpc_timeout(scope: Scope) -> float | None:
    """The call deadline from a `Grpc-Timeout` header (gRPC syntax: `1S`, `500m`), None without one."""
    return _grpc_timeout(scope["headers"])


def _grpc_timeout(headers: list[tuple[bytes, bytes]]) -> float | None:
    for name, value in headers:
        if name == b"grpc-timeout":
            text = value.decode("latin-1")
            match = _TIMEOUT_RE.fullmatch(text)
            if match is None:
                raise EtcdError(f"invalid grpc-timeout: {text}", INVALID_ARGUMENT)
            return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]
    return None


def authorization(scope: Scope) -> str | None:
    """The raw Authorization header (etcd's gateway hands it to the server as the token), or None."""
    return _authorization(scope["headers"])


def _authorization(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


def clean_path(path: str) -> str:
    """Go's path.Clean, which net/http's ServeMux applies before routing (redirecting to the result)."""
    cleaned = posixpath.normpath(path) if path else "/"
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _posted(client: Any, path: str) -> dict[str, Any]:
    """What `Gateway._finished` needs of the scope of a `POST path` a front worker forwarded."""
    return {"client": client, "method": "POST", "path": path}


REST_KV_PREFIX = "/kv/"  # rest_kv.REST_PREFIX (not imported: rest_kv sits above the dispatcher)
DEADLINE = EtcdError("context deadline exceeded", DEADLINE_EXCEEDED)
access_log = logging.getLogger("etcdpy.access")


class Gateway:
    """ASGI app: the v3 gateway in front of `fallback` (the FastAPI app)."""

    def __init__(self, server: EtcdServer, fallback: ASGIApp, routes: Routes) -> None:
        self.server = server
        self.fallback = fallback
        self.routes = routes
        # etcd's gateway reads the whole body and reports the decoded message's real size when it is
        # over the gRPC limit (unknown fields and whitespace do not count). Read that far and more
        # (a body can be mostly padding), but not without bound: past this, report the limit itself.
        self.body_limit = max(BODY_READ_CAP, 16 * (server.config.max_request_bytes + GRPC_OVERHEAD))
        self.stats = server.metrics.requests
        self.access_log = server.config.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] == "OPTIONS" and path not in self.routes.own_preflight:
            # etcd answers every preflight before routing.
            await respond(send, 200, b"", CORS)
            return
        cleaned = clean_path(path)
        # The plain REST view's path is a key (any bytes, `//` and `..` included): never cleaned.
        if cleaned != path and not path.startswith(REST_KV_PREFIX):
            await respond(send, 301, b"", [(b"location", cleaned.encode()), *CORS])
            return
        if path.startswith("/v3beta/"):
            path = "/v3/" + path[len("/v3beta/"):]
        if not path.startswith("/v3/"):
            await self._outside_v3(path, scope, receive, send)
            return
        # The caller's token, for the server's auth checks during this request (etcd's gRPC metadata).
        token = authorization(scope)
        reset = request_token.set(token)
        # The verified client certificate's CN (only on an https client listener with --client-cert-auth).
        cn = client_cert_cn(scope)
        cn_reset = request_cert_cn.set(cn) if cn is not None else None
        try:
            if token is not None:
                await self.server.auth.await_token(token)
            await self._serve_v3(path, scope, receive, send)
        finally:
            request_token.reset(reset)
            if cn_reset is not None:
                request_cert_cn.reset(cn_reset)

    async def _serve_v3(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.rpcs.get(path)
        if handler is None:
            stream = self.routes.streams.get(path)
            if stream is None:
                await respond(send, 404, b"Not Found\n", _TEXT)
            elif scope["method"] != "POST":
                await respond(send, 405, b"Method Not Allowed\n", _TEXT)
            elif self.server.is_learner():
                err = learner_gate.NOT_SUPPORTED_FOR_LEARNER
                await respond(send, err.http_status, learner_gate.stream_error_json(err), _JSON_ERR)
            else:
                await self._stream(stream, path, scope, receive, send)
            return
        if scope["method"] != "POST":
            await respond(send, 405, b"Method Not Allowed\n", _TEXT)
            return
        # Per-RPC metrics: statistics bound to the path once, plain integer updates per request.
        stats = self.stats.method(path)
        stats.started += 1
        start = time.perf_counter()
        status, code = await self._unary(handler, path, scope, receive, send)
        self._finished(stats, start, scope, status, code)

    async def _unary(self, handler: Handler, path: str, scope: Scope, receive: Receive,
                     send: Send) -> tuple[int, int]:
        """Answer one unary RPC; returns the HTTP status and the gRPC code of the answer."""
        body = await read_body(receive, self.body_limit)
        if body is None:
            limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
            return await self._fail(send, grpc_message_too_large(self.body_limit, limit))
        status, code, headers, answer = await self._answer(handler, path, scope["headers"], body, None)
        data = answer if isinstance(answer, bytes) else codec.dumps(answer)
        if status == 200:
            self.stats.bytes_sent += len(data)
        await respond(send, status, data, headers)
        return status, code

    async def _answer(self, handler: Handler, path: str, headers: list[tuple[bytes, bytes]], body: bytes,
                      decoded: dict[str, Any] | None) -> tuple[int, int, list[tuple[bytes, bytes]],
                                                              bytes | dict[str, Any]]:
        """A unary RPC's answer: HTTP status, gRPC code, headers (no content-length) and the body, or,
        for a success, the payload still to be encoded (`codec.dumps`) by whoever sends it.

        `decoded` is the body as `codec.decode_request` decodes it, when a front worker already did."""
        self.stats.bytes_received += len(body)
        grpc_limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
        if learner_gate.refuses(self.server, path, body, grpc_limit):  # after decoding, as etcd
            return _failure(learner_gate.NOT_SUPPORTED_FOR_LEARNER)
        try:
            timeout = _grpc_timeout(headers)
            if decoded is None:
                call = handler(self.server, body)
            else:
                call = self.routes.decoded[path][1](self.server, decoded)
            if timeout is None:
                payload = await call
            else:
                try:
                    payload = await asyncio.wait_for(call, timeout)
                except TimeoutError:
                    raise DEADLINE from None
        except Exception as exc:  # noqa: BLE001 - every failure is answered in etcd's shape
            return _failure_of(exc, path)
        return 200, 0, _JSON_OK, payload

    async def answer_unary(self, path: str, headers: list[tuple[bytes, bytes]], client: Any, body: bytes,
                           decoded: dict[str, Any] | None) -> tuple[int, list[tuple[bytes, bytes]],
                                                                   bytes | dict[str, Any]]:
        """What `__call__` answers to `POST path` for a unary RPC `path` (exactly as routed: a front
        worker sends nothing else), without an ASGI exchange: status, headers and body (or payload)."""
        token = _authorization(headers)
        reset = request_token.set(token)
        try:
            if token is not None:
                await self.server.auth.await_token(token)
            stats = self.stats.method(path)
            stats.started += 1
            start = time.perf_counter()
            status, code, out_headers, answer = await self._answer(self.routes.rpcs[path], path, headers,
                                                                   body, decoded)
            self._finished(stats, start, _posted(client, path), status, code)
            return status, out_headers, answer
        finally:
            request_token.reset(reset)

    def propose_decoded(self, path: str, headers: list[tuple[bytes, bytes]], client: Any, body: bytes,
                        decoded: dict[str, Any] | None, reply: Reply) -> bool:
        """`answer_unary` for a write a front worker decoded, without a task: checked and proposed now,
        answered through `reply` when applied. False, having done nothing, when the request needs the
        coroutine path: no proposal for `path`, no decoded body, a token (it may have to wait for its
        entry) or a deadline header."""
        proposal = self.routes.proposals.get(path)
        if proposal is None or decoded is None:
            return False
        for name, _ in headers:
            if name == b"authorization" or name == b"grpc-timeout":
                return False
        stats = self.stats.method(path)
        stats.started += 1
        self.stats.bytes_received += len(body)
        start = time.perf_counter()

        def answer(status: int, code: int, out_headers: list[tuple[bytes, bytes]],
                   payload: bytes | dict[str, Any]) -> None:
            self._finished(stats, start, _posted(client, path), status, code)
            reply(status, out_headers, payload)

        def applied(result: Any) -> None:
            try:
                if isinstance(result, Exception):
                    raise result
                payload = proposal.encode(result, self.server.header(result.revision))
            except Exception as exc:  # noqa: BLE001 - every failure is answered in etcd's shape
                answer(*_failure_of(exc, path))
                return
            answer(200, 0, _JSON_OK, payload)

        grpc_limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
        if learner_gate.refuses(self.server, path, body, grpc_limit):
            answer(*_failure(learner_gate.NOT_SUPPORTED_FOR_LEARNER))
            return True
        try:
            self.server.propose_then(proposal.prepare(self.server, decoded), applied)
        except Exception as exc:  # noqa: BLE001 - as in `applied`
            answer(*_failure_of(exc, path))
        return True

    def answer_stream_at_once(self, path: str, headers: list[tuple[bytes, bytes]], client: Any,
                              body: bytes) -> bytes | None:
        """What `__call__` streams (200, `_JSON_OK`) for `POST path`, a bounded stream, with the whole
        body `body`, when the stream can answer it without waiting; None, having done nothing, when
        it needs the stream handler (see `AtOnce`; also for a learner or a token to check)."""
        if self.server.is_learner():
            return None
        for name, _ in headers:
            if name == b"authorization":
                return None
        start = time.perf_counter()
        answer = self.routes.bounded_streams[path](self.server, body)
        if answer is not None:
            stats = self.stats.method(path)
            stats.started += 1
            self._finished(stats, start, _posted(client, path), 200, 0)
        return answer

    @staticmethod
    async def _fail(send: Send, err: EtcdError) -> tuple[int, int]:
        await respond_error(send, err)
        return err.http_status, err.code

    async def _stream(self, stream: StreamHandler, path: str, scope: Scope, receive: Receive,
                      send: Send) -> None:
        """Run a streaming RPC; an exception it did not expect still gets etcd's error shape if no
        answer has started (after that, the stream just ends)."""
        stats = self.stats.method(path)
        stats.started += 1
        start = time.perf_counter()
        code = 2  # Unknown, unless the stream ends normally
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await stream(self.server, scope, receive, tracking_send)
            code = 0
        except asyncio.CancelledError:
            code = 1  # the client went away: gRPC's Canceled
            raise
        except Exception as exc:  # noqa: BLE001 - see the docstring
            err = internal_error(exc, path)
            if not started:
                await respond_error(send, err)
        finally:
            self._finished(stats, start, scope, 200, code)

    def _finished(self, stats: MethodStats, start: float, scope: Scope, status: int, code: int) -> None:
        """An RPC is answered: its statistics, and the access log line (--access-log). `scope` needs
        only the client, method and path."""
        took = time.perf_counter() - start
        stats.done(code, took)
        if self.access_log:
            self._log_access(scope, status, code, took)

    def _log_access(self, scope: Scope, status: int, code: int, took: float) -> None:
        client = scope.get("client")
        remote = f"{client[0]}:{client[1]}" if client else ""
        event(access_log, logging.INFO, "request",
              f'{remote} "{scope["method"]} {scope["path"]}" {status} {GRPC_CODES[code]} {took * 1e3:.3f}ms',
              remote=remote, method=scope["method"], path=scope["path"], status=status,
              grpc_code=GRPC_CODES[code], took=f"{took * 1e3:.3f}ms")

    async def _outside_v3(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path in ("/v3", "/v3beta"):
            await respond(send, 301, b"", [(b"location", path.encode() + b"/"), *CORS])
        elif self._served_by_fallback(scope):
            await self.fallback(scope, receive, send)
        else:
            await respond(send, 404, b"404 page not found\n", _TEXT)

    def _served_by_fallback(self, scope: Scope) -> bool:
        """Whether the FastAPI app has a route for this path (any other path gets Go's mux 404)."""
        routes = getattr(self.fallback, "routes", None)
        if routes is None:
            return True
        from starlette.routing import Match  # loaded with the app whose routes these are

        return any(route.matches(scope)[0] != Match.NONE for route in routes)
