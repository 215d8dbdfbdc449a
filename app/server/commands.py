"""Log entry payloads: the commands the gateway proposes and the applier executes.

A command is a msgpack array `[kind, request_id, ...fields]`. msgpack carries keys and values as raw
bytes, and the request id lets the member that proposed an entry find the caller waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from etcdpy.app.server.alarms import AlarmRequest
from etcdpy.app.server.cluster_version import ClusterVersionSetRequest
from etcdpy.app.server.downgrade import DowngradeInfoSetRequest
from etcdpy.app.server.membership import Member, MemberUpdateRequest
from etcdpy.storage.kv_types import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from etcdpy.storage.lessor import LeaseCheckpointRequest, LeaseGrantRequest, LeaseRevokeRequest

PUT, DELETE_RANGE, TXN, COMPACTION = 1, 2, 3, 4
LEASE_GRANT, LEASE_REVOKE, LEASE_CHECKPOINT = 10, 11, 12
CLUSTER_VERSION_SET = 50
MEMBER_UPDATE = 20
ALARM, DOWNGRADE_SET = 30, 31
AUTH, STAMPED = 40, 41


@dataclass
class AuthRequest:
    """An auth store change (or an authenticate) as a log command: the operation's name and its
    arguments, already in their applied form (passwords arrive hashed)."""

    op: str
    args: list[Any]


@dataclass
class Stamped:
    """A client command with the user and auth revision it was authorised under (etcd's request
    header): the applier re-checks permissions against the auth state at apply time."""

    username: str
    auth_revision: int
    inner: Any  # a Command


Command = (PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest
           | LeaseGrantRequest | LeaseRevokeRequest | LeaseCheckpointRequest | MemberUpdateRequest
           | AlarmRequest | DowngradeInfoSetRequest | AuthRequest | Stamped | ClusterVersionSetRequest)


def encode(request_id: int, cmd: Command) -> bytes:
    if isinstance(cmd, PutRequest):
        body: list[Any] = [PUT, request_id, *_put(cmd)]
    elif isinstance(cmd, DeleteRangeRequest):
        body = [DELETE_RANGE, request_id, cmd.key, cmd.range_end, cmd.prev_kv]
    elif isinstance(cmd, TxnRequest):
        body = [TXN, request_id, _txn(cmd)]
    elif isinstance(cmd, LeaseGrantRequest):
        body = [LEASE_GRANT, request_id, cmd.ID, cmd.TTL]
    elif isinstance(cmd, LeaseRevokeRequest):
        body = [LEASE_REVOKE, request_id, cmd.ID]
    elif isinstance(cmd, LeaseCheckpointRequest):
        body = [LEASE_CHECKPOINT, request_id, [list(c) for c in cmd.checkpoints]]
    elif isinstance(cmd, ClusterVersionSetRequest):
        body = [CLUSTER_VERSION_SET, request_id, cmd.version]
    elif isinstance(cmd, MemberUpdateRequest):
        body = [MEMBER_UPDATE, request_id, cmd.member.pack()]
    elif isinstance(cmd, AlarmRequest):
        body = [ALARM, request_id, cmd.action, cmd.member_id, cmd.alarm]
    elif isinstance(cmd, DowngradeInfoSetRequest):
        body = [DOWNGRADE_SET, request_id, cmd.enabled, cmd.version]
    elif isinstance(cmd, AuthRequest):
        body = [AUTH, request_id, cmd.op, cmd.args]
    elif isinstance(cmd, Stamped):
        body = [STAMPED, request_id, cmd.username, cmd.auth_revision, encode(0, cmd.inner)]
    else:
        body = [COMPACTION, request_id, cmd.revision, cmd.physical]
    return msgpack.packb(body, use_bin_type=True)


def request_id(data: bytes) -> int:
    """The request id of an encoded command, without decoding the rest."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    unpacker.read_array_header()
    unpacker.skip()
    rid: int = unpacker.unpack()
    return rid


def decode(data: bytes) -> tuple[int, Command]:
    kind, request_id, *rest = msgpack.unpackb(data, raw=False, use_list=True)
    if kind == PUT:
        return request_id, PutRequest(*rest)
    if kind == DELETE_RANGE:
        return request_id, DeleteRangeRequest(*rest)
    if kind == TXN:
        return request_id, _untxn(rest[0])
    if kind == COMPACTION:
        return request_id, CompactionRequest(*rest)
    if kind == LEASE_GRANT:
        return request_id, LeaseGrantRequest(*rest)
    if kind == LEASE_REVOKE:
        return request_id, LeaseRevokeRequest(*rest)
    if kind == LEASE_CHECKPOINT:
        return request_id, LeaseCheckpointRequest([(c[0], c[1]) for c in rest[0]])
    if kind == CLUSTER_VERSION_SET:
        return request_id, ClusterVersionSetRequest(rest[0])
    if kind == MEMBER_UPDATE:
        return request_id, MemberUpdateRequest(Member.unpack(rest[0]))
    if kind == ALARM:
        return request_id, AlarmRequest(*rest)
    if kind == DOWNGRADE_SET:
        return request_id, DowngradeInfoSetRequest(*rest)
    if kind == AUTH:
        return request_id, AuthRequest(rest[0], rest[1])
    if kind == STAMPED:
        return request_id, Stamped(rest[0], rest[1], decode(rest[2])[1])
    raise ValueError(f"unknown command kind {kind}")


def _put(p: PutRequest) -> list[Any]:
    return [p.key, p.value, p.lease, p.prev_kv, p.ignore_value, p.ignore_lease]


_RANGE_FIELDS = RangeRequest.__slots__  # type: ignore[attr-defined]


def _op(op: RequestOp) -> list[Any]:
    if isinstance(op, RangeRequest):
        return [1, [getattr(op, f) for f in _RANGE_FIELDS]]
    if isinstance(op, PutRequest):
        return [2, _put(op)]
    if isinstance(op, DeleteRangeRequest):
        return [3, [op.key, op.range_end, op.prev_kv]]
    if isinstance(op, TxnRequest):
        return [4, _txn(op)]
    return [0, None]


def _unop(data: list[Any]) -> RequestOp:
    kind, fields = data
    if kind == 1:
        return RangeRequest(*fields)
    if kind == 2:
        return PutRequest(*fields)
    if kind == 3:
        return DeleteRangeRequest(*fields)
    if kind == 4:
        return _untxn(fields)
    return None


def _txn(t: TxnRequest) -> list[Any]:
    compares = [[c.result, c.target, c.key, c.range_end, c.union, c.operand] for c in t.compare]
    return [compares, [_op(op) for op in t.success], [_op(op) for op in t.failure]]


def _untxn(data: list[Any]) -> TxnRequest:
    compares, success, failure = data
    return TxnRequest(
        compare=[Compare(*c) for c in compares],
        success=[_unop(op) for op in success],
        failure=[_unop(op) for op in failure],
    )
