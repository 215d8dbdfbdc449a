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
from etcdpy.app.server.watch_service import WatchService


async def watch_websocket(websocket: WebSocket, service: WatchService, encoder: Encoder) -> None:
    await websocket.accept()
    session = WatchSession(service, encoder)

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
