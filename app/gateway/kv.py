"""`/v3/kv/*`: etcd's KV RPCs (range, put, deleterange, txn, compaction) over the JSON gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from etcdpy.app.errors import REQUEST_TOO_LARGE, EtcdError, grpc_message_too_large
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.dispatch import GRPC_OVERHEAD, DecodedHandler, Handler, Proposal
from etcdpy.app.server.commands import Command
from etcdpy.app.server.etcd_server import EtcdServer

# Raft wraps a request with a header and a oneof tag before etcd checks its size against
# --max-request-bytes; this is a close bound on those bytes.
RAFT_REQUEST_OVERHEAD = 16


def _limits(server: EtcdServer, d: dict[str, Any], message: str, proposed: bool) -> None:
    size = codec.proto_size(d, message)
    grpc_limit = server.config.max_request_bytes + GRPC_OVERHEAD
    if size > grpc_limit:
        raise grpc_message_too_large(size, grpc_limit)
    if proposed and size + RAFT_REQUEST_OVERHEAD > server.config.max_request_bytes:
        raise EtcdError(*REQUEST_TOO_LARGE)


def _kv_rpc(
    message: str,
    build: Callable[[dict[str, Any]], Any],
    call: Callable[[EtcdServer, Any], Awaitable[Any]],
    encode: Callable[[Any, dict[str, str]], dict[str, Any]],
    proposed: bool,
) -> tuple[Handler, DecodedHandler]:
    """A KV RPC: decode, check etcd's size limits, serve, answer with the header at the result's revision.
    Also the same RPC for a body a front worker has decoded."""

    async def serve(server: EtcdServer, d: dict[str, Any]) -> dict[str, Any]:
        _limits(server, d, message, proposed)
        res = await call(server, build(d))
        return encode(res, server.header(res.revision))

    async def handler(server: EtcdServer, body: bytes) -> dict[str, Any]:
        return await serve(server, codec.decode_request(body, message))

    return handler, serve


kv_range, kv_range_decoded = _kv_rpc("RangeRequest", codec.range_request, EtcdServer.range, codec.range_json,
                                     proposed=False)
kv_put, kv_put_decoded = _kv_rpc("PutRequest", codec.put_request, EtcdServer.put, codec.put_json,
                                 proposed=True)
kv_delete_range, kv_delete_range_decoded = _kv_rpc("DeleteRangeRequest", codec.delete_request,
                                                   EtcdServer.delete_range, codec.delete_json, proposed=True)
kv_txn, kv_txn_decoded = _kv_rpc("TxnRequest", codec.txn_request, EtcdServer.txn, codec.txn_json,
                                 proposed=True)


def _proposal(message: str, build: Callable[[dict[str, Any]], Any],
              command: Callable[[EtcdServer, Any], Command],
              encode: Callable[[Any, dict[str, str]], dict[str, Any]]) -> Proposal:
    """A write served from a decoded body without a coroutine: the same limits and checks as `_kv_rpc`'s."""

    def prepare(server: EtcdServer, d: dict[str, Any]) -> Command:
        _limits(server, d, message, proposed=True)
        return command(server, build(d))

    return Proposal(prepare, encode)


async def kv_compaction(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "CompactionRequest")
    _limits(server, d, "CompactionRequest", proposed=True)
    await server.compact(codec.compaction_request(d))
    return {"header": server.header()}


RPCS: dict[str, Handler] = {
    "/v3/kv/range": kv_range,
    "/v3/kv/put": kv_put,
    "/v3/kv/deleterange": kv_delete_range,
    "/v3/kv/txn": kv_txn,
    "/v3/kv/compaction": kv_compaction,
}

# The RPCs a front worker may decode itself: the hot ones.
DECODED: dict[str, tuple[str, DecodedHandler]] = {
    "/v3/kv/range": ("RangeRequest", kv_range_decoded),
    "/v3/kv/put": ("PutRequest", kv_put_decoded),
    "/v3/kv/deleterange": ("DeleteRangeRequest", kv_delete_range_decoded),
    "/v3/kv/txn": ("TxnRequest", kv_txn_decoded),
}

# Of those, the writes answered without a task per request (Gateway.propose_decoded).
PROPOSALS: dict[str, Proposal] = {
    "/v3/kv/put": _proposal("PutRequest", codec.put_request, EtcdServer.put_command, codec.put_json),
    "/v3/kv/deleterange": _proposal("DeleteRangeRequest", codec.delete_request, EtcdServer.delete_command,
                                    codec.delete_json),
}
