"""Server-sent events: `GET /election/sse?name=…`, an election's leader changes for dashboards.

Beyond etcd's API: the same reports as `POST /v3/election/observe` (the leader, each proclamation, each
new leader), for `EventSource` and plain HTTP clients. `name` is the election's name as UTF-8 text (as
`/watch/sse` takes its key), not base64. Every event id is the revision of the report, so a reconnecting
`EventSource` (which sends `Last-Event-ID`) resumes: the leader it saw at that revision is not sent
again if it is still the leader with the same value; any change since is sent.

| event      | id        | data                                                        |
| ---------- | --------- | ----------------------------------------------------------- |
| (message)  | revision  | `{"revision":"<rev>","kv":{etcd KeyValue: key, value base64}}` |
| `canceled` | –         | `{"reason":…}` — the last event (server shutting down, a failed read) |

Keep-alive comments (`: keep-alive`) every 15 s of silence. CORS follows `--cors`, as `/watch/sse`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from etcdpy.app.errors import EtcdError, to_etcd_error
from etcdpy.app.gateway.codec import kv_json
from etcdpy.app.gateway.cors import Cors
from etcdpy.app.gateway.sse_paths import ELECTION_SSE_PATH
from etcdpy.app.gateway.watch.sse import ALLOW_HEADERS, KEEPALIVE_S, RETRY_MS, _bad_request, _sse
from etcdpy.app.server.coordination import Coordinator
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.errors import StorageError
from etcdpy.storage.kv_types import KeyValue

SSE_PATH = ELECTION_SSE_PATH
_END = object()


class ElectionStream(Response):
    """One SSE connection: an observe of one election, written as raw ASGI."""

    def __init__(self, server: EtcdServer, name: bytes, after: int,
                 cors_headers: list[tuple[bytes, bytes]]) -> None:
        self.server = server
        self.name = name
        self.after = after  # the last revision the client saw (0: none)
        self.cors_headers = cors_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reports: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        observing = loop.create_task(self._observe(reports))
        gone = loop.create_task(_until_disconnect(receive, reports))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                *self.cors_headers,
            ]})
            await send({"type": "http.response.body", "body": b"retry: %d\n\n" % RETRY_MS, "more_body": True})
            await self._pump(send, reports)
        finally:
            for task in (observing, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _observe(self, reports: asyncio.Queue[Any]) -> None:
        try:
            async for kv, revision in Coordinator(self.server).observe(self.name):
                reports.put_nowait((kv, revision))
        except (EtcdError, StorageError) as exc:
            reports.put_nowait(to_etcd_error(exc))

    async def _pump(self, send: Send, reports: asyncio.Queue[Any]) -> None:
        while True:
            try:
                item = await asyncio.wait_for(reports.get(), KEEPALIVE_S)
            except TimeoutError:
                await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                continue
            if item is _END:
                return
            if isinstance(item, EtcdError):
                await send({"type": "http.response.body", "more_body": False,
                            "body": _sse("canceled", {"reason": item.message})})
                return
            kv, revision = item
            assert isinstance(kv, KeyValue)
            if self.after:
                after, self.after = self.after, 0
                if revision <= after or await self._unchanged_since(kv, after):
                    continue  # a resumed client saw this leader, with this value, already
            data = {"revision": str(revision), "kv": kv_json(kv)}
            await send({"type": "http.response.body", "body": _sse(None, data, revision), "more_body": True})


    async def _unchanged_since(self, kv: KeyValue, revision: int) -> bool:
        try:
            then = await Coordinator(self.server).leader_at(self.name, revision)
        except (EtcdError, StorageError):
            return False
        return then is not None and then.key == kv.key and then.mod_revision == kv.mod_revision


async def _until_disconnect(receive: Receive, reports: asyncio.Queue[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    reports.put_nowait(_END)


def install(api: FastAPI, server: EtcdServer | None, cors_spec: str) -> None:
    cors = Cors(cors_spec)

    @api.get(
        SSE_PATH,
        summary="Observe an election's leader as server-sent events (resumable with Last-Event-ID)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        response_class=Response,
        responses={200: {"description": "An endless `text/event-stream`.",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                   400: {"description": "Invalid parameters."}},
        tags=["election"],
    )
    async def election_sse(
        request: Request,
        name: str = Query(..., description="The election's name (UTF-8 text, not base64)."),
        last_event_id: int | None = Query(None, description="Resume after this revision "
                                          "(the `Last-Event-ID` header does the same)."),
    ) -> Response:
        cors_headers = cors.headers(request.headers.get("origin"))
        after = last_event_id or 0
        header_id = request.headers.get("last-event-id")
        if header_id:
            try:
                after = int(header_id)
            except ValueError:
                return _bad_request(f"Last-Event-ID {header_id!r} is not a revision", cors_headers)
        assert server is not None, "the SSE endpoint needs a running server"
        return ElectionStream(server, name.encode(), after, cors_headers)

    @api.options(SSE_PATH, include_in_schema=False)
    async def election_sse_preflight(request: Request) -> Response:
        headers = {k.decode(): v.decode() for k, v in cors.headers(request.headers.get("origin"))}
        headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        headers["Access-Control-Allow-Headers"] = (
            request.headers.get("access-control-request-headers") or ALLOW_HEADERS)
        headers["Access-Control-Max-Age"] = "600"
        return Response(status_code=204, headers=headers)
