"""etcd's streaming `POST /v3/watch` (newline-delimited JSON) and the session shared with the WebSocket.

A `WatchSession` is one etcd watch stream: it turns create/cancel/progress requests into hub calls and
its watchers' queued messages into `{"result":WatchResponse}` lines (gateway-api.md §6.2). The HTTP
handler reads request objects as they arrive (a chunked upload is interactive), writes each message as
its own chunk with the headers deferred to the first one, and keeps the stream open until the client
disconnects or the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from etcdpy.app.errors import PERMISSION_DENIED, UNKNOWN, EtcdError, grpc_status_text, to_etcd_error
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.json_body import JsonSyntaxError
from etcdpy.app.gateway.stream_io import Disconnected, LineWriter, RequestReader
from etcdpy.app.gateway.watch.encode import Encoder, line, response
from etcdpy.app.server.auth import AuthService, request_cert_cn, request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.app.server.watch_service import Session, WatchService
from etcdpy.storage.errors import StorageError
from etcdpy.storage.kv_range import GTE_RANGE_END

EMPTY_RANGE = "mvcc: watcher range is empty"
DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
NOPUT, NODELETE = 0, 1
# etcd's cancel reason for a watch the user may not (or may no longer) read: the gRPC status text.
PERMISSION_DENIED_REASON = grpc_status_text(EtcdError("etcdserver: permission denied", PERMISSION_DENIED))


class WatchSession(Session):
    def __init__(self, service: WatchService, encoder: Encoder, auth: AuthService | None = None,
                 token: str | None = None, cert_cn: str | None = None) -> None:
        """`auth`, `token` (the stream's raw Authorization value) and `cert_cn` (its verified client
        certificate's CN) gate watch creation; without `auth` (tests of the hub alone) every watch is
        allowed."""
        self.service = service
        self.hub = service.hub
        self.encoder = encoder
        self.auth = auth
        self.token = token
        self.cert_cn = cert_cn
        self.ready = asyncio.Event()
        self.stream = self.hub.open_stream(wakeup=self.ready.set)
        self.ending = False  # the server is shutting down
        self.gone = False  # the client went away
        service.sessions.add(self)
        if auth is not None:
            auth.listeners.append(self.recheck)

    # ------------------------------------------------------------------ requests

    def handle(self, d: dict[str, Any]) -> None:
        """One decoded WatchRequest."""
        if "create_request" in d:
            self.create(d["create_request"])
        elif "cancel_request" in d:
            self.cancel(d["cancel_request"].get("watch_id", 0))
        elif "progress_request" in d:
            self.stream.push(line(response(self.encoder.header(self.hub.current_revision), -1)))

    def create(self, c: dict[str, Any]) -> None:
        key = c.get("key") or b"\x00"
        end = c.get("range_end", b"")
        wid = c.get("watch_id", 0)
        filters = c.get("filters", ())
        header = self.encoder.header(self.hub.current_revision)
        ai = None
        if self.auth is not None:
            # etcd checks READ on the whole range before anything else and refuses with the status
            # text as the reason (a from-key watch is checked to the end of the keyspace: etcd 3.4
            # checked its first key only).
            reset = request_token.set(self.token)
            cn_reset = request_cert_cn.set(self.cert_cn)
            try:
                ai = self.auth.check_read(key, end)
            except (EtcdError, StorageError) as exc:
                reason = grpc_status_text(to_etcd_error(exc))
                self.stream.push(line(response(header, -1, created=True, canceled=True,
                                               cancel_reason=reason)))
                return
            finally:
                request_cert_cn.reset(cn_reset)
                request_token.reset(reset)
        err = ""
        if end and end != GTE_RANGE_END and key >= end:
            err = EMPTY_RANGE
        elif wid and wid in self.stream.watchers:
            err = DUPLICATE_ID
        if err:
            self.stream.push(line(response(header, -1, created=True, canceled=True, cancel_reason=err)))
            return
        if not wid:
            wid = self.stream.allocate_id()
        # "created" goes first: the hub may queue catch-up events for the watcher right after.
        self.stream.push(line(response(header, wid, created=True)))
        w = self.hub.watch(self.stream, wid, key, end, c.get("start_revision", 0),
                           no_put=NOPUT in filters, no_delete=NODELETE in filters,
                           prev_kv=c.get("prev_kv", False), progress_notify=c.get("progress_notify", False),
                           fragment=c.get("fragment", False))
        w.tag = ai

    def recheck(self) -> None:
        """After an auth change: cancel every watcher its user may no longer read, with etcd's
        reason (etcd itself checks only at creation; here a revoke also reaches open streams)."""
        assert self.auth is not None
        for w in list(self.stream.watchers.values()):
            if not self.auth.permits_read(w.tag, w.key, w.end):
                self.hub.cancel(w)
                header = self.encoder.header(self.hub.current_revision)
                self.stream.push(line(response(header, w.id, canceled=True,
                                               cancel_reason=PERMISSION_DENIED_REASON)))

    def cancel(self, wid: int) -> None:
        w = self.stream.watchers.get(wid)
        if w is None:
            return  # etcd does not answer a cancel of an unknown id
        self.hub.cancel(w)
        self.stream.push(line(response(self.encoder.header(self.hub.current_revision), wid, canceled=True)))

    # ------------------------------------------------------------------ output

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write queued messages, one line per call, until the client leaves or the server stops."""
        encode = self.encoder.encode
        while not (self.gone or self.ending):
            await self.ready.wait()
            self.ready.clear()
            for msg in self.stream.drain():
                for out in encode(msg):
                    await write(out)

    def shutdown(self) -> None:
        self.ending = True
        self.ready.set()

    def client_gone(self) -> None:
        self.gone = True
        self.ready.set()

    def close(self) -> None:
        self.service.sessions.discard(self)
        if self.auth is not None and self.recheck in self.auth.listeners:
            self.auth.listeners.remove(self.recheck)
        self.hub.close_stream(self.stream)


def decode_watch_request(raw: bytes) -> dict[str, Any]:
    return codec.decode_request(raw, "WatchRequest")


async def watch_stream(server: EtcdServer, scope: Scope, receive: Receive, send: Send) -> None:
    session = WatchSession(server.watch_service, Encoder(server), server.auth, request_token.get(),
                           request_cert_cn.get())
    reader = RequestReader(receive, 4 * server.config.max_request_bytes)
    writer = LineWriter(send)
    try:
        try:
            raw = await reader.next_object()
            first = decode_watch_request(raw) if raw is not None else None
        except (JsonSyntaxError, DecodeError) as exc:
            # A bad first object: etcd answers a unary error with code Unknown (gateway-api.md §4.4).
            await writer.fail(EtcdError(str(exc), UNKNOWN))
            return
        except Disconnected:
            return
        if first is not None:
            session.handle(first)
            # Requests that came in the same read are handled before any catch-up runs, as etcd's
            # receive loop handles them before its (periodic) sync of unsynced watchers.
            try:
                while (raw := reader.pop_buffered()) is not None:
                    session.handle(decode_watch_request(raw))
            except (JsonSyntaxError, DecodeError):
                reader.more = False
                reader.buf = b""
        reading = asyncio.get_running_loop().create_task(_read_requests(reader, session))
        try:
            await session.pump(writer.write)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        if session.ending:
            await writer.finish()
    finally:
        session.close()


async def _read_requests(reader: RequestReader, session: WatchSession) -> None:
    try:
        while True:
            raw = await reader.next_object()
            if raw is None:
                break
            session.handle(decode_watch_request(raw))
    except (JsonSyntaxError, DecodeError):
        pass  # a bad later object ends the request side; the watches keep streaming
    except Disconnected:
        session.client_gone()
        return
    await reader.wait_disconnect()
    session.client_gone()
