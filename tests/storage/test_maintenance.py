"""hashkv, hash and defragment over MVCC stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etcdpy.storage import db_snapshot
from etcdpy.storage.errors import CompactedError, FutureRevisionError
from etcdpy.storage.maintenance import defragment, hash_all, hash_kv, size_in_use
from tests.storage.test_mvcc import Harness


def _history(h: Harness) -> None:
    for i in range(30):
        h.put(b"k%d" % (i % 5), b"v%d" % i)
    h.delete(b"k4")


def _compact(h: Harness, rev: int, physically: bool) -> None:
    h.index += 1
    h.store.schedule_compaction(rev, h.index)
    if physically:
        while not h.store.compaction_step(max_keys=2):
            pass


def test_hashkv_equal_for_equal_content_whatever_the_physical_compaction(tmp_path: Path) -> None:
    a, b = Harness(str(tmp_path / "a")), Harness(str(tmp_path / "b"))
    try:
        _history(a)
        _history(b)
        assert hash_kv(a.store, 0) == hash_kv(b.store, 0)
        assert hash_kv(a.store, 10) == hash_kv(b.store, 10)
        assert hash_kv(a.store, 10)[0] != hash_kv(a.store, 11)[0]
        _compact(a, 20, physically=True)
        _compact(b, 20, physically=False)  # a slower member: history still on disk
        assert hash_kv(a.store, 0) == hash_kv(b.store, 0)
        value, compact, rev = hash_kv(a.store, 25)
        assert (compact, rev) == (20, 25)
        with pytest.raises(CompactedError):
            hash_kv(a.store, 19)
        with pytest.raises(FutureRevisionError):
            hash_kv(a.store, a.store.current_revision + 1)
        b.put(b"k0", b"different")
        a.put(b"k0", b"other")
        assert hash_kv(a.store, 0)[0] != hash_kv(b.store, 0)[0]
    finally:
        a.store.close()
        b.store.close()


def test_hash_ignores_member_local_bookkeeping(tmp_path: Path) -> None:
    a, b = Harness(str(tmp_path / "a")), Harness(str(tmp_path / "b"))
    try:
        _history(a)
        _history(b)
        b.store.record_applied(b.index + 7)  # same content, applied at another log index
        assert hash_all(a.store) == hash_all(b.store)
        a.put(b"x")
        assert hash_all(a.store) != hash_all(b.store)
    finally:
        a.store.close()
        b.store.close()


def test_defragment_returns_the_space_of_compacted_history(tmp_path: Path) -> None:
    h = Harness(str(tmp_path / "db"))
    try:
        value = os.urandom(20_000)
        for _ in range(30):
            h.put(b"big", value)
        for name in ("kv", "index", "latest", "meta"):
            h.store.families[name].flush()
        before = h.store.db_size()
        h.delete(b"big")
        _compact(h, h.store.current_revision, physically=True)
        defragment(h.store)
        after = h.store.db_size()
        assert after < before / 5
        assert size_in_use(h.store) <= after
        assert h.store.current_revision == 32  # defragment changes no content
    finally:
        h.store.close()


def test_dump_records_round_trip_and_damage_is_refused(tmp_path: Path) -> None:
    h = Harness(str(tmp_path / "db"))
    try:
        _history(h)
        path = str(tmp_path / "dump")
        size = db_snapshot.dump_to_file(h.store.families, path)
    finally:
        h.store.close()
    assert db_snapshot.stream_length(path) == size
    records = list(db_snapshot.iter_records(db_snapshot.read_chunks(path, 100)))
    assert len(records) > 30
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: size // 2])
    with pytest.raises(db_snapshot.SnapshotCorruptError):
        db_snapshot.stream_length(path)
    with pytest.raises(db_snapshot.SnapshotCorruptError):
        list(db_snapshot.iter_records([data[: size // 2]]))
    flipped = bytearray(data)
    flipped[size // 2] ^= 0x01
    with pytest.raises(db_snapshot.SnapshotCorruptError):
        list(db_snapshot.iter_records([bytes(flipped)]))
