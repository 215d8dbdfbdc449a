"""The cache of current records beside the `latest` family (MVCCStore.get): whatever is cached, evicted
or swapped in, a read of a key's current record agrees with what RocksDB holds."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpy.storage import db_snapshot, encoding, mvcc
from etcdpy.storage import txn as ops
from etcdpy.storage.kv_types import DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, TxnRequest
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MVCCStore]:
    s = MVCCStore(str(tmp_path / "db"))
    yield s
    s.close()


def put(store: MVCCStore, key: bytes, value: bytes, grouped: bool = False) -> None:
    txn = WriteTxn(store, store.applied_index + 1, grouped=grouped)
    ops.apply_put(txn, PutRequest(key=key, value=value))
    txn.end()


def delete(store: MVCCStore, key: bytes) -> None:
    store.flush_group()
    txn = WriteTxn(store, store.applied_index + 1)
    ops.apply_delete(txn, DeleteRangeRequest(key=key))
    txn.end()


def on_disk(store: MVCCStore, key: bytes) -> KeyValue | None:
    data = store.latest.get(key)
    return encoding.decode_record(data) if data is not None else None


def test_reads_agree_with_rocksdb_through_writes_deletes_and_evictions(
        store: MVCCStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mvcc, "LATEST_CACHE_KEYS", 4)  # evicted over and over
    rng = random.Random(7)
    keys = [b"k%d" % i for i in range(12)]
    expected: dict[bytes, tuple[bytes, int] | None] = dict.fromkeys(keys)
    for step in range(400):
        key = rng.choice(keys)
        if rng.random() < 0.2:
            delete(store, key)
            expected[key] = None
        else:
            value = b"v%d" % step
            put(store, key, value, grouped=rng.random() < 0.5)
            version = 1 if expected[key] is None else expected[key][1] + 1  # type: ignore[index]
            expected[key] = (value, version)
        if rng.random() < 0.3:
            store.flush_group()
        probe = rng.choice(keys)
        kv = store.get(probe)
        assert (None if kv is None else (kv.value, kv.version)) == expected[probe], f"step {step}"
    store.flush_group()
    for key in keys:
        assert store.get(key) == on_disk(store, key)
        one = store.range(RangeRequest(key=key)).kvs
        assert one == ([] if expected[key] is None else [on_disk(store, key)])
    assert len(store._cache) <= 4


def test_a_write_that_never_commits_leaves_the_cached_record(store: MVCCStore) -> None:
    put(store, b"k", b"old")
    assert store.get(b"k") is not None  # cached now
    txn = WriteTxn(store, store.applied_index + 1)  # an apply that fails midway never calls end()
    ops.apply_txn(txn, TxnRequest(success=[PutRequest(key=b"k", value=b"new")]), lambda lease: True)
    kv = store.get(b"k")
    assert kv is not None and kv.value == b"old" and kv == on_disk(store, b"k")


def test_a_database_swapped_in_is_not_read_through_the_old_cache(store: MVCCStore, tmp_path: Path) -> None:
    leader = MVCCStore(str(tmp_path / "leader"))
    put(leader, b"k", b"leader's")
    put(leader, b"only-leader", b"x")
    dump = str(tmp_path / "dump")
    db_snapshot.dump_to_file(leader.families, dump)
    leader.close()
    put(store, b"k", b"follower's")
    assert store.get(b"only-leader") is None  # both cached: one record, one absence
    kv = store.get(b"k")
    assert kv is not None and kv.value == b"follower's"
    store.replace_with(lambda p: db_snapshot.load(p, db_snapshot.read_chunks(dump)))
    kv = store.get(b"k")
    assert kv is not None and kv.value == b"leader's"
    assert store.get(b"only-leader") is not None


def test_large_records_are_read_from_rocksdb_and_evict_the_smaller_one(store: MVCCStore) -> None:
    put(store, b"k", b"small")
    assert store.get(b"k") is not None and b"k" in store._cache
    big = b"x" * (mvcc.CACHED_RECORD_BYTES + 1)
    put(store, b"k", big, grouped=True)
    store.flush_group()
    assert b"k" not in store._cache  # a cache of 16,384 such records could hold gigabytes
    kv = store.get(b"k")
    assert kv is not None and kv.value == big and kv.version == 2
    assert b"k" not in store._cache
