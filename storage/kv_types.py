"""The KV request and result types shared by the gateway, the applier and MVCC.

Plain slotted classes: they are built for every request on the hot path, so they stay cheap, and
they mirror etcd's etcdserverpb messages field for field so the codec can map them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple


class KeyValue(NamedTuple):
    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int


class SortOrder(IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


@dataclass(slots=True)
class RangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@dataclass(slots=True)
class PutRequest:
    key: bytes = b""
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(slots=True)
class DeleteRangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    prev_kv: bool = False


@dataclass(slots=True)
class Compare:
    result: CompareResult = CompareResult.EQUAL
    target: CompareTarget = CompareTarget.VERSION
    key: bytes = b""
    range_end: bytes = b""
    # etcd's target_union is a oneof: `union` names the member that was set ("version",
    # "create_revision", "mod_revision", "value" or "lease"; "" when none) and `operand` holds it. A
    # compare whose member does not match its target compares against the zero value, as etcd does.
    union: str = ""
    operand: int | bytes = 0


@dataclass(slots=True)
class TxnRequest:
    compare: list[Compare] = field(default_factory=list)
    # A txn op object with none of the four requests in it is held as None (etcd rejects it).
    success: list[RequestOp] = field(default_factory=list)
    failure: list[RequestOp] = field(default_factory=list)


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest | None


@dataclass(slots=True)
class CompactionRequest:
    revision: int = 0
    physical: bool = False


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    more: bool
    count: int
    revision: int


@dataclass(slots=True)
class PutResult:
    prev_kv: KeyValue | None
    revision: int


@dataclass(slots=True)
class DeleteRangeResult:
    deleted: int
    prev_kvs: list[KeyValue]
    revision: int


@dataclass(slots=True)
class TxnResult:
    succeeded: bool
    responses: list[RangeResult | PutResult | DeleteRangeResult | TxnResult]
    revision: int


@dataclass(slots=True)
class CompactionResult:
    revision: int


class EventType(IntEnum):
    PUT = 0
    DELETE = 1


class Event(NamedTuple):
    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None
