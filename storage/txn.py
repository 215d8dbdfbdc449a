"""Request validation and transaction evaluation: etcd's rules as plain functions over a WriteTxn.

Validation (`check_*`) runs before a request is proposed, as etcd's gRPC layer does, so a bad request
never reaches the log. Evaluation (`apply_*`) runs in the applier: for a txn, the compares pick a branch,
the branch is checked against the state before any write (so an error writes nothing), then its ops run
in order, each seeing the writes of the ones before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from etcdpy.storage.errors import (
    CompactedError,
    DuplicateKeyError,
    FutureRevisionError,
    KeyNotFoundError,
    KeyNotProvidedError,
    LeaseNotFoundError,
    LeaseProvidedError,
    TooManyOpsError,
    ValueProvidedError,
)
from etcdpy.storage.kv_types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResult,
    KeyValue,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    RequestOp,
    TxnRequest,
    TxnResult,
)
from etcdpy.storage.write_txn import WriteTxn

# ----------------------------------------------------------------------------- validation


def check_range(req: RangeRequest) -> None:
    if not req.key:
        raise KeyNotProvidedError()


def check_put(req: PutRequest) -> None:
    if not req.key:
        raise KeyNotProvidedError()
    if req.ignore_value and req.value:
        raise ValueProvidedError()
    if req.ignore_lease and req.lease:
        raise LeaseProvidedError()


def check_delete(req: DeleteRangeRequest) -> None:
    if not req.key:
        raise KeyNotProvidedError()


def check_txn(req: TxnRequest, max_txn_ops: int) -> None:
    """etcd's checkTxnRequest plus checkIntervals on both branches."""
    _check_txn_shape(req, max_txn_ops)
    _check_intervals(req.success)
    _check_intervals(req.failure)


def _check_txn_shape(req: TxnRequest, max_txn_ops: int) -> None:
    widest = max(len(req.compare), len(req.success), len(req.failure))
    if widest > max_txn_ops:
        raise TooManyOpsError()
    for cmp in req.compare:
        if not cmp.key:
            raise KeyNotProvidedError()
    for op in (*req.success, *req.failure):
        _check_op(op, max_txn_ops - widest)


def _check_op(op: RequestOp, max_txn_ops: int) -> None:
    if isinstance(op, RangeRequest):
        check_range(op)
    elif isinstance(op, PutRequest):
        check_put(op)
    elif isinstance(op, DeleteRangeRequest):
        check_delete(op)
    elif isinstance(op, TxnRequest):
        _check_txn_shape(op, max_txn_ops)
    else:
        raise KeyNotFoundError()


class _Deletes:
    """Half-open key intervals deleted by a branch; an empty end is etcd's +infinity (affine interval)."""

    def __init__(self) -> None:
        self.spans: list[tuple[bytes, bytes]] = []

    def add(self, key: bytes, end: bytes) -> None:
        self.spans.append((key, end if end else key + b"\x00"))

    def covers(self, key: bytes) -> bool:
        return any(start <= key and (not end or key < end) for start, end in self.spans)


def _check_intervals(ops: Sequence[RequestOp]) -> tuple[set[bytes], _Deletes]:
    dels = _Deletes()
    for op in ops:
        if isinstance(op, DeleteRangeRequest):
            dels.add(op.key, op.range_end)
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        puts_then, dels_then = _check_intervals(op.success)
        puts_else, dels_else = _check_intervals(op.failure)
        for key in puts_then:
            if key in puts or dels.covers(key):
                raise DuplicateKeyError()
            puts.add(key)
        for key in puts_else:
            # then and else never both run, so a key written by both branches is no conflict.
            if (key in puts and key not in puts_then) or dels.covers(key):
                raise DuplicateKeyError()
            puts.add(key)
        dels.spans.extend(dels_then.spans)
        dels.spans.extend(dels_else.spans)
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or dels.covers(op.key):
                raise DuplicateKeyError()
            puts.add(op.key)
    return puts, dels


def is_read_only(req: TxnRequest) -> bool:
    for op in (*req.success, *req.failure):
        if isinstance(op, (PutRequest, DeleteRangeRequest)):
            return False
        if isinstance(op, TxnRequest) and not is_read_only(op):
            return False
    return True


# ----------------------------------------------------------------------------- evaluation

LeaseLookup = Callable[[int], bool]


def apply_put(txn: WriteTxn, req: PutRequest) -> PutResult:
    prev = txn.get(req.key)
    if (req.ignore_value or req.ignore_lease) and prev is None:
        raise KeyNotFoundError()
    value = prev.value if req.ignore_value and prev is not None else req.value
    lease = prev.lease if req.ignore_lease and prev is not None else req.lease
    txn.put(req.key, value, lease, prev)
    return PutResult(prev if req.prev_kv else None, txn.revision)


def apply_delete(txn: WriteTxn, req: DeleteRangeRequest) -> DeleteRangeResult:
    victims = txn.range(RangeRequest(key=req.key, range_end=req.range_end)).kvs
    for kv in victims:
        txn.delete(kv)
    return DeleteRangeResult(len(victims), victims if req.prev_kv else [], txn.revision)


def apply_txn(txn: WriteTxn, req: TxnRequest, lease_exists: LeaseLookup) -> TxnResult:
    path: dict[int, bool] = {}
    _choose_path(txn, req, path)
    _precheck(txn, req, path, lease_exists)
    return _run(txn, req, path)


def _choose_path(txn: WriteTxn, req: TxnRequest, path: dict[int, bool]) -> None:
    """Pick every branch, nested ones included, from the state before the txn writes (compareToPath)."""
    succeeded = path[id(req)] = _compares_hold(txn, req.compare)
    for op in req.success if succeeded else req.failure:
        if isinstance(op, TxnRequest):
            _choose_path(txn, op, path)


def _run(txn: WriteTxn, req: TxnRequest, path: dict[int, bool]) -> TxnResult:
    succeeded = path[id(req)]
    responses: list[RangeResult | PutResult | DeleteRangeResult | TxnResult] = []
    for op in req.success if succeeded else req.failure:
        if isinstance(op, RangeRequest):
            responses.append(txn.range(op))
        elif isinstance(op, PutRequest):
            responses.append(apply_put(txn, op))
        elif isinstance(op, DeleteRangeRequest):
            responses.append(apply_delete(txn, op))
        elif isinstance(op, TxnRequest):
            responses.append(_run(txn, op, path))
    return TxnResult(succeeded, responses, txn.revision)


def _precheck(txn: WriteTxn, req: TxnRequest, path: dict[int, bool], lease_exists: LeaseLookup) -> None:
    """etcd checks the taken path against the pre-txn state so that a failing op leaves nothing written."""
    for op in req.success if path[id(req)] else req.failure:
        if isinstance(op, PutRequest):
            # etcd's checkRequestPut looks for the key before the lease (a plain put, the other way round).
            if (op.ignore_value or op.ignore_lease) and txn.get(op.key) is None:
                raise KeyNotFoundError()
            if op.lease and not lease_exists(op.lease):
                raise LeaseNotFoundError()
        elif isinstance(op, RangeRequest):
            if op.revision > txn.revision:
                raise FutureRevisionError()
            # etcd's checkRequestRange: any revision but 0 below the first one is compacted, negative
            # ones included (a store never compacted has first revision -1).
            if op.revision and op.revision < txn.store.first_revision:
                raise CompactedError()
        elif isinstance(op, TxnRequest):
            _precheck(txn, op, path, lease_exists)


def _compares_hold(txn: WriteTxn, compares: Sequence[Compare]) -> bool:
    return all(_compare_holds(txn, cmp) for cmp in compares)


def _compare_holds(txn: WriteTxn, cmp: Compare) -> bool:
    if cmp.range_end:
        kvs = txn.range(RangeRequest(key=cmp.key, range_end=cmp.range_end)).kvs
    else:
        kv = txn.get(cmp.key)
        kvs = [kv] if kv is not None else []
    if not kvs:
        # A missing key has no value to compare: VALUE compares on it always fail.
        if cmp.target == CompareTarget.VALUE:
            return False
        return _compare_kv(cmp, KeyValue(b"", 0, 0, 0, b"", 0))
    return all(_compare_kv(cmp, kv) for kv in kvs)


_UNION_OF_TARGET = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def _compare_kv(cmp: Compare, kv: KeyValue) -> bool:
    # etcd's compareKV: a target number outside the enum compares as equal, and a result number
    # outside it holds whatever the comparison gave (both are switches without a default).
    matches = cmp.union == _UNION_OF_TARGET.get(cmp.target)
    if cmp.target == CompareTarget.VALUE:
        left: int | bytes = kv.value
        right: int | bytes = cmp.operand if matches else b""
    elif cmp.target in _UNION_OF_TARGET:
        left = {
            CompareTarget.VERSION: kv.version,
            CompareTarget.CREATE: kv.create_revision,
            CompareTarget.MOD: kv.mod_revision,
            CompareTarget.LEASE: kv.lease,
        }[cmp.target]
        right = cmp.operand if matches else 0
    else:
        left = right = 0
    result = (left > right) - (left < right)  # type: ignore[operator]
    if cmp.result == CompareResult.EQUAL:
        return result == 0
    if cmp.result == CompareResult.NOT_EQUAL:
        return result != 0
    if cmp.result == CompareResult.GREATER:
        return result > 0
    if cmp.result == CompareResult.LESS:
        return result < 0
    return True
