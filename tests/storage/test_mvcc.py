"""MVCC on RocksDB driven directly: revisions, versions, history, compaction, replay."""

from __future__ import annotations

import itertools
import os

import pytest

from etcdpy.storage import txn as ops
from etcdpy.storage.errors import CompactedError, FutureRevisionError
from etcdpy.storage.kv_types import (
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
)
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn


class Harness:
    """Applies requests the way the applier does: one WriteTxn per log index."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.store = MVCCStore(path)
        self.index = self.store.applied_index

    def put(self, key: bytes, value: bytes = b"v", lease: int = 0) -> int:
        self.index += 1
        txn = WriteTxn(self.store, self.index)
        ops.apply_put(txn, PutRequest(key=key, value=value, lease=lease))
        txn.end()
        return self.store.current_revision

    def delete(self, key: bytes, end: bytes = b"") -> int:
        self.index += 1
        txn = WriteTxn(self.store, self.index)
        res = ops.apply_delete(txn, DeleteRangeRequest(key=key, range_end=end))
        txn.end()
        return res.deleted

    def keys(self, **kw: object) -> list[bytes]:
        return [kv.key for kv in self.store.range(RangeRequest(**kw)).kvs]  # type: ignore[arg-type]

    def reopen(self) -> None:
        self.store.close()
        del self.store
        self.store = MVCCStore(self.path)


@pytest.fixture
def h(tmp_path) -> Harness:
    harness = Harness(str(tmp_path / "db"))
    yield harness
    harness.store.close()


def test_fresh_store_is_at_revision_one(h: Harness) -> None:
    assert h.store.current_revision == 1
    assert h.store.range(RangeRequest(key=b"a")).kvs == []


def test_versions_and_create_revision_follow_etcd(h: Harness) -> None:
    assert h.put(b"k", b"1") == 2
    assert h.put(b"k", b"2") == 3
    kv = h.store.get(b"k")
    assert kv is not None and (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (2, 3, 2, b"2")
    assert h.delete(b"k") == 1
    assert h.store.get(b"k") is None
    h.put(b"k", b"3")
    kv = h.store.get(b"k")
    assert kv is not None and (kv.create_revision, kv.version) == (5, 1)


def test_reads_at_old_revisions_see_history(h: Harness) -> None:
    h.put(b"a", b"a1")  # 2
    h.put(b"b", b"b1")  # 3
    h.put(b"a", b"a2")  # 4
    h.delete(b"b")  # 5
    h.put(b"c", b"c1")  # 6
    at = {rev: [(kv.key, kv.value) for kv in h.store.range(RangeRequest(key=b"a", range_end=b"\x00",
                                                                            revision=rev)).kvs]
          for rev in range(2, 7)}
    assert at[2] == [(b"a", b"a1")]
    assert at[3] == [(b"a", b"a1"), (b"b", b"b1")]
    assert at[4] == [(b"a", b"a2"), (b"b", b"b1")]
    assert at[5] == [(b"a", b"a2")]
    assert at[6] == [(b"a", b"a2"), (b"c", b"c1")]
    single = h.store.range(RangeRequest(key=b"b", revision=4)).kvs
    assert [kv.value for kv in single] == [b"b1"]
    with pytest.raises(FutureRevisionError):
        h.store.range(RangeRequest(key=b"a", revision=7))


def test_keys_with_zero_bytes_and_prefixes_stay_apart(h: Harness) -> None:
    for key in (b"a", b"a\x00", b"a\x00b", b"ab", b"b"):
        h.put(key)
    assert h.keys(key=b"a", range_end=b"b") == [b"a", b"a\x00", b"a\x00b", b"ab"]
    assert h.keys(key=b"a\x00", range_end=b"a\x01", revision=h.store.current_revision - 1) == [
        b"a\x00", b"a\x00b"]
    assert h.keys(key=b"a") == [b"a"]


def test_range_count_sort_limit_and_filters(h: Harness) -> None:
    h.put(b"p/a", b"3")
    h.put(b"p/b", b"1")
    h.put(b"p/c", b"2")
    h.put(b"p/b", b"9")
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", limit=2))
    assert [kv.key for kv in res.kvs] == [b"p/a", b"p/b"] and res.more and res.count == 3
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", sort_target=SortTarget.MOD))
    assert [kv.key for kv in res.kvs] == [b"p/a", b"p/c", b"p/b"]
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", sort_order=SortOrder.DESCEND,
                                     sort_target=SortTarget.VALUE))
    assert [kv.value for kv in res.kvs] == [b"9", b"3", b"2"]
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", min_mod_revision=4))
    assert [kv.key for kv in res.kvs] == [b"p/b", b"p/c"] and res.count == 3
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", count_only=True))
    assert res.kvs == [] and res.count == 3
    res = h.store.range(RangeRequest(key=b"p/", range_end=b"p0", keys_only=True))
    assert all(kv.value == b"" for kv in res.kvs)


def test_compaction_keeps_the_visible_revision_and_drops_the_rest(h: Harness) -> None:
    h.put(b"a", b"1")  # 2
    h.put(b"a", b"2")  # 3
    h.put(b"b", b"1")  # 4
    h.delete(b"b")  # 5
    h.put(b"c", b"1")  # 6
    h.index += 1
    h.store.schedule_compaction(5, h.index)
    with pytest.raises(CompactedError):
        h.store.range(RangeRequest(key=b"a", revision=4))
    while not h.store.compaction_step(max_keys=1):  # one key per step: exercises the cursor
        pass
    assert not h.store.compaction_pending
    at5 = h.store.range(RangeRequest(key=b"a", range_end=b"\x00", revision=5)).kvs
    assert [(kv.key, kv.value) for kv in at5] == [(b"a", b"2")]
    history = [kv.key for _, kv in h.store.history(0, 100)]
    assert history == [b"a", b"c"]  # a@3 kept (visible at 5), b's tombstone and a@2 gone
    with pytest.raises(CompactedError):
        h.index += 1
        h.store.schedule_compaction(5, h.index)


def test_compaction_resumes_after_restart(h: Harness) -> None:
    for i in range(10):
        h.put(b"k%d" % i, b"old")
        h.put(b"k%d" % i, b"new")
    h.index += 1
    h.store.schedule_compaction(h.store.current_revision, h.index)
    assert not h.store.compaction_step(max_keys=3)
    h.reopen()  # as after a crash mid-compaction
    assert h.store.compaction_pending
    while not h.store.compaction_step(max_keys=3):
        pass
    assert len(h.store.history(0, 100)) == 10
    assert h.store.compact_revision == 21


def test_applied_index_and_revision_survive_reopen(h: Harness) -> None:
    h.put(b"a")
    h.put(b"b")
    h.reopen()
    assert h.store.applied_index == h.index == 2
    assert h.store.current_revision == 3
    assert h.keys(key=b"a", range_end=b"c") == [b"a", b"b"]


def test_lease_attachments_follow_the_key(h: Harness) -> None:
    h.put(b"k", lease=7)
    assert h.store.lease.get(b"k" + (7).to_bytes(8, "big") + b"k") is not None
    h.put(b"k", lease=8)
    assert h.store.lease.get(b"k" + (7).to_bytes(8, "big") + b"k") is None
    h.delete(b"k")
    assert h.store.lease.get(b"k" + (8).to_bytes(8, "big") + b"k") is None


def test_size_checks_do_not_flush_memtables(h: Harness) -> None:
    # The quota check reads the size before every write. rocksdict flushes a family when a
    # column-family object is dropped, so a size check through temporary objects wrote an SST file
    # per put (a hundred-fold slowdown); the memtable must keep absorbing small writes.
    from etcdpy.storage.maintenance import size_in_use

    for i in range(50):
        h.put(b"k%d" % i)
        h.store.db_size()
        size_in_use(h.store)
    assert [f for f in os.listdir(h.path) if f.endswith(".sst")] == []


def test_size_estimate_never_lags_the_writes(h: Harness) -> None:
    # The measurement is kept for a while (it costs more than a small put), but the quota must see
    # every write at once: each put of a 10 kB value grows the answer by at least that much.
    value = os.urandom(10_000)
    sizes = [h.store.db_size()]
    for _ in range(5):
        h.put(b"big", value)
        sizes.append(h.store.db_size())
    assert all(later - earlier >= len(value) for earlier, later in itertools.pairwise(sizes))
