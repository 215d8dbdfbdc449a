"""etcd's v3 JSON gateway as a lean ASGI dispatcher.

`/v3/...` requests (and the `/v3beta/` alias) are answered here without FastAPI's per-request
machinery, which would cost more CPU than the whole request otherwise does (DESIGN §6); everything
else falls through to the FastAPI app. Routing, method and CORS behaviour copy etcd's gateway: text/plain
404 and 405 outside the RPC table, OPTIONS answered before routing, errors as `{"error","message","code"}`.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app import codec, learner_gate
from app.codec import DecodeError
from app.errors import (
    DEADLINE_EXCEEDED,
    INVALID_ARGUMENT,
    REQUEST_TOO_LARGE,
    EtcdError,
    grpc_message_too_large,
    to_etcd_error,
)
from app.server import EtcdServer
from storage.errors import StorageError

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
# Raft wraps a request with a header and a oneof tag before etcd checks its size against
# --max-request-bytes; this is a close bound on those bytes.
RAFT_REQUEST_OVERHEAD = 16

Handler = Callable[[EtcdServer, bytes], Awaitable[dict[str, Any]]]
StreamHandler = Callable[[EtcdServer, Scope, Receive, Send], Awaitable[None]]


def _limits(server: EtcdServer, d: dict[str, Any], message: str, proposed: bool) -> None:
    size = codec.proto_size(d, message)
    grpc_limit = server.config.max_request_bytes + GRPC_OVERHEAD
    if size > grpc_limit:
        raise grpc_message_too_large(size, grpc_limit)
    if proposed and size + RAFT_REQUEST_OVERHEAD > server.config.max_request_bytes:
        raise EtcdError(*REQUEST_TOO_LARGE)


def _kv_rpc(
    message: str,
    build: Callable[[dict[str, Any]], Any],
    call: Callable[[EtcdServer, Any], Awaitable[Any]],
    encode: Callable[[Any, dict[str, str]], dict[str, Any]],
    proposed: bool,
) -> Handler:
    """A KV RPC: decode, check etcd's size limits, serve, answer with the header at the result's revision."""

    async def handler(server: EtcdServer, body: bytes) -> dict[str, Any]:
        d = codec.decode_request(body, message)
        _limits(server, d, message, proposed)
        res = await call(server, build(d))
        return encode(res, server.header(res.revision))

    return handler


kv_range = _kv_rpc("RangeRequest", codec.range_request, EtcdServer.range, codec.range_json, proposed=False)
kv_put = _kv_rpc("PutRequest", codec.put_request, EtcdServer.put, codec.put_json, proposed=True)
kv_delete_range = _kv_rpc("DeleteRangeRequest", codec.delete_request, EtcdServer.delete_range,
                          codec.delete_json, proposed=True)
kv_txn = _kv_rpc("TxnRequest", codec.txn_request, EtcdServer.txn, codec.txn_json, proposed=True)


async def kv_compaction(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "CompactionRequest")
    _limits(server, d, "CompactionRequest", proposed=True)
    await server.compact(codec.compaction_request(d))
    return {"header": server.header()}


ROUTES: dict[str, Handler] = {
    "/v3/kv/range": kv_range,
    "/v3/kv/put": kv_put,
    "/v3/kv/deleterange": kv_delete_range,
    "/v3/kv/txn": kv_txn,
    "/v3/kv/compaction": kv_compaction,
}
# Streaming RPCs (watch, lease keepalive) and paths that answer their own CORS preflight (the SSE
# endpoint): filled in by app.watch_routes.install.
STREAM_ROUTES: dict[str, StreamHandler] = {}
OWN_PREFLIGHT: set[str] = set()


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, err: EtcdError) -> None:
    await respond(send, err.http_status, codec.error_json(err.message, err.code), _JSON_ERR)


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
    for name, value in scope["headers"]:
        if name == b"grpc-timeout":
            text = value.decode("latin-1")
            match = _TIMEOUT_RE.fullmatch(text)
            if match is None:
                raise EtcdError(f"invalid grpc-timeout: {text}", INVALID_ARGUMENT)
            return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]
    return None


def clean_path(path: str) -> str:
    """Go's path.Clean, which net/http's ServeMux applies before routing (redirecting to the result)."""
    cleaned = posixpath.normpath(path) if path else "/"
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


DEADLINE = EtcdError("context deadline exceeded", DEADLINE_EXCEEDED)


class Gateway:
    """ASGI app: the v3 gateway in front of `fallback` (the FastAPI app)."""

    def __init__(self, server: EtcdServer, fallback: ASGIApp) -> None:
        self.server = server
        self.fallback = fallback
        # A JSON body can be ~4/3 of its proto size (base64); beyond twice the gRPC limit no request
        # can be valid, so stop reading there.
        self.body_limit = 2 * (server.config.max_request_bytes + GRPC_OVERHEAD) + 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] == "OPTIONS" and path not in OWN_PREFLIGHT:
            # etcd answers every preflight before routing.
            await respond(send, 200, b"", CORS)
            return
        cleaned = clean_path(path)
        if cleaned != path:
            await respond(send, 301, b"", [(b"location", cleaned.encode()), *CORS])
            return
        if path.startswith("/v3beta/"):
            path = "/v3/" + path[len("/v3beta/"):]
        if not path.startswith("/v3/"):
            await self._outside_v3(path, scope, receive, send)
            return
        handler = ROUTES.get(path)
        if handler is None:
            stream = STREAM_ROUTES.get(path)
            if stream is None:
                await respond(send, 404, b"Not Found\n", _TEXT)
            elif scope["method"] != "POST":
                await respond(send, 405, b"Method Not Allowed\n", _TEXT)
            elif learner_gate.is_learner(self.server):
                err = learner_gate.NOT_SUPPORTED_FOR_LEARNER
                await respond(send, err.http_status, learner_gate.stream_error_json(err), _JSON_ERR)
            else:
                await stream(self.server, scope, receive, send)
            return
        if scope["method"] != "POST":
            await respond(send, 405, b"Method Not Allowed\n", _TEXT)
            return
        body = await read_body(receive, self.body_limit)
        if body is None:
            limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
            await respond_error(send, grpc_message_too_large(self.body_limit, limit))
            return
        grpc_limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
        if learner_gate.refuses(self.server, path, body, grpc_limit):  # after decoding, as etcd
            await respond_error(send, learner_gate.NOT_SUPPORTED_FOR_LEARNER)
            return
        try:
            timeout = grpc_timeout(scope)
            if timeout is None:
                payload = await handler(self.server, body)
            else:
                try:
                    payload = await asyncio.wait_for(handler(self.server, body), timeout)
                except TimeoutError:
                    raise DEADLINE from None
        except DecodeError as exc:
            await respond_error(send, EtcdError(str(exc), INVALID_ARGUMENT))
            return
        except (EtcdError, StorageError) as exc:
            await respond_error(send, to_etcd_error(exc))
            return
        await respond(send, 200, codec.dumps(payload), _JSON_OK)

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
        return any(route.matches(scope)[0] != Match.NONE for route in routes)
