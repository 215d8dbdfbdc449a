"""The write group: consecutive puts of one apply share one RocksDB write (MVCCStore.group_batch).

What it must keep: a put in the group sees the group's earlier writes to its key; any other batch
lands after the group; the group carries the applied index of its last entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpy.storage import txn as ops
from etcdpy.storage.kv_types import PutRequest
from etcdpy.storage.mvcc import META_APPLIED_INDEX, MVCCStore
from etcdpy.storage.write_txn import WriteTxn


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MVCCStore]:
    s = MVCCStore(str(tmp_path / "db"))
    yield s
    s.close()


def _grouped_put(store: MVCCStore, key: bytes, value: bytes) -> None:
    txn = WriteTxn(store, store.applied_index + 1, grouped=True)
    ops.apply_put(txn, PutRequest(key=key, value=value))
    txn.end()


def test_grouped_puts_share_one_write_and_see_each_other(store: MVCCStore) -> None:
    writes: list[float] = []
    store.on_commit = writes.append
    for value in (b"a", b"b", b"c"):
        _grouped_put(store, b"k", value)
    _grouped_put(store, b"other", b"x")
    assert writes == []  # nothing written yet
    kv = store.get(b"k")  # the group's own view
    assert kv is not None and (kv.value, kv.version, kv.create_revision, kv.mod_revision) == (b"c", 3, 2, 4)
    store.flush_group()
    assert len(writes) == 1
    assert store.applied_index == 4 and store.current_revision == 5
    assert int.from_bytes(store.meta.get(META_APPLIED_INDEX), "big") == 4
    kv = store.get(b"k")  # now from RocksDB
    assert kv is not None and (kv.value, kv.version) == (b"c", 3)
    assert [k.key for k in store.range(ops.RangeRequest(key=b"\0", range_end=b"\0")).kvs] == [b"k", b"other"]


def test_any_other_batch_lands_after_the_group(store: MVCCStore) -> None:
    writes: list[float] = []
    store.on_commit = writes.append
    _grouped_put(store, b"k", b"v")
    store.record_applied(store.applied_index + 1)  # an entry that changes nothing, say
    assert len(writes) == 2  # the group first, then the other batch
    assert int.from_bytes(store.meta.get(META_APPLIED_INDEX), "big") == 2
    assert store.get(b"k") is not None
