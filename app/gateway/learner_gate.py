"""What a learner member serves: as etcd 3.4, only Status and serializable Range.

etcd's v3 RPC interceptor refuses every other RPC on a learner, unary or stream, before it runs:
503 `etcdserver: rpc not supported for learner` (gRPC UNAVAILABLE). etcd's gateway decodes the JSON body
and gRPC checks the message size before the interceptor sees the call, so a malformed or oversized body
still gets its own error; `refuses` leaves those to the handler. A member that has not yet applied the
entry adding it is not refused (etcd checks `IsMemberExist` first), nor is a promoted one.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from etcdpy.app import errors
from etcdpy.app.errors import EtcdError
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.schema import RPCS
from etcdpy.app.server.etcd_server import EtcdServer

NOT_SUPPORTED_FOR_LEARNER = EtcdError(*errors.NOT_SUPPORTED_FOR_LEARNER)

_REQUEST_MESSAGE = {rpc.path: rpc.request for rpc in RPCS}
_ALWAYS_SERVED = {"/v3/maintenance/status"}


def _served(path: str, d: dict[str, Any]) -> bool:
    if path in _ALWAYS_SERVED:
        return True
    return path == "/v3/kv/range" and bool(d.get("serializable"))


def refuses(server: EtcdServer, path: str, body: bytes, grpc_limit: int) -> bool:
    """Whether this member, being a learner, must refuse the unary RPC at `path` with this body."""
    if not server.is_learner():
        return False
    message = _REQUEST_MESSAGE.get(path)
    if message is None:
        return True  # an RPC this table does not know: refused, as etcd refuses all but two
    try:
        d = codec.decode_request(body, message)
    except DecodeError:
        return False  # the handler answers with the decode error, as etcd's gateway does
    if codec.proto_size(d, message) > grpc_limit:
        return False  # gRPC refuses the oversized message before the interceptor runs
    return not _served(path, d)


def stream_error_json(err: EtcdError) -> bytes:
    """A stream RPC refused before its first message: grpc-gateway's stream error body."""
    return codec.stream_error_json(err.message, err.code, err.http_status, HTTPStatus(err.http_status).phrase)
