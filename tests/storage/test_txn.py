"""Txn validation and evaluation: etcd's rules, checked without a server."""

from __future__ import annotations

import pytest

from etcdpy.storage import txn as ops
from etcdpy.storage.errors import DuplicateKeyError, KeyNotFoundError, KeyNotProvidedError, TooManyOpsError
from etcdpy.storage.kv_types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RangeResult,
    TxnRequest,
)
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn


@pytest.fixture
def store(tmp_path):
    s = MVCCStore(str(tmp_path / "db"))
    yield s
    s.close()


def run(store: MVCCStore, req: TxnRequest):
    txn = WriteTxn(store, store.applied_index + 1)
    res = ops.apply_txn(txn, req, lambda lease: lease == 42)
    txn.end()
    return res


def cmp(target: CompareTarget, result: CompareResult, key: bytes, union: str, operand) -> Compare:
    return Compare(result=result, target=target, key=key, union=union, operand=operand)


def test_one_revision_for_all_writes_and_ops_see_earlier_ones(store: MVCCStore) -> None:
    res = run(store, TxnRequest(success=[
        RangeRequest(key=b"a"), PutRequest(key=b"a", value=b"1"), PutRequest(key=b"b", value=b"2"),
        RangeRequest(key=b"a", range_end=b"c")]))
    assert res.succeeded and res.revision == 2
    first, put, _, last = res.responses
    assert isinstance(first, RangeResult) and first.revision == 1 and first.kvs == []
    assert put.revision == 2
    assert isinstance(last, RangeResult) and [kv.value for kv in last.kvs] == [b"1", b"2"]
    assert store.current_revision == 2


def test_compares_pick_the_branch(store: MVCCStore) -> None:
    absent = cmp(CompareTarget.CREATE, CompareResult.EQUAL, b"k", "create_revision", 0)
    res = run(store, TxnRequest(compare=[absent], success=[PutRequest(key=b"k", value=b"x")],
                                failure=[RangeRequest(key=b"k")]))
    assert res.succeeded
    res = run(store, TxnRequest(compare=[absent], success=[PutRequest(key=b"k", value=b"y")],
                                failure=[RangeRequest(key=b"k")]))
    assert not res.succeeded


def test_value_compare_on_missing_key_always_fails(store: MVCCStore) -> None:
    for result in CompareResult:
        c = cmp(CompareTarget.VALUE, result, b"nope", "value", b"")
        assert not run(store, TxnRequest(compare=[c])).succeeded


def test_compare_over_a_range_must_hold_for_every_key(store: MVCCStore) -> None:
    run(store, TxnRequest(success=[PutRequest(key=b"r/a", value=b"1"), PutRequest(key=b"r/b", value=b"2")]))
    c = Compare(result=CompareResult.GREATER, target=CompareTarget.VALUE, key=b"r/", range_end=b"r0",
                union="value", operand=b"0")
    assert run(store, TxnRequest(compare=[c])).succeeded
    c.operand = b"1"
    assert not run(store, TxnRequest(compare=[c])).succeeded


def test_mismatched_oneof_compares_against_zero(store: MVCCStore) -> None:
    run(store, TxnRequest(success=[PutRequest(key=b"k", value=b"v")]))
    # target VERSION with create_revision set: etcd compares version against 0.
    c = cmp(CompareTarget.VERSION, CompareResult.GREATER, b"k", "create_revision", 100)
    assert run(store, TxnRequest(compare=[c])).succeeded


def test_nested_branches_are_chosen_before_any_write(store: MVCCStore) -> None:
    absent = cmp(CompareTarget.VERSION, CompareResult.EQUAL, b"n", "version", 0)
    nested = TxnRequest(compare=[absent], success=[PutRequest(key=b"then", value=b"1")],
                        failure=[PutRequest(key=b"else", value=b"1")])
    res = run(store, TxnRequest(success=[PutRequest(key=b"n", value=b"1"), nested]))
    assert res.responses[1].succeeded  # n was absent when the txn began
    assert store.get(b"then") is not None and store.get(b"else") is None


def test_failed_precheck_writes_nothing(store: MVCCStore) -> None:
    with pytest.raises(KeyNotFoundError):
        run(store, TxnRequest(success=[PutRequest(key=b"a", value=b"1"),
                                       PutRequest(key=b"missing", ignore_value=True)]))
    assert store.get(b"a") is None and store.current_revision == 1


def test_validation_rules() -> None:
    with pytest.raises(TooManyOpsError):
        ops.check_txn(TxnRequest(success=[RangeRequest(key=b"k")] * 129), 128)
    with pytest.raises(KeyNotProvidedError):
        ops.check_txn(TxnRequest(compare=[Compare()]), 128)
    with pytest.raises(KeyNotFoundError):
        ops.check_txn(TxnRequest(success=[None]), 128)
    with pytest.raises(DuplicateKeyError):
        ops.check_txn(TxnRequest(success=[PutRequest(key=b"a"), PutRequest(key=b"a")]), 128)
    with pytest.raises(DuplicateKeyError):
        ops.check_txn(TxnRequest(success=[DeleteRangeRequest(key=b"a", range_end=b"c"),
                                          PutRequest(key=b"b")]), 128)
    # then/else of one nested txn never both run: the same key in both is fine.
    nested = TxnRequest(success=[PutRequest(key=b"a")], failure=[PutRequest(key=b"a")])
    ops.check_txn(TxnRequest(success=[nested]), 128)
    ops.check_txn(TxnRequest(success=[RangeRequest(key=b"a"), PutRequest(key=b"a")]), 128)
