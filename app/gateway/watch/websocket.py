"""`/v3/watch` over WebSocket, as etcd's gateway serves it (gateway-api.md §6.6).

Each client text message is one WatchRequest object; each server text message is one `{"result":…}`
line (without the newline), the same JSON as the HTTP stream. Full duplex: create several watches,
cancel them and ask for progress on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.json_body import JsonSyntaxError
from etcdpy.app.gateway.watch.encode import Encoder
from etcdpy.app.gateway.watch.stream import WatchSession, decode_watch_request
from etcdpy.app.server.auth import AuthService
from etcdpy.app.server.watch_service import WatchService
from etcdpy.app.tls_scope import client_cert_cn

TOKEN_COOKIE = "token"


def websocket_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The token as etcd's WebSocket proxy passes it, and the subprotocol to answer with.

    Browsers cannot set headers on a WebSocket: etcd's proxy takes `Sec-WebSocket-Protocol:
    Bearer, <token>` (answering with the subprotocol `Bearer`) or a `token` cookie; other clients may
    send the `Authorization` header itself."""
    token = websocket.headers.get("authorization")
    subprotocol = None
    offered = websocket.headers.get("sec-websocket-protocol", "")
    if offered.startswith("Bearer"):
        subprotocol = "Bearer"
        _, sep, rest = offered.partition("Bearer,")
        if sep and rest.strip():
            token = "Bearer " + rest.strip()
    cookie = websocket.cookies.get(TOKEN_COOKIE)
    if cookie:
        token = "Bearer " + cookie
    return token, subprotocol


async def watch_websocket(websocket: WebSocket, service: WatchService, encoder: Encoder,
                          auth: AuthService | None = None) -> None:
    token, subprotocol = websocket_token(websocket)
    if auth is not None:
        await auth.await_token(token)
    await websocket.accept(subprotocol=subprotocol)
    session = WatchSession(service, encoder, auth, token, client_cert_cn(websocket.scope))

    async def write(data: bytes) -> None:
        await websocket.send_text(data.rstrip(b"\n").decode())

    async def read() -> None:
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    session.handle(decode_watch_request(text.encode()))
                except (JsonSyntaxError, DecodeError):
                    continue  # a bad request object is ignored; the watches keep streaming
        except (WebSocketDisconnect, RuntimeError):
            session.client_gone()

    reading = asyncio.get_running_loop().create_task(read())
    try:
        await session.pump(write)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        session.close()
    if session.ending:
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.close(code=1001, reason="server shutting down")
