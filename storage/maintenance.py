"""Maintenance over an MVCC store: content hashes and defragmentation.

`hash_kv(store, rev)` is etcd's HashKV: a CRC-32 over the keyspace's history up to `rev`, as it is
*logically* after compaction (for revisions at or below the compact revision only what compaction keeps,
the newest non-tombstone revision of each key, counts). Physical compaction runs in the background at its
own pace on each member, so hashing the logical view is what makes equal content give an equal hash on
every member. It is not bit-identical to etcd's (etcd hashes bbolt's key encoding with CRC-32C).

`hash_all(store)` is etcd's Hash: every family of the database except the per-member bookkeeping in
`meta` (applied index and compaction progress), like etcd ignoring its consistent index.

`defragment(store)` flushes memtables and compacts every family's whole key range, so space held by
deleted and compacted records is returned and the database size drops, as etcd's defrag does for bbolt.
"""

from __future__ import annotations

import zlib

from etcdpy.storage import encoding
from etcdpy.storage.errors import CompactedError, FutureRevisionError
from etcdpy.storage.kv_range import GTE_RANGE_END
from etcdpy.storage.mvcc import (
    FAMILIES,
    META_APPLIED_INDEX,
    META_COMPACT_CURSOR,
    META_COMPACT_FINISHED,
    META_COMPACT_SCHEDULED,
    MVCCStore,
)

# Per-member bookkeeping that legitimately differs between members with the same content.
_MEMBER_LOCAL_META = {META_APPLIED_INDEX, META_COMPACT_CURSOR, META_COMPACT_FINISHED, META_COMPACT_SCHEDULED}


def hash_kv(store: MVCCStore, rev: int = 0) -> tuple[int, int, int]:
    """(hash, compact revision, hashed revision) of the keyspace up to `rev` (0 = current).

    Raises etcd's errors for a revision in the future or below the compact revision.
    """
    current = store.current_revision
    if rev > current:
        raise FutureRevisionError()
    if rev <= 0:
        rev = current
    compact = store.compact_revision
    if rev < compact:
        raise CompactedError()
    crc = zlib.crc32(b"key")
    if compact:
        # What compaction keeps: each key's newest revision at or below the compact revision, unless
        # that revision deleted it.
        for kv in store.iter_at(b"\x00", GTE_RANGE_END, compact):
            crc = _add(crc, encoding.encode_revision(kv.mod_revision, 0), encoding.encode_record(kv))
    it = store.kv.iter()
    it.seek(encoding.encode_revision(compact + 1, 0))
    while it.valid():
        key = it.key()
        main, _ = encoding.decode_revision(key)
        if main > rev:
            break
        crc = _add(crc, key, it.value())
        it.next()
    return crc, compact, rev


def _add(crc: int, key: bytes, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(key, crc))


def hash_all(store: MVCCStore) -> int:
    """CRC-32 over every family's keys and values (member-local bookkeeping left out)."""
    crc = 0
    for name in FAMILIES:
        crc = zlib.crc32(name.encode(), crc)
        it = store.families[name].iter()
        it.seek_to_first()
        while it.valid():
            key = it.key()
            if not (name == "meta" and key in _MEMBER_LOCAL_META):
                crc = _add(crc, key, it.value())
            it.next()
    return crc


def defragment(store: MVCCStore) -> None:
    """Flush and fully compact every family (blocking: RocksDB does the work; run it off the loop)."""
    for family in store.families.values():
        family.flush()
        family.compact_range(None, None)
    store.forget_size()


def size_in_use(store: MVCCStore) -> int:
    """RocksDB's estimate of live data plus memtables: what a defragment would shrink the size to."""
    total = 0
    for family in store.families.values():
        for prop in ("rocksdb.estimate-live-data-size", "rocksdb.cur-size-all-mem-tables"):
            total += family.property_int_value(prop) or 0
    return min(total, store.db_size())
