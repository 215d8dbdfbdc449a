"""etcd's v3 JSON gateway as a lean ASGI dispatcher.

`/v3/...` requests (and the `/v3beta/` alias) are answered here without FastAPI's per-request
machinery, which would cost more CPU than the whole request otherwise does (DESIGN §6); everything
else falls through to the FastAPI app. Routing, method and CORS behaviour copy etcd's gateway: text/plain
404 and 405 outside the RPC table, OPTIONS answered before routing, errors as `{"error","message","code"}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app import codec
from app.codec import DecodeError
from app.errors import INVALID_ARGUMENT, REQUEST_TOO_LARGE, EtcdError, grpc_message_too_large, to_etcd_error
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


def _limits(server: EtcdServer, d: dict[str, Any], message: str, proposed: bool) -> None:
    size = codec.proto_size(d, message)
    grpc_limit = server.config.max_request_bytes + GRPC_OVERHEAD
    if size > grpc_limit:
        raise grpc_message_too_large(size, grpc_limit)
    if proposed and size + RAFT_REQUEST_OVERHEAD > server.config.max_request_bytes:
        raise EtcdError(*REQUEST_TOO_LARGE)


async def kv_range(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "RangeRequest")
    _limits(server, d, "RangeRequest", proposed=False)
    res = await server.range(codec.range_request(d))
    return codec.range_json(res, server.header(res.revision))


async def kv_put(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "PutRequest")
    _limits(server, d, "PutRequest", proposed=True)
    res = await server.put(codec.put_request(d))
    return codec.put_json(res, server.header(res.revision))


async def kv_delete_range(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "DeleteRangeRequest")
    _limits(server, d, "DeleteRangeRequest", proposed=True)
    res = await server.delete_range(codec.delete_request(d))
    return codec.delete_json(res, server.header(res.revision))


async def kv_txn(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "TxnRequest")
    _limits(server, d, "TxnRequest", proposed=True)
    res = await server.txn(codec.txn_request(d))
    return codec.txn_json(res, server.header(res.revision))


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
        if scope["method"] == "OPTIONS":
            # etcd answers every preflight before routing.
            await respond(send, 200, b"", CORS)
            return
        if path.startswith("/v3beta/"):
            path = "/v3/" + path[len("/v3beta/"):]
        if not path.startswith("/v3/"):
            await self._outside_v3(path, scope, receive, send)
            return
        handler = ROUTES.get(path)
        if handler is None:
            await respond(send, 404, b"Not Found\n", _TEXT)
            return
        if scope["method"] != "POST":
            await respond(send, 405, b"Method Not Allowed\n", _TEXT)
            return
        body = await read_body(receive, self.body_limit)
        if body is None:
            limit = self.server.config.max_request_bytes + GRPC_OVERHEAD
            await respond_error(send, grpc_message_too_large(self.body_limit, limit))
            return
        try:
            payload = await handler(self.server, body)
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
        elif path.startswith("/v3alpha"):
            await respond(send, 404, b"404 page not found\n", _TEXT)
        else:
            await self.fallback(scope, receive, send)
