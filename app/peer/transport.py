"""Raft messages between members over HTTP, on the peer URLs.

Sending: one ordered sender per peer (`stream.PeerSender`: a long-lived stream of message batches,
etcd's rafthttp stream). A peer that is down is reported unreachable to Raft and what waited for it
dropped (Raft retransmits); it never blocks the other peers or the Raft loop. A snapshot message goes
as its own streamed request: the message, then the database dump.

Each stream (or batch) names the sender's peer URL (`?from=`), as etcd's X-PeerURLs header does: a
member that fell behind a membership change (a new member now leads) learns where to answer from the
request itself ("remotes"), or it could never reply and catch up.

Receiving (the peer ASGI app): `POST /raft/stream` steps each batch of a stream into the node as it
arrives, `POST /raft/messages` one batch (what a member without streams sends);
`POST /raft/snapshot` loads the streamed database aside and then steps the snapshot message, so Raft
decides whether to install it; `GET /raft/members` lets a joining member learn its id and the cluster's;
the gateway paths only a leader answers (app/leader_forward.py) are served to other members.

Over https peer URLs every request (streams, snapshots, members) is dialled with the peer client
context (`ssl`, from app/tls.py), which presents this member's peer certificate.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import struct
import tempfile
from collections.abc import AsyncIterator, Callable
from ssl import SSLContext, create_default_context
from typing import Any
from urllib.parse import parse_qs, quote

import msgpack
from starlette.types import ASGIApp, Receive, Scope, Send

from etcdpy.app.peer import peer_metrics
from etcdpy.app.peer.forward import FORWARDED
from etcdpy.app.peer.stream import MESSAGES_PATH, STREAM_PATH, PeerSender, receive_stream
from etcdpy.app.peer.wire import decode_messages, encode_messages
from etcdpy.raft import Message, MessageType

log = logging.getLogger("etcdpy.transport")

_LEN = struct.Struct(">I")


class PeerTransport:
    def __init__(
        self,
        local_id: int,
        unreachable: Callable[[int], None],
        snapshot_done: Callable[[int, bool], None],
        dump_snapshot: Callable[[str], int],
        removed: Callable[[], None],
        ssl: SSLContext | None = None,
        local_url: str = "",
    ) -> None:
        self.local_id = local_id
        self.ssl = ssl
        self.query = f"?from={quote(local_url, safe='')}" if local_url else ""
        self.members: dict[int, str] = {}
        self.remotes: dict[int, str] = {}  # peers not (yet) in our membership that wrote to us
        self.removed = removed
        self.unreachable = unreachable
        self.snapshot_done = snapshot_done
        self.dump_snapshot = dump_snapshot
        self.senders: dict[int, PeerSender] = {}
        self.urls: dict[int, str] = {}

    def set_peers(self, urls: dict[int, str]) -> None:
        """Point the transport at the current members (called whenever membership changes)."""
        self.members = dict(urls)
        self.remotes = {pid: url for pid, url in self.remotes.items() if pid not in urls}
        urls = {**self.remotes, **urls}
        for peer_id in list(self.senders):
            if peer_id not in urls or urls[peer_id] != self.senders[peer_id].url:
                self.senders.pop(peer_id).stop()
        self.urls = {pid: url for pid, url in urls.items() if pid != self.local_id}
        for peer_id, url in self.urls.items():
            if peer_id not in self.senders:
                self.senders[peer_id] = PeerSender(peer_id, url, self.query, self.ssl, self.unreachable,
                                                   self.removed)

    def add_remote(self, peer_id: int, url: str) -> None:
        """A peer we do not know as a member wrote to us: let us answer it (etcd's AddRemote)."""
        if peer_id == self.local_id or peer_id in self.members or self.remotes.get(peer_id) == url:
            return
        self.remotes[peer_id] = url
        self.set_peers(self.members)

    def send(self, messages: list[Message]) -> None:
        for msg in messages:
            if msg.type == MessageType.MsgSnap:
                asyncio.get_running_loop().create_task(self._send_snapshot(msg))
                continue
            sender = self.senders.get(msg.to)
            if sender is not None:
                sender.send(msg)

    async def _send_snapshot(self, msg: Message) -> None:
        import httpx  # streams an upload; imported here because it costs start-up time and is rare

        url = self.urls.get(msg.to)
        ok = False
        fd, path = tempfile.mkstemp(prefix="etcdpy-snap-")
        os.close(fd)
        try:
            if url is None:
                return
            self.dump_snapshot(path)
            header = encode_messages([msg])

            async def body() -> AsyncIterator[bytes]:
                yield _LEN.pack(len(header)) + header
                with open(path, "rb") as f:
                    while chunk := f.read(256 * 1024):
                        yield chunk

            async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0),
                                         verify=_verify(self.ssl)) as client:
                resp = await client.post(f"{url.rstrip('/')}/raft/snapshot", content=body())
            ok = resp.status_code == 204
        except (httpx.HTTPError, OSError) as exc:
            log.warning("sending snapshot to %x failed: %s", msg.to, exc)
        finally:
            os.unlink(path)
            self.snapshot_done(msg.to, ok)

    async def close(self) -> None:
        for sender in self.senders.values():
            sender.stop()


class PeerApp:
    """The ASGI app on the peer URLs."""

    def __init__(
        self,
        step: Callable[[Message], None],
        receive_snapshot: Callable[[Message, str], None],
        members: Callable[[], dict[str, Any]],
        snapshot_dir: str,
        is_removed: Callable[[int], bool],
        client_app: ASGIApp,
        version: Callable[[], dict[str, str]] | None = None,
        add_remote: Callable[[int, str], None] | None = None,
    ) -> None:
        self.version = version  # GET /version: what the leader asks to decide the cluster version
        self.step = step
        self.add_remote = add_remote
        self.is_removed = is_removed
        self.client_app = client_app
        self.receive_snapshot = receive_snapshot
        self.members = members
        self.snapshot_dir = snapshot_dir
        self._streams: set[asyncio.Task[Any]] = set()  # serving incoming streams
        self._closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == STREAM_PATH and method == "POST":
            sender = self._sender_url(scope)
            task = asyncio.current_task()
            assert task is not None
            self._streams.add(task)
            try:
                await receive_stream(receive, send, lambda body: self._deliver(body, sender),
                                     lambda: self._closing)
            finally:
                self._streams.discard(task)
        elif path == MESSAGES_PATH and method == "POST":
            # One batch per request: what a member without streams sends.
            if self._deliver(await _read_all(receive), self._sender_url(scope)):
                await _reply(send, 204, b"")
            else:
                await _reply(send, 410, b"the member has been permanently removed from the cluster\n")
        elif path == "/raft/snapshot" and method == "POST":
            await self._snapshot(receive, send)
        elif path == "/raft/members" and method == "GET":
            await _reply(send, 200, msgpack.packb(self.members()))
        elif path == "/version" and method == "GET" and self.version is not None:
            body = json.dumps(self.version(), separators=(",", ":")).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif path in FORWARDED:
            await self.client_app(scope, receive, send)  # another member asks the leader (leader_forward)
        else:
            await _reply(send, 404, b"404 page not found\n")

    def close(self) -> None:
        """End the incoming streams: a stopping server otherwise waits for them (they never end on
        their own) until its graceful-shutdown timeout."""
        self._closing = True
        for task in self._streams:
            task.cancel()

    @staticmethod
    def _sender_url(scope: Scope) -> str | None:
        sender = parse_qs(scope.get("query_string", b"").decode()).get("from")
        return sender[0] if sender else None

    def _deliver(self, body: bytes, sender_url: str | None) -> bool:
        """Step one batch of messages; False (nothing stepped) if its sender was removed."""
        messages = decode_messages(body)
        if not messages:
            return True
        peer_metrics.RECEIVED_BYTES.labels(peer_metrics.peer_label(messages[0].frm)).inc(len(body))
        if any(self.is_removed(msg.frm) for msg in messages):
            return False
        if sender_url and self.add_remote is not None:
            self.add_remote(messages[0].frm, sender_url)
        for msg in messages:
            self.step(msg)
        return True

    async def _snapshot(self, receive: Receive, send: Send) -> None:
        """Body: header length u32, the MsgSnap, then the database dump, spooled to a file."""
        os.makedirs(self.snapshot_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.snapshot_dir, prefix="incoming-")
        buf = b""
        header: bytes | None = None
        with os.fdopen(fd, "wb") as out:
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                if header is not None:
                    out.write(chunk)
                else:
                    buf += chunk
                    if len(buf) >= _LEN.size:
                        end = _LEN.size + _LEN.unpack_from(buf)[0]
                        if len(buf) >= end:
                            header = buf[_LEN.size : end]
                            out.write(buf[end:])
                            buf = b""
                if not message.get("more_body"):
                    break
        if header is None:
            os.unlink(path)
            await _reply(send, 400, b"truncated snapshot\n")
            return
        (msg,) = decode_messages(header)
        self.receive_snapshot(msg, path)
        await _reply(send, 204, b"")


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _verify(ssl: SSLContext | None) -> SSLContext:
    """What an httpx client to a peer verifies with: the peer TLS context, or a default one made once.
    httpx builds its default per client, loading the CA bundle (~38 ms of CPU here), and the leader's
    version checks made a client per peer every 4 s: a pause of the event loop each time."""
    return ssl if ssl is not None else _default_context()


@functools.cache
def _default_context() -> SSLContext:
    return create_default_context()


async def fetch_version(peer_url: str, timeout: float = 2.0, ssl: SSLContext | None = None) -> str | None:
    """A member's server version from its peer URL (etcd's getVersion), None when it does not answer."""
    import httpx  # only the leader asks, every few seconds

    try:
        async with httpx.AsyncClient(timeout=timeout, verify=_verify(ssl)) as client:
            resp = await client.get(f"{peer_url.rstrip('/')}/version")
        if resp.status_code != 200:
            return None
        version = resp.json().get("etcdserver")
        return version if isinstance(version, str) else None
    except (httpx.HTTPError, ValueError):
        return None


async def fetch_members(peer_urls: list[str], ssl: SSLContext | None = None) -> dict[str, Any] | None:
    """Ask existing members who is in the cluster (a member joining with --initial-cluster-state existing)."""
    import httpx  # only a joining member needs it, once

    async with httpx.AsyncClient(timeout=2.0, verify=_verify(ssl)) as client:
        for url in peer_urls:
            try:
                resp = await client.get(f"{url.rstrip('/')}/raft/members")
                if resp.status_code == 200:
                    data: dict[str, Any] = msgpack.unpackb(resp.content)
                    return data
            except httpx.HTTPError:
                continue
    return None
