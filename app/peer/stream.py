"""Raft messages to one peer on a long-lived stream (etcd's rafthttp stream), and the receiving end.

Why a stream: a POST per batch costs both members a whole request cycle (the peer's uvicorn parses a
head, starts a task, answers 204; the sender reads the answer) and holds the next batch until the
answer is back. At 3-member put @256 that was ~15 % of the leader's CPU samples, and every hop of a
put (forward, append, acknowledgment, commit) waited behind the previous batch's round trip.

Wire: the sender opens `POST /raft/stream?from=<its peer URL>` with a chunked body that stays open
while the link is up. The body is frames: a big-endian u32 length, then one batch of messages as
`wire.encode_messages` packs them. The receiver answers at once (200, chunked) and, while frames
arrive, writes an acknowledgment byte at most every ACK_EVERY seconds, trailing the last frame; the
sender's only evidence that the link is alive. A frame unacknowledged for SEND_TIMEOUT (a peer that
is paused, or a partition that swallows bytes) ends the connection; the sender dials again. A member
the cluster removed gets REMOVED instead, then the end of the answer (etcd's 410 Gone).

Messages are written once: a frame that left may have been stepped even if its connection broke, and
resending a batch of proposals would append them twice; Raft retransmits what was lost. Messages
queued while the link is down wait, up to QUEUE_LIMIT, for the next connection; beyond, when the
connection fails, and when the peer has not taken BUFFER_LIMIT bytes already written, they are dropped
and Raft is told the peer is unreachable (it probes instead of streaming appends).
A peer that answers 404 (an older member without streams) is sent one POST per batch instead.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from ssl import SSLContext

from starlette.types import Receive, Send

from etcdpy.app.logs import event
from etcdpy.app.peer import peer_metrics
from etcdpy.app.peer.http_client import HttpConn, HttpError
from etcdpy.app.peer.wire import encode_messages
from etcdpy.raft import Message

log = logging.getLogger("etcdpy.transport")

STREAM_PATH = "/raft/stream"
MESSAGES_PATH = "/raft/messages"
QUEUE_LIMIT = 4096  # messages waiting for a connection
BUFFER_LIMIT = 16 * 1024 * 1024  # bytes the socket has not taken yet: beyond, batches are dropped
SEND_TIMEOUT = 5.0
ACK_EVERY = 0.01
RETRY_AFTER = 0.05  # a dead peer must not turn the dialling into a busy loop
ACK, REMOVED = b".", b"r"
_LEN = struct.Struct(">I")

_LINK_ERRORS = (HttpError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError)


class RemovedError(Exception):
    """The peer says the cluster removed this member."""


class PeerSender:
    """The ordered link to one peer. `send` never blocks and never raises: a message either joins the
    next frame or is dropped with the peer reported unreachable."""

    def __init__(self, peer_id: int, url: str, query: str, ssl: SSLContext | None,
                 unreachable: Callable[[int], None], removed: Callable[[], None]) -> None:
        self.peer_id = peer_id
        self.url = url.rstrip("/")
        self._query = query  # "?from=<our peer URL>", or ""
        self._ssl = ssl
        self._unreachable = unreachable
        self._removed = removed
        self._loop = asyncio.get_running_loop()
        self._pending: list[Message] = []
        self._flush_scheduled = False
        self._conn: HttpConn | None = None  # streaming when set
        self._task: asyncio.Task[None] | None = None  # dialling and reading the answer
        self._posts: HttpConn | None = None  # the peer has no stream endpoint: one POST per batch
        self._unacked_since: float | None = None
        self._stopped = False
        self.healthy = True
        label = peer_metrics.peer_label(peer_id)
        self._sent_bytes = peer_metrics.SENT_BYTES.labels(label)  # bound once: no label lookup per batch
        self._failures = peer_metrics.SENT_FAILURES.labels(label)
        self._rtt = peer_metrics.ROUND_TRIP.labels(label)
        self._watchdog = self._loop.call_later(SEND_TIMEOUT / 2, self._check_alive)

    def send(self, msg: Message) -> None:
        if self._stopped:
            return
        if len(self._pending) >= QUEUE_LIMIT:
            self._unreachable(self.peer_id)
            return
        self._pending.append(msg)
        if not self._flush_scheduled:
            # Everything one Ready sends to this peer leaves as one frame.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def stop(self) -> None:
        self._stopped = True
        self._watchdog.cancel()
        if self._task is not None:
            self._task.cancel()
        self._drop_conn()
        if self._posts is not None:
            self._posts.abort()

    # ------------------------------------------------------------------ sending

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._stopped or not self._pending:
            return
        conn = self._conn
        if conn is None:
            if self._task is None:
                link = self._streaming() if self._posts is None else self._posting()
                self._task = self._loop.create_task(link)
            return  # the task sends what is pending once it can
        writer = conn.writer
        batch, self._pending = self._pending, []
        if writer.transport.get_write_buffer_size() > BUFFER_LIMIT:
            # The peer reads slower than we send (a follower catching up on large entries): drop the
            # batch as etcd drops a message when its stream buffer is full, and let Raft probe.
            self._unreachable(self.peer_id)
            return
        body = encode_messages(batch)
        # One HTTP/1.1 chunk holding one frame, formatted at once (no copy of the body to prefix it).
        writer.write(b"%x\r\n%s%s\r\n" % (_LEN.size + len(body), _LEN.pack(len(body)), body))
        self._sent_bytes.inc(len(body))
        if self._unacked_since is None:
            self._unacked_since = time.monotonic()

    def _check_alive(self) -> None:
        since = self._unacked_since
        if since is not None and self._conn is not None and time.monotonic() - since > SEND_TIMEOUT:
            self._fail(TimeoutError(f"no acknowledgment in {SEND_TIMEOUT:.0f}s"))
        self._watchdog = self._loop.call_later(SEND_TIMEOUT / 2, self._check_alive)

    # ------------------------------------------------------------------ the connection

    async def _streaming(self) -> None:
        """Dial, start the stream, then read its answer (acknowledgments) until it ends."""
        conn = HttpConn(self.url, self._ssl)
        try:
            await asyncio.wait_for(conn.connect(), SEND_TIMEOUT)
            head = (f"POST {STREAM_PATH}{self._query} HTTP/1.1\r\nHost: {conn.host}:{conn.port}\r\n"
                    "Content-Type: application/x-msgpack\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.writer.write(head.encode())
            # Nothing is written before the answer's head: a peer without streams (404) gets the
            # pending messages by POST instead of losing them in a body it never reads.
            status, _ = await asyncio.wait_for(conn.read_head(), SEND_TIMEOUT)
            if status == 404:
                self._posts = HttpConn(self.url, self._ssl)  # an older member: no stream endpoint
                await conn.close()
                self._task = None
                if self._pending:
                    self._task = self._loop.create_task(self._posting())
                return
            if status != 200:
                raise HttpError(f"peer answered {status}")
            self._conn = conn
            self._flush()  # what queued while dialling
            self._became_active()
            async for chunk in conn.iter_chunks():
                if REMOVED in chunk:
                    raise RemovedError()
                if self._unacked_since is not None:
                    self._rtt.observe(time.monotonic() - self._unacked_since)
                    self._unacked_since = None
            raise HttpError("the peer ended the stream")
        except RemovedError:
            self._stopped = True
            self._drop_conn(conn)
            self._removed()
        except asyncio.CancelledError:
            self._drop_conn(conn)
            raise
        except _LINK_ERRORS as exc:
            self._fail(exc, conn)

    async def _posting(self) -> None:
        """One POST per batch, each waiting for its answer: for a peer without the stream endpoint."""
        conn = self._posts
        assert conn is not None
        try:
            while self._pending and not self._stopped:
                batch, self._pending = self._pending, []
                body = encode_messages(batch)
                start = time.perf_counter()
                status, _ = await asyncio.wait_for(
                    conn.post(MESSAGES_PATH + self._query, body, "application/x-msgpack"), SEND_TIMEOUT)
                if status == 410:
                    raise RemovedError()
                if status != 204:
                    raise HttpError(f"peer answered {status}")
                self._rtt.observe(time.perf_counter() - start)
                self._sent_bytes.inc(len(body))
                self._became_active()
        except RemovedError:
            self._stopped = True
            self._removed()
        except _LINK_ERRORS as exc:
            await conn.close()
            self._fail(exc)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _became_active(self) -> None:
        if not self.healthy:
            event(log, logging.INFO, "peer became active", f"peer {self.peer_id:x} became active",
                  peer_id=f"{self.peer_id:x}")
        self.healthy = True

    def _fail(self, exc: BaseException, conn: HttpConn | None = None) -> None:
        """The link broke: drop it and what waited for it, tell Raft, dial again after a pause."""
        self._drop_conn(conn)
        self._pending.clear()
        self._failures.inc()
        if self.healthy:
            # etcd's rafthttp peerStatus.deactivate.
            reason = f"failed to write {self.peer_id:x} on stream ({exc or type(exc).__name__})"
            event(log, logging.WARNING, "peer became inactive (message send to peer failed)",
                  f"{reason}; peer {self.peer_id:x} became inactive (message send to peer failed)",
                  peer_id=f"{self.peer_id:x}", error=reason)
        self.healthy = False
        self._unreachable(self.peer_id)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = self._loop.create_task(self._pause()) if not self._stopped else None

    async def _pause(self) -> None:
        await asyncio.sleep(RETRY_AFTER)
        self._task = None
        if self._pending:
            self._flush()

    def _drop_conn(self, conn: HttpConn | None = None) -> None:
        conn = conn or self._conn
        if conn is None:
            return
        if self._conn is conn:
            self._conn = None
            self._unacked_since = None
        conn.abort()  # no orderly close: the peer may not be reading at all


async def receive_stream(receive: Receive, send: Send, on_batch: Callable[[bytes], bool],
                         closing: Callable[[], bool]) -> None:
    """Serve one incoming stream: `on_batch` steps a frame's messages and returns False if the sender
    was removed from the cluster (the stream then ends with REMOVED). A cancellation while `closing()`
    is the server ending the stream: the answer ends properly, and the sender dials again elsewhere."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    acks = asyncio.Event()
    acker = asyncio.get_running_loop().create_task(_acknowledge(send, acks))
    buf = b""
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the sender went away
            buf += message.get("body", b"")
            start = 0
            while len(buf) - start >= _LEN.size:
                end = start + _LEN.size + _LEN.unpack_from(buf, start)[0]
                if len(buf) < end:
                    break
                if not on_batch(buf[start + _LEN.size:end]):
                    acker.cancel()
                    await send({"type": "http.response.body", "body": REMOVED, "more_body": False})
                    return
                start = end
            buf = buf[start:]
            acks.set()
            if not message.get("more_body"):
                break
    except asyncio.CancelledError:
        if not closing():
            raise
    finally:
        acker.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _acknowledge(send: Send, due: asyncio.Event) -> None:
    """One acknowledgment byte per ACK_EVERY at most, always following the last frame."""
    while True:
        await due.wait()
        due.clear()
        await send({"type": "http.response.body", "body": ACK, "more_body": True})
        await asyncio.sleep(ACK_EVERY)



