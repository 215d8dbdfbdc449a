"""Server-sent events: `GET /watch/sse`, a watch for browsers (`EventSource`) and plain HTTP clients.

Beyond etcd's API. Every event id is a revision, so a reconnecting `EventSource` (which sends
`Last-Event-ID`) resumes exactly after the last revision it saw: nothing missed, nothing repeated.

Events on the stream (data is one compact JSON object per event; keys and values base64, as in etcd):

| event       | id         | data                                                       |
| ----------- | ---------- | ---------------------------------------------------------- |
| `created`   | start - 1  | `{"revision":"<current>","start_revision":"<first rev>"}`   |
| (message)   | revision   | `{"revision":"<rev>","events":[etcd Event, …]}` — one per revision |
| `progress`  | revision   | `{"revision":"<current>"}` every `progress_interval` s while synced |
| `compacted` | –          | `{"compact_revision":"<n>","reason":…}` — last event       |
| `canceled`  | –          | `{"reason":"server shutting down"}` (or the permission lost) — last event |

Keep-alive comments (`: keep-alive`) every 15 s of silence. The stream never ends silently: its last
event says why. A resume whose revision was compacted gets `compacted` (close the EventSource then;
otherwise it reconnects and gets the same answer). CORS follows `--cors` (etcd's flag; default `*`),
preflight included.

With auth enabled the watch needs a token that may READ the range. `EventSource` cannot set headers,
so the token may come as the `token` cookie (preferred: it stays out of URLs and logs; set it with
`Secure; HttpOnly; SameSite=Strict` where you serve the page), or as the `token` query parameter;
an `Authorization` header works for other clients. A refused watch answers etcd's error object with
etcd's status (401 invalid token, 403 permission denied, 400 no user); a permission revoked while
the stream is open ends it with a `canceled` event naming the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from etcdpy.app.errors import EtcdError, to_etcd_error
from etcdpy.app.gateway import learner_gate
from etcdpy.app.gateway.cors import Cors
from etcdpy.app.gateway.sse_paths import WATCH_SSE_PATH
from etcdpy.app.gateway.watch.encode import event_json
from etcdpy.app.server.auth import AuthInfo, AuthService, request_cert_cn, request_token
from etcdpy.app.server.watch_service import Session, WatchService
from etcdpy.app.tls_scope import client_cert_cn
from etcdpy.storage.errors import StorageError
from etcdpy.storage.kv_range import GTE_RANGE_END
from etcdpy.storage.kv_types import Event
from etcdpy.storage.watch_hub import CompactedMsg, EventsMsg, ProgressMsg, Watcher

SSE_PATH = WATCH_SSE_PATH
DEFAULT_PROGRESS_S = 5.0
KEEPALIVE_S = 15.0
RETRY_MS = 1000
ALLOW_HEADERS = "Last-Event-ID, Cache-Control, Accept, Content-Type, Authorization"
TOKEN_COOKIE = "token"
PERMISSION_LOST = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"


def prefix_end(prefix: bytes) -> bytes:
    """etcd's GetPrefixRangeEnd: the first key after every key starting with `prefix`."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return GTE_RANGE_END


def _sse(event: str | None, data: dict[str, Any], eid: int | None = None) -> bytes:
    parts = []
    if event:
        parts.append(b"event: " + event.encode() + b"\n")
    if eid is not None:
        parts.append(b"id: %d\n" % eid)
    parts.append(b"data: " + orjson.dumps(data) + b"\n\n")
    return b"".join(parts)


class SSEStream(Session, Response):
    """One SSE connection: a single watcher on its own hub stream, written as raw ASGI."""

    def __init__(self, service: WatchService, key: bytes, end: bytes, start: int, prev_kv: bool,
                 no_put: bool, no_delete: bool, progress_s: float, cors_headers: list[tuple[bytes, bytes]]):
        self.service = service
        self.params = (key, end, start, prev_kv, no_put, no_delete)
        self.progress_s = progress_s
        self.cors_headers = cors_headers
        self.ready = asyncio.Event()
        self.ending = False
        self.gone = False
        self.background = None
        self.auth: AuthService | None = None
        self.auth_info: AuthInfo | None = None
        self.revoked = False

    def shutdown(self) -> None:
        self.ending = True
        self.ready.set()

    def recheck(self) -> None:
        """After an auth change: end the stream if its user may no longer read the range."""
        assert self.auth is not None
        key, end = self.params[0], self.params[1]
        if not self.auth.permits_read(self.auth_info, key, end):
            self.revoked = True
            self.ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.service.hub
        key, end, start, prev_kv, no_put, no_delete = self.params
        stream = hub.open_stream(wakeup=self.ready.set)
        w = hub.watch(stream, 0, key, end, start, no_put=no_put, no_delete=no_delete, prev_kv=prev_kv)
        self.service.sessions.add(self)
        if self.auth is not None:
            self.auth.listeners.append(self.recheck)
        watcher_task = asyncio.get_running_loop().create_task(self._wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                *self.cors_headers,
            ]})
            current = hub.current_revision
            hello = b"retry: %d\n\n" % RETRY_MS + _sse(
                "created", {"revision": str(current), "start_revision": str(w.next_rev)}, w.next_rev - 1)
            await send({"type": "http.response.body", "body": hello, "more_body": True})
            await self._pump(send, stream, w)
        finally:
            watcher_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher_task
            self.service.sessions.discard(self)
            if self.auth is not None and self.recheck in self.auth.listeners:
                self.auth.listeners.remove(self.recheck)
            hub.close_stream(stream)

    async def _pump(self, send: Send, stream: Any, w: Watcher) -> None:
        hub = self.service.hub
        now = time.monotonic()
        next_progress = now + self.progress_s if self.progress_s > 0 else float("inf")
        last_write = now

        async def write(data: bytes) -> None:
            nonlocal last_write
            last_write = time.monotonic()
            await send({"type": "http.response.body", "body": data, "more_body": True})

        while True:
            if self.gone:
                return
            if self.ending or self.revoked:
                reason = PERMISSION_LOST if self.revoked else "server shutting down"
                await send({"type": "http.response.body", "more_body": False,
                            "body": _sse("canceled", {"reason": reason})})
                return
            timeout = max(0.0, min(next_progress, last_write + KEEPALIVE_S) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), timeout)
            self.ready.clear()
            for msg in stream.drain():
                if isinstance(msg, EventsMsg):
                    await write(self._events(msg.batch.events, w.prev_kv))
                elif isinstance(msg, ProgressMsg):
                    await write(_sse("progress", {"revision": str(msg.revision)}, msg.revision))
                elif isinstance(msg, CompactedMsg):
                    data = {"compact_revision": str(msg.compact_revision),
                            "reason": "etcdserver: mvcc: required revision has been compacted"}
                    await send({"type": "http.response.body", "body": _sse("compacted", data),
                                "more_body": False})
                    return
            now = time.monotonic()
            if now >= next_progress:
                next_progress = now + self.progress_s
                hub.request_progress(w)
            elif now - last_write >= KEEPALIVE_S:
                await write(b": keep-alive\n\n")

    @staticmethod
    def _events(events: list[Event], prev_kv: bool) -> bytes:
        """One SSE message per revision (a catch-up batch spans many), its id the revision."""
        out: list[bytes] = []
        group: list[dict[str, Any]] = []
        rev = events[0].kv.mod_revision
        for ev in events:
            if ev.kv.mod_revision != rev:
                out.append(_sse(None, {"revision": str(rev), "events": group}, rev))
                group, rev = [], ev.kv.mod_revision
            group.append(event_json(ev, prev_kv))
        out.append(_sse(None, {"revision": str(rev), "events": group}, rev))
        return b"".join(out)

    async def _wait_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                self.ready.set()
                return


def _bad_request(message: str, cors: list[tuple[bytes, bytes]]) -> JSONResponse:
    headers = {k.decode(): v.decode() for k, v in cors}
    return JSONResponse({"error": message, "message": message, "code": 3}, status_code=400, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad parameter, e.g. `start_revision: Input should be a valid integer`."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "header")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _refused(exc: Exception, cors: list[tuple[bytes, bytes]]) -> JSONResponse:
    err = to_etcd_error(exc)
    headers = {k.decode(): v.decode() for k, v in cors}
    return JSONResponse({"error": err.message, "message": err.message, "code": err.code},
                        status_code=err.http_status, headers=headers)


def request_token_of(request: Request, query_token: str | None) -> str | None:
    """The token of an SSE request: the `token` cookie, the `token` query parameter, or the header."""
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        return cookie
    if query_token:
        return query_token
    return request.headers.get("authorization")


def install(api: FastAPI, service: WatchService | None, cors_spec: str,
            auth: AuthService | None = None, is_learner: Callable[[], bool] = lambda: False) -> None:
    cors = Cors(cors_spec)

    async def validation_error(request: Request, exc: Exception) -> Response:
        # Parameters FastAPI refuses answer in etcd's error shape like every other SSE error; any
        # other route keeps FastAPI's answer.
        assert isinstance(exc, RequestValidationError)
        if request.url.path != SSE_PATH:
            return await request_validation_exception_handler(request, exc)
        return _bad_request(_validation_message(exc), cors.headers(request.headers.get("origin")))

    api.add_exception_handler(RequestValidationError, validation_error)

    @api.get(
        SSE_PATH,
        summary="Watch keys as server-sent events (resumable with Last-Event-ID)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        response_class=Response,
        responses={200: {"description": "An endless `text/event-stream`.",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                   400: {"description": "Invalid parameters."}},
        tags=["watch"],
    )
    async def watch_sse(
        request: Request,
        key: str = Query("", description="Key (UTF-8 text) to watch; with `prefix`, the prefix."),
        range_end: str = Query("", description="Exclusive end of the range (text); `\\0`... use `from_key`."),
        prefix: bool = Query(False, description="Watch every key that starts with `key`."),
        from_key: bool = Query(False, description="Watch every key >= `key`."),
        start_revision: int = Query(0, description="First revision to deliver; 0 = from now on."),
        prev_kv: bool = Query(False, description="Include each key's previous value."),
        filters: str = Query("", description="Comma-separated: `noput`, `nodelete`."),
        progress_interval: float = Query(DEFAULT_PROGRESS_S, ge=0,
                                         description="Seconds between progress events; 0 = none."),
        last_event_id: int | None = Query(None, description="Resume after this revision "
                                          "(the `Last-Event-ID` header does the same)."),
        token: str | None = Query(None, description="Auth token, for clients that cannot send the "
                                  "`Authorization` header or the `token` cookie (EventSource)."),
    ) -> Response:
        cors_headers = cors.headers(request.headers.get("origin"))
        raw_key = key.encode()
        if prefix:
            end = prefix_end(raw_key) if raw_key else GTE_RANGE_END
            raw_key = raw_key or b"\x00"
        elif from_key:
            end = GTE_RANGE_END
            raw_key = raw_key or b"\x00"
        else:
            end = range_end.encode()
        if not raw_key:
            return _bad_request("key is required (or prefix=true for every key)", cors_headers)
        if end and end != GTE_RANGE_END and raw_key >= end:
            return _bad_request("mvcc: watcher range is empty", cors_headers)
        flags = {f.strip().lower() for f in filters.split(",") if f.strip()}
        if flags - {"noput", "nodelete"}:
            return _bad_request(f"unknown filter in {filters!r}", cors_headers)
        header_id = request.headers.get("last-event-id")
        start = start_revision
        resume = last_event_id
        if header_id:
            try:
                resume = int(header_id)
            except ValueError:
                return _bad_request(f"Last-Event-ID {header_id!r} is not a revision", cors_headers)
        if resume is not None:
            start = resume + 1
        assert service is not None, "the SSE endpoint needs a running server"
        if is_learner():  # a learner serves no watch, as etcd
            err = learner_gate.NOT_SUPPORTED_FOR_LEARNER
            return JSONResponse({"error": err.message, "message": err.message, "code": err.code},
                                status_code=err.http_status,
                                headers={k.decode(): v.decode() for k, v in cors_headers})
        auth_info = None
        if auth is not None:
            raw_token = request_token_of(request, token)
            await auth.await_token(raw_token)
            reset = request_token.set(raw_token)
            cn_reset = request_cert_cn.set(client_cert_cn(request.scope))
            try:
                auth_info = auth.check_read(raw_key, end)
            except (EtcdError, StorageError) as exc:
                return _refused(exc, cors_headers)
            finally:
                request_cert_cn.reset(cn_reset)
                request_token.reset(reset)
        stream = SSEStream(service, raw_key, end, start, prev_kv, "noput" in flags, "nodelete" in flags,
                           progress_interval, cors_headers)
        stream.auth, stream.auth_info = auth, auth_info
        return stream

    @api.options(SSE_PATH, include_in_schema=False)
    async def watch_sse_preflight(request: Request) -> Response:
        headers = {k.decode(): v.decode() for k, v in cors.headers(request.headers.get("origin"))}
        headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        headers["Access-Control-Allow-Headers"] = (
            request.headers.get("access-control-request-headers") or ALLOW_HEADERS)
        headers["Access-Control-Max-Age"] = "600"
        return Response(status_code=204, headers=headers)
