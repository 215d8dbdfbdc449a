"""The member's end of a front worker's channel: each request frame is answered as the same HTTP
request would be, and the answer goes back as one frame. A unary RPC goes straight to the gateway's
unary core (`Gateway.answer_unary`: no ASGI exchange, a success returned as its payload for the
worker to encode); a whole keep-alive body the gateway can answer at once (one renewal, this member
leading) is answered without a task (`Gateway.answer_stream_at_once`); anything else, or everything
when a CORS filter wraps the gateway, runs through the member's client ASGI application with its
answer collected."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from starlette.types import ASGIApp, Message

from etcdpy.app.front import frames
from etcdpy.app.front.spin import Spinner
from etcdpy.app.gateway.dispatch import _JSON_OK, Gateway

log = logging.getLogger(__name__)

_FAILED = b"Internal Server Error"
# Answers written to the worker as soon as this many wait, without waiting for the loop's turn (see
# _send). put @64, A/B pairs on a hand-started member: +8 to +19 % (5 of 5) at 8.
FLUSH_AT = 8
# A stream's answer goes out as uvicorn sends one (the app gives no length): chunked, in one chunk.
_CHUNKED = (b"transfer-encoding", b"chunked")
_STREAMED_OK = [*_JSON_OK, _CHUNKED]


class MemberChannel(asyncio.Protocol):
    def __init__(self, app: ASGIApp, server_addr: tuple[str, int] | None, gateway: Gateway | None) -> None:
        self.app = app
        # Without a CORS filter in front of it, the gateway answers unary RPCs without the ASGI exchange.
        self.gateway = gateway
        self.server_addr = server_addr
        self.reader = frames.FrameReader()
        self.transport: asyncio.Transport | None = None
        self.running: dict[int, tuple[asyncio.Task[None], asyncio.Event | None]] = {}
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self.unanswered = 0  # requests received and not yet answered
        self._flush_due = False
        self.spinner = Spinner()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            received = self.reader.feed(data)
        except ValueError:
            log.exception("front worker channel is corrupt; closing it")
            assert self.transport is not None
            self.transport.close()
            return
        gateway = self.gateway
        direct = gateway.routes.rpcs if gateway is not None else {}
        for frame in received:
            if frame[0] == frames.REQUEST:
                self.unanswered += 1
                self.spinner.stop()
                if frame[3] in direct:
                    # A unary RPC the gateway answers without ASGI runs to its end whatever the client
                    # does (the calls that wait for long are streams), so it needs no `gone` event.
                    assert gateway is not None
                    _, rid, _, path, _, headers, client, body, decoded = frame
                    if not gateway.propose_decoded(path, headers, client, body, decoded,
                                                   functools.partial(self._reply, rid)):
                        self.running[rid] = (self._loop.create_task(self._answer(frame, gateway)), None)
                elif (gateway is not None and frame[3] in gateway.routes.bounded_streams
                      and self._answer_at_once(frame, gateway)):
                    pass
                else:
                    gone = asyncio.Event()
                    self.running[frame[1]] = (self._loop.create_task(self._serve(frame, gone)), gone)
            elif frame[0] == frames.CANCEL:
                entry = self.running.get(frame[1])
                if entry is not None and entry[1] is not None:
                    entry[1].set()

    def connection_lost(self, exc: Exception | None) -> None:
        for task, _ in self.running.values():
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)

    def _send(self, frame: list[Any]) -> None:
        # Answers finished in one loop iteration go out together: one write for many requests. But a
        # write group's answers are made one entry at a time, inside one long apply (~30 µs a put, so
        # ~1.5 ms for 50): holding them all to its end kept each answer ~0.9 ms (p50) from the worker,
        # which could have been writing them to clients on its own core meanwhile.
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)
        self._out.append(frames.encode(frame))
        self.unanswered -= 1
        if len(self._out) >= FLUSH_AT:
            self._write_out()

    def _flush(self) -> None:
        self._flush_due = False
        self._write_out()

    def _write_out(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and self._out:
            self.transport.write(b"".join(self._out))
        self._out.clear()
        if self.unanswered == 0:
            # Nothing in flight: a lone client's next request is due within moments (spin.py).
            self.spinner.kick()

    async def _serve(self, frame: list[Any], gone: asyncio.Event) -> None:
        _, rid, method, path, query, headers, client, body, _ = frame
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query,
            "root_path": "",
            "headers": [(name, value) for name, value in headers],
            "client": tuple(client) if client else None,
            "server": self.server_addr,
        }
        sent_body = False
        status = 0  # no answer started yet
        out_headers: list[list[bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers.extend([name, value] for name, value in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - the gateway answers its own errors; this is a last resort
            log.exception("front request %s failed", path)
            status = 0
        finally:
            self.running.pop(rid, None)
        if gone.is_set():
            self.unanswered -= 1  # a cancelled request is not answered
            return
        if not status:
            # What uvicorn answers for an app that failed or never answered.
            status, chunks = 500, [_FAILED]
            out_headers = [[b"content-type", b"text/plain; charset=utf-8"],
                           [b"content-length", b"%d" % len(_FAILED)]]
        body = b"".join(chunks)
        if not any(name.lower() == b"content-length" for name, _ in out_headers):
            # A streamed answer (a keep-alive stream that ended with its body): uvicorn would have sent
            # it chunked, and so does the worker, as one chunk.
            out_headers.append(list(_CHUNKED))
        self._send([frames.RESPONSE, rid, status, out_headers, body])

    def _answer_at_once(self, frame: list[Any], gateway: Gateway) -> bool:
        """A bounded stream's whole body answered without a task, when it can be (False otherwise)."""
        _, rid, _, path, _, headers, client, body, _ = frame
        answer = gateway.answer_stream_at_once(path, headers, client, body)
        if answer is None:
            return False
        self._send([frames.RESPONSE, rid, 200, _STREAMED_OK, answer])
        return True

    async def _answer(self, frame: list[Any], gateway: Gateway) -> None:
        _, rid, _, path, _, headers, client, body, decoded = frame
        try:
            status, out_headers, answer = await gateway.answer_unary(
                path, [(name, value) for name, value in headers], client, body, decoded)
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - as in _serve: a last resort, uvicorn's answer
            log.exception("front request %s failed", path)
            status, out_headers, answer = 500, [(b"content-type", b"text/plain; charset=utf-8")], _FAILED
        finally:
            self.running.pop(rid, None)
        self._reply(rid, status, out_headers, answer)

    def _reply(self, rid: int, status: int, headers: list[tuple[bytes, bytes]],
               answer: bytes | dict[str, Any]) -> None:
        # A payload (a success) is encoded by the worker, which adds its length: JSON work off this process.
        if isinstance(answer, bytes):
            headers = [*headers, (b"content-length", b"%d" % len(answer))]
        self._send([frames.RESPONSE, rid, status, headers, answer])
