"""Unary RPCs that may block for a long time (`/v3/lock/lock`, `/v3/election/campaign`), and the
server-streaming observe, served as raw ASGI so the call ends when the client goes away.

etcd cancels such a call's context when its client disconnects, and the lock and election services
then take their key out of the queue. The lean dispatcher's unary handlers never see the connection, so
these are routed as streams: the body is read and decoded as for any RPC, the call runs in a task, and an
`http.disconnect` cancels it (the handler's own cleanup runs on that cancellation). The answer is one
JSON object, or etcd's error object, exactly as for the other unary RPCs; `Grpc-Timeout` applies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from starlette.types import Receive, Scope, Send

from etcdpy.app.errors import INVALID_ARGUMENT, EtcdError, grpc_message_too_large, to_etcd_error
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.dispatch import (
    _JSON_OK,
    DEADLINE,
    GRPC_OVERHEAD,
    Handler,
    StreamHandler,
    grpc_timeout,
    read_body,
    respond,
    respond_error,
)
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.errors import StorageError


def body_limit(server: EtcdServer) -> int:
    """The dispatcher's limit: beyond twice the gRPC limit no JSON request can be valid."""
    return 2 * (server.config.max_request_bytes + GRPC_OVERHEAD) + 1024


async def read_request(server: EtcdServer, receive: Receive, send: Send) -> bytes | None:
    """The request body, or None after answering etcd's error for an oversized one."""
    limit = body_limit(server)
    body = await read_body(receive, limit)
    if body is None:
        grpc_limit = server.config.max_request_bytes + GRPC_OVERHEAD
        await respond_error(send, grpc_message_too_large(limit, grpc_limit))
    return body


async def until_disconnect(receive: Receive) -> None:
    """Return once the client has gone away (after the body, receive() waits for just that)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_until_disconnect(work: Awaitable[Any], receive: Receive) -> tuple[bool, Any]:
    """Run `work` until it finishes or the client leaves (then it is cancelled and awaited, so its
    cleanup has run). Returns (finished, result); the work's exception propagates."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(until_disconnect(receive))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
    if task.cancelled():
        return False, None
    return True, task.result()


def cancellable(handler: Handler) -> StreamHandler:
    """Serve a unary handler that may block, cancelling it when the client disconnects."""

    async def serve(server: EtcdServer, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_request(server, receive, send)
        if body is None:
            return
        try:
            timeout = grpc_timeout(scope)
            work = handler(server, body)
            if timeout is not None:
                work = _with_deadline(work, timeout)
            finished, payload = await run_until_disconnect(work, receive)
        except DecodeError as exc:
            await respond_error(send, EtcdError(str(exc), INVALID_ARGUMENT))
            return
        except (EtcdError, StorageError) as exc:
            await respond_error(send, to_etcd_error(exc))
            return
        if finished:
            await respond(send, 200, codec.dumps(payload), _JSON_OK)

    return serve


async def _with_deadline(work: Awaitable[Any], timeout: float) -> Any:
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise DEADLINE from None

