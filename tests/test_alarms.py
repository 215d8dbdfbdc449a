"""Alarm state as the log decides it, the quota's cost estimates, and what each alarm refuses."""

from __future__ import annotations

from pathlib import Path

from etcdpy.app.server.alarms import (
    ACTIVATE,
    CORRUPT,
    DEACTIVATE,
    DEFAULT_QUOTA_BYTES,
    GET,
    NONE,
    NOSPACE,
    AlarmMember,
    AlarmRequest,
    AlarmStore,
    cost,
    quota_bytes,
    refusal,
)
from etcdpy.app.server.downgrade import WrongVersionFormat, allowed_target, cluster_minor
from etcdpy.storage.kv_types import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from etcdpy.storage.lessor import LeaseCheckpointRequest, LeaseGrantRequest, LeaseRevokeRequest
from etcdpy.storage.mvcc import MVCCStore


def test_alarms_persist_in_activation_order(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path / "db"))
    alarms = AlarmStore(store)
    assert alarms.apply(1, AlarmRequest(ACTIVATE, 5, CORRUPT)) == [AlarmMember(5, CORRUPT)]
    alarms.apply(2, AlarmRequest(ACTIVATE, 3, NOSPACE))
    alarms.apply(3, AlarmRequest(ACTIVATE, 3, NOSPACE))  # idempotent
    assert alarms.apply(4, AlarmRequest(GET, 0, NOSPACE)) == [AlarmMember(3, NOSPACE)]
    assert [str(a) for a in alarms.get()] == ["memberID:5 alarm:CORRUPT ", "memberID:3 alarm:NOSPACE "]
    assert store.applied_index == 4
    store.close()
    store = MVCCStore(str(tmp_path / "db"))
    alarms = AlarmStore(store)
    assert alarms.get() == [AlarmMember(5, CORRUPT), AlarmMember(3, NOSPACE)]
    assert alarms.apply(5, AlarmRequest(DEACTIVATE, 9, NOSPACE)) == []  # not active: nothing changed
    assert alarms.apply(6, AlarmRequest(DEACTIVATE, 5, CORRUPT)) == [AlarmMember(5, CORRUPT)]
    assert AlarmMember(6, NONE).to_json() == {"memberID": "6"}
    store.close()


def test_what_each_alarm_refuses(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path / "db"))
    alarms = AlarmStore(store)
    put = PutRequest(b"k", b"v")
    read_txn = TxnRequest(success=[RangeRequest(b"k")])
    write_txn = TxnRequest(failure=[put])
    everything = [put, DeleteRangeRequest(b"k"), read_txn, write_txn, CompactionRequest(2),
                  LeaseGrantRequest(1, 10), LeaseRevokeRequest(1), LeaseCheckpointRequest([])]
    assert [refusal(alarms, c) for c in everything] == [None] * 8
    alarms.apply(1, AlarmRequest(ACTIVATE, 1, NOSPACE))
    assert [refusal(alarms, c) for c in everything] == [
        "NOSPACE", None, None, "NOSPACE", None, "NOSPACE", None, None]
    alarms.apply(2, AlarmRequest(ACTIVATE, 1, CORRUPT))
    assert [refusal(alarms, c) for c in everything] == [
        "CORRUPT", "CORRUPT", "CORRUPT", "CORRUPT", "CORRUPT", "CORRUPT", "CORRUPT", None]
    store.close()


def test_quota_costs_and_limits_follow_etcd() -> None:
    assert cost(PutRequest(b"key", b"x" * 100)) == 256 + 3 + 100
    assert cost(TxnRequest(success=[PutRequest(b"a", b"1")], failure=[PutRequest(b"b", b"22")])) == 256 + 3
    assert cost(LeaseGrantRequest(1, 10)) == 64
    assert cost(DeleteRangeRequest(b"a")) == 0
    assert quota_bytes(0) == DEFAULT_QUOTA_BYTES
    assert quota_bytes(-1) == 0
    assert quota_bytes(100_000) == 100_000


def test_downgrade_versions() -> None:
    assert cluster_minor("3.3") == (3, 3)
    assert cluster_minor("3.3.7") == (3, 3)
    assert allowed_target("3.4.0") == (3, 3)
    for bad in ("", "x", "3", "v3.3"):
        try:
            cluster_minor(bad)
        except WrongVersionFormat:
            continue
        raise AssertionError(bad)
