"""The plain REST view of the keyspace: `/kv/{key}`, beyond etcd, for people and scripts.

etcd's v3 JSON API wants every key and value in base64 inside a POSTed JSON body; here the key is the
URL path (percent-encoded where needed, so any bytes work) and the value is the raw HTTP body.

| request                               | answers                                                        |
| ------------------------------------- | -------------------------------------------------------------- |
| `GET /kv/{key}`                       | the raw value; `ETag: "<mod_revision>"`; 404 when absent        |
| `GET /kv/{key}?rev=N`                 | the value as of revision N                                      |
| `GET /kv/{prefix}?prefix=true`        | a JSON listing (`limit`, `keys_only`, `rev` apply)              |
| `GET /kv/{key}?watch=true`            | the key's changes as server-sent events (`/watch/sse`'s events) |
| `PUT /kv/{key}`                       | stores the body; `?lease=ID`; answers the new `ETag`           |
| `DELETE /kv/{key}`                    | deletes the key (`?prefix=true`: every key under it)            |

`If-Match: "<mod_revision>"` on PUT or DELETE is a compare-and-swap (one txn comparing the key's
mod_revision): a mismatch answers 412 with the current `ETag`. `If-Match: *` needs the key to exist,
`If-None-Match: *` on PUT needs it to be absent (create only). `GET` with a matching `If-None-Match`
answers 304.

A listing names each key as text when it is UTF-8 (`"key"`), otherwise in base64 (`"key_base64"`);
values likewise (`"value"` / `"value_base64"`); revisions are JSON numbers.

Every call goes through `EtcdServer`'s put/range/delete_range/txn with the request's token (the
`Authorization` header, or the `token` cookie as `/watch/sse` takes it), so the v3 API's permission
checks apply unchanged. Errors are etcd's error objects.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from etcdpy.app.errors import (
    REQUEST_TOO_LARGE,
    REST_BAD_PARAMETER,
    REST_KEY_NOT_FOUND,
    REST_PRECONDITION_FAILED,
    EtcdError,
    to_etcd_error,
)
from etcdpy.app.gateway.watch.sse import SSEStream, request_token_of
from etcdpy.app.server.auth import request_cert_cn, request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.app.tls_scope import client_cert_cn
from etcdpy.storage import encoding
from etcdpy.storage.errors import StorageError
from etcdpy.storage.kv_range import GTE_RANGE_END
from etcdpy.storage.kv_types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    RangeRequest,
    RangeResult,
    TxnRequest,
)

REST_PREFIX = "/kv/"
ROUTE = REST_PREFIX + "{key:path}"
WATCH_PROGRESS_S = 5.0
TAG = "plain REST view (beyond etcd)"


# ------------------------------------------------------------------------------------------ parsing


def raw_key(request: Request) -> bytes:
    """The key as bytes: the raw (still percent-encoded) path after `/kv/`, so `%2F` and `%FF` survive."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    return unquote_to_bytes(raw.split(b"?", 1)[0][len(REST_PREFIX):])


def _bad(detail: str) -> EtcdError:
    return EtcdError(f"{REST_BAD_PARAMETER[0]}: {detail}", REST_BAD_PARAMETER[1])


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in ("", "true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _bad(f"{name} must be true or false")


def _int(request: Request, name: str) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None
    if not 0 <= number < 1 << 63:
        raise _bad(f"{name} must be between 0 and 2^63-1")
    return number


def _etag_revision(header: str) -> int | None:
    """The mod_revision an `If-Match` names (`"5"`, `W/"5"` or `5`), or None for `*`."""
    tag = header.strip()
    if tag == "*":
        return None
    tag = tag.removeprefix("W/").strip('"')
    try:
        return int(tag)
    except ValueError:
        raise _bad(f"If-Match {header!r} is not a revision") from None


def _range_of(key: bytes, prefix: bool) -> tuple[bytes, bytes]:
    if not prefix:
        return key, b""
    if not key:
        return b"\x00", GTE_RANGE_END
    return key, encoding.prefix_end(key) or GTE_RANGE_END


# ------------------------------------------------------------------------------------------ answers


def etag(revision: int) -> str:
    return f'"{revision}"'


def _error(exc: Exception, headers: dict[str, str] | None = None) -> Response:
    err = to_etcd_error(exc)
    body = orjson.dumps({"error": err.message, "message": err.message, "code": err.code})
    return Response(body, status_code=err.http_status, media_type="application/json", headers=headers)


def _json(data: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


def _text_or_b64(name: str, data: bytes) -> dict[str, str]:
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode()}


def listing_entry(kv: KeyValue, keys_only: bool) -> dict[str, Any]:
    entry: dict[str, Any] = _text_or_b64("key", kv.key)
    entry.update(create_revision=kv.create_revision, mod_revision=kv.mod_revision, version=kv.version,
                 lease=kv.lease)
    if not keys_only:
        entry.update(_text_or_b64("value", kv.value))
    return entry


def _kv_headers(kv: KeyValue, revision: int) -> dict[str, str]:
    return {"ETag": etag(kv.mod_revision), "X-Etcd-Revision": str(revision),
            "X-Etcd-Create-Revision": str(kv.create_revision), "X-Etcd-Version": str(kv.version),
            "X-Etcd-Lease": str(kv.lease)}


# ------------------------------------------------------------------------------------------ auth


@contextlib.asynccontextmanager
async def caller(server: EtcdServer, request: Request) -> AsyncIterator[str | None]:
    """Make the request's token (and verified client certificate) the caller of the server calls
    inside, as the v3 dispatcher does, so auth checks them like any v3 request."""
    token = request_token_of(request, None)
    reset = request_token.set(token)
    cn = client_cert_cn(request.scope)
    cn_reset = request_cert_cn.set(cn) if cn is not None else None
    try:
        if token is not None:
            await server.auth.await_token(token)
        yield token
    finally:
        request_token.reset(reset)
        if cn_reset is not None:
            request_cert_cn.reset(cn_reset)


# ------------------------------------------------------------------------------------------ handlers


def _guard(key: bytes, header: str | None, none_match: str | None) -> list[Compare]:
    """The txn compares an `If-Match` / `If-None-Match` header asks for (empty: no condition)."""
    if header is not None:
        rev = _etag_revision(header)
        if rev is None:  # `*`: the key must exist
            return [Compare(CompareResult.GREATER, CompareTarget.VERSION, key, b"", "version", 0)]
        return [Compare(CompareResult.EQUAL, CompareTarget.MOD, key, b"", "mod_revision", rev)]
    if none_match is not None:
        if none_match.strip() != "*":
            raise _bad("If-None-Match on a write must be *")
        return [Compare(CompareResult.EQUAL, CompareTarget.VERSION, key, b"", "version", 0)]
    return []


def _precondition_failed(current: RangeResult) -> Response:
    headers = {"ETag": etag(current.kvs[0].mod_revision)} if current.kvs else None
    return _error(EtcdError(*REST_PRECONDITION_FAILED), headers)


async def _get(server: EtcdServer, request: Request, key: bytes) -> Response:
    prefix = _flag(request, "prefix")
    rev = _int(request, "rev")
    if _flag(request, "watch"):
        return await _watch(server, request, key, prefix, rev)
    start, end = _range_of(key, prefix)
    if not prefix:
        result = await server.range(RangeRequest(key=start, revision=rev))
        if not result.kvs:
            return _error(EtcdError(*REST_KEY_NOT_FOUND), {"X-Etcd-Revision": str(result.revision)})
        kv = result.kvs[0]
        headers = _kv_headers(kv, result.revision)
        none_match = request.headers.get("if-none-match")
        if none_match is not None and etag(kv.mod_revision) in {t.strip() for t in none_match.split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(kv.value, media_type="application/octet-stream", headers=headers)
    keys_only = _flag(request, "keys_only")
    result = await server.range(RangeRequest(key=start, range_end=end, revision=rev,
                                             limit=_int(request, "limit"), keys_only=keys_only))
    return _json({"revision": result.revision, "count": result.count, "more": result.more,
                  "kvs": [listing_entry(kv, keys_only) for kv in result.kvs]},
                 {"X-Etcd-Revision": str(result.revision)})


async def _read_body(server: EtcdServer, request: Request, key: bytes) -> bytes:
    """The value, refused with etcd's error once key and value exceed --max-request-bytes."""
    limit = server.config.max_request_bytes - len(key)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise EtcdError(*REQUEST_TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def _put(server: EtcdServer, request: Request, key: bytes) -> Response:
    lease = _int(request, "lease")
    guard = _guard(key, request.headers.get("if-match"), request.headers.get("if-none-match"))
    value = await _read_body(server, request, key)
    put = PutRequest(key=key, value=value, lease=lease)
    if not guard:
        res = await server.put(put)
        return _json({"revision": res.revision}, {"ETag": etag(res.revision)})
    txn = await server.txn(TxnRequest(compare=guard, success=[put], failure=[RangeRequest(key=key)]))
    if not txn.succeeded:
        current = txn.responses[0]
        assert isinstance(current, RangeResult)
        return _precondition_failed(current)
    return _json({"revision": txn.revision}, {"ETag": etag(txn.revision)})


async def _delete(server: EtcdServer, request: Request, key: bytes) -> Response:
    prefix = _flag(request, "prefix")
    guard = _guard(key, request.headers.get("if-match"), None)
    if guard and prefix:
        raise _bad("If-Match applies to one key, not to prefix=true")
    start, end = _range_of(key, prefix)
    delete = DeleteRangeRequest(key=start, range_end=end)
    if not guard:
        res = await server.delete_range(delete)
        return _json({"deleted": res.deleted, "revision": res.revision})
    txn = await server.txn(TxnRequest(compare=guard, success=[delete], failure=[RangeRequest(key=key)]))
    if not txn.succeeded:
        current = txn.responses[0]
        assert isinstance(current, RangeResult)
        return _precondition_failed(current)
    deleted = txn.responses[0]
    return _json({"deleted": getattr(deleted, "deleted", 0), "revision": txn.revision})


async def _watch(server: EtcdServer, request: Request, key: bytes, prefix: bool, rev: int) -> Response:
    """`/watch/sse`'s stream over this key (or prefix), from revision `rev` (0: from now on) or after
    the `Last-Event-ID` a reconnecting EventSource sends."""
    start, end = _range_of(key, prefix)
    if not start:
        raise EtcdError("etcdserver: key is not provided", REST_BAD_PARAMETER[1])
    resume = request.headers.get("last-event-id")
    if resume:
        try:
            rev = int(resume) + 1
        except ValueError:
            raise _bad(f"Last-Event-ID {resume!r} is not a revision") from None
    auth_info = server.auth.check_read(start, end)
    stream = SSEStream(server.watch_service, start, end, rev, _flag(request, "prev_kv"), False, False,
                       WATCH_PROGRESS_S, [])
    stream.auth, stream.auth_info = server.auth, auth_info
    return stream


_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "The key, percent-encoded where needed (`%2F` for a leading `/`, `%FF` for bytes)."}
_PARAMS = [
    {"name": "prefix", "in": "query", "schema": {"type": "boolean"},
     "description": "GET: list every key under the path as JSON; DELETE: delete them all."},
    {"name": "rev", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "GET: read as of this revision; with watch=true, the first revision to deliver."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "Listing: at most this many keys."},
    {"name": "keys_only", "in": "query", "schema": {"type": "boolean"}, "description": "Listing: no values."},
    {"name": "watch", "in": "query", "schema": {"type": "boolean"},
     "description": "GET: stream the key's (or prefix's) changes as server-sent events."},
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Status"}}}}
    for status, what in ((400, "Invalid request."), (401, "Invalid token."), (403, "Permission denied."),
                         (404, "No such key."), (412, "If-Match does not match."))
}


def install(api: FastAPI, server: EtcdServer | None) -> None:
    """Add `/kv/{key}` (GET, PUT, DELETE) to the FastAPI app."""

    async def serve(request: Request) -> Response:
        assert server is not None, "the REST view needs a running server"
        key = raw_key(request)
        try:
            async with caller(server, request):
                if request.method == "GET":
                    return await _get(server, request, key)
                if request.method == "PUT":
                    return await _put(server, request, key)
                return await _delete(server, request, key)
        except (EtcdError, StorageError) as exc:
            return _error(exc)

    value = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    api.add_api_route(
        ROUTE, serve, methods=["GET"], tags=[TAG], summary="Read a key's raw value, list a prefix, or watch",
        response_class=Response,
        responses={200: {"description": "The raw value (ETag: its mod_revision), a listing, or events.",
                         "content": {**value, "application/json": {"schema": {"type": "object"}},
                                     "text/event-stream": {"schema": {"type": "string"}}}},
                   304: {"description": "Not modified (If-None-Match)."}, **_ERRORS},
        openapi_extra={"parameters": [_KEY, *_PARAMS]})
    api.add_api_route(
        ROUTE, serve, methods=["PUT"], tags=[TAG], summary="Store the body as the key's value",
        response_class=Response,
        responses={200: {"description": "Stored; ETag is the new mod_revision.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
        openapi_extra={"parameters": [_KEY, {"name": "lease", "in": "query",
                                       "schema": {"type": "integer", "minimum": 0}}],
                       "requestBody": {"content": value}})
    api.add_api_route(
        ROUTE, serve, methods=["DELETE"], tags=[TAG], summary="Delete a key (or a prefix)",
        response_class=Response,
        responses={200: {"description": "Deleted count and revision.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
        openapi_extra={"parameters": [_KEY, _PARAMS[0]]})
