"""The MVCC keyspace on RocksDB: revisions, versions, history, compaction.

Column families (DESIGN §3):

| family   | key                              | value                                  |
| -------- | -------------------------------- | -------------------------------------- |
| `kv`     | revision (main, sub)             | KeyValue record (version 0 = tombstone) |
| `index`  | escaped user key + revision      | create revision, version, tombstone    |
| `latest` | user key                         | current KeyValue record                 |
| `meta`   | names                            | applied index, revisions, compaction   |
| `lease`  | lease records and attachments    | owned by the lessor                     |

The key index lives in RocksDB, not in Python objects, so memory stays flat as the keyspace grows and a
restart serves at once. Every apply is one write batch that also records the applied index, so replaying
a log entry after a crash is recognised and skipped. Batches are written unsynced: the log in front of
MVCC is the durable record and replays whatever RocksDB lost.
"""

from __future__ import annotations

import gc
import os
import struct
import time
from collections.abc import Callable, Iterator

from rocksdict import Options, Rdict, WriteBatch

from etcdpy.storage import encoding
from etcdpy.storage.errors import CompactedError, FutureRevisionError
from etcdpy.storage.kv_range import GTE_RANGE_END, evaluate_range
from etcdpy.storage.kv_types import KeyValue, RangeRequest, RangeResult

_U64 = struct.Struct(">Q")

META_APPLIED_INDEX = b"applied_index"
META_CURRENT_REV = b"current_rev"
META_COMPACT_REV = b"compact_rev"
META_COMPACT_SCHEDULED = b"compact_scheduled"
META_COMPACT_FINISHED = b"compact_finished"
META_COMPACT_CURSOR = b"compact_cursor"

FAMILIES = ("kv", "index", "latest", "meta", "lease", "auth")
MAX_ROCKSDB_WAL_BYTES = 64 * 1024 * 1024
SIZE_CACHE_S = 0.1



class DatabaseLockedError(Exception):
    """Another process holds the database's lock (another member serving the same data dir)."""


class DatabaseOpenError(Exception):
    """RocksDB refused to open the database (a corrupt CURRENT or MANIFEST, say); the message says why."""


def _open_rdict(path: str, opts: Options, families: dict[str, Options]) -> Rdict:
    """Open RocksDB, turning its untyped failures into the two an operator must tell apart."""
    try:
        return Rdict(path, opts, column_families=families)
    except Exception as exc:  # rocksdict raises a bare Exception carrying RocksDB's status text
        text = str(exc)
        # RocksDB's own words: `IO error: While lock file: …/LOCK: Resource temporarily unavailable`
        # from another process, `lock hold by current process` from this one.
        if text.startswith("IO error") and ("lock file" in text or "lock hold" in text):
            raise DatabaseLockedError(text) from None
        raise DatabaseOpenError(text) from None


def _u64(value: int) -> bytes:
    return _U64.pack(value)


def _read_u64(data: bytes | None) -> int:
    return _U64.unpack(data)[0] if data else 0


# Current records of recently used keys, kept beside `latest`. Every member applies every put, and a
# put reads its key's current record before writing: a RocksDB skip-list seek, cold in cache when six
# server processes share two cores (perf, 3-member put @256: the seek fell from 5.5 to 3.7 % of all
# CPU), and the record's decoding. Bounded in keys, emptied when full, and holding only small records,
# so memory stays flat in key count and under ~20 MB whatever the values.
LATEST_CACHE_KEYS = 16384
CACHED_RECORD_BYTES = 1024  # key and value; a larger record is read from RocksDB every time
_MISSING = object()


class MVCCStore:
    """Owns the RocksDB database and the revision counters derived from it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._size_cache: tuple[float, int] | None = None  # (when measured, size)
        self._written_since_size = 0  # bytes of the batches applied since
        # Told how long each write batch took (the backend commit metric); None costs nothing.
        self.on_commit: Callable[[float], None] | None = None
        # An open write group (see `group_batch`): its batch, and the latest records it holds.
        self._group: WriteBatch | None = None
        self._group_latest: dict[bytes, KeyValue | None] = {}
        self._cache: dict[bytes, KeyValue | None] = {}  # see LATEST_CACHE_KEYS; None: no such key
        self._open()

    def _open(self) -> None:
        if not os.path.exists(self.path) and os.path.exists(self.path + ".old"):
            # A snapshot install (storage/db_snapshot.swap_in) was cut between its two renames: the
            # old database is whole and the WAL has not recorded the new one yet, so it goes back.
            os.rename(self.path + ".old", self.path)
        os.makedirs(self.path, exist_ok=True)
        self._size_cache = None
        self._cache = {}  # a database swapped in (a snapshot) holds other records
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        # RocksDB replays its own log of unflushed writes on open; bounding it bounds restart time
        # (a 1M-key load otherwise left ~400 MB to replay, ~2.5 s).
        opts.set_max_total_wal_size(MAX_ROCKSDB_WAL_BYTES)
        # Every put overwrites its key's record in `latest`; updated in place, the memtable keeps one
        # entry per key instead of one per write, and the skip list every put searches (for its key's
        # current version) and inserts into stays small (put @64: member CPU ~62.6 -> ~59.9 us a
        # put). RocksDB then cannot give an iterator a point-in-time view against concurrent writes;
        # there are none: every read and write of the store runs on the event loop's thread, and no
        # iteration yields in between (db_snapshot.dump_to_file says the same of its dump).
        opts.set_allow_concurrent_memtable_write(False)  # required by in-place updates; one writer
        families = {name: Options(raw_mode=True) for name in FAMILIES}
        families["latest"].set_inplace_update_support(True)
        self.db = _open_rdict(self.path, opts, families)
        # One object per family for the life of the database: rocksdict flushes a family's memtable
        # when a column-family object is dropped, so a temporary one (say, per quota check) would
        # write an SST file per request.
        self.families = {name: self.db.get_column_family(name) for name in FAMILIES}
        self.kv = self.families["kv"]
        self.index = self.families["index"]
        self.latest = self.families["latest"]
        self.meta = self.families["meta"]
        self.lease = self.families["lease"]
        self.auth = self.families["auth"]
        self.handles = {name: self.db.get_column_family_handle(name) for name in FAMILIES}
        self.applied_index = _read_u64(self.meta.get(META_APPLIED_INDEX))
        # etcd's first revision is 1: a fresh store answers reads with header revision 1.
        self.current_revision = max(1, _read_u64(self.meta.get(META_CURRENT_REV)))
        self.compact_revision = _read_u64(self.meta.get(META_COMPACT_REV))
        # etcd's compactMainRev: -1 until the first compaction, which may be at revision 0.
        self.first_revision = self.compact_revision if self.meta.get(META_COMPACT_REV) is not None else -1

    def replace_with(self, build: Callable[[str], None]) -> None:
        """Swap in a whole new database (a snapshot from the leader): close, let `build` write the new
        one at this path, reopen. The object stays the same, so everything holding it keeps working."""
        self.close()
        build(self.path)
        self._open()

    def close(self) -> None:
        self.flush_group()
        # Flush memtables so the next open has nothing to replay (a clean restart serves at once).
        for family in self.families.values():
            family.flush()
        self.db.close()
        # RocksDB's lock is released only when the last Python reference to the database (column
        # families and handles included) is gone, so drop them all: the path can then be reopened.
        for name in ("kv", "index", "latest", "meta", "lease", "auth", "families", "handles", "db"):
            self.__dict__.pop(name, None)
        # A reference cycle (an exception's traceback holding a frame with an iterator) keeps the
        # database, and its lock, until the collector runs; collect now so the reopen in `replace_with`
        # (a snapshot install) cannot fail on our own lock. Closing is rare; the pause is affordable.
        gc.collect()

    # ---------------------------------------------------------------- reads

    def get(self, key: bytes) -> KeyValue | None:
        if self._group_latest and key in self._group_latest:
            return self._group_latest[key]
        kv = self._cache.get(key, _MISSING)
        if kv is not _MISSING:
            return kv  # type: ignore[return-value]
        data = self.latest.get(key)
        kv = encoding.decode_record(data) if data is not None else None
        self._remember({key: kv})
        return kv

    def _remember(self, records: dict[bytes, KeyValue | None]) -> None:
        cache = self._cache
        if len(cache) >= LATEST_CACHE_KEYS:
            cache.clear()
        for key, kv in records.items():
            if kv is not None and len(key) + len(kv.value) > CACHED_RECORD_BYTES:
                cache.pop(key, None)  # an older, smaller record of the key must not stay
            else:
                cache[key] = kv

    def check_revision(self, rev: int, current: int) -> int:
        """Resolve a requested read revision (0 = current) or raise etcd's revision errors."""
        if rev > current:
            raise FutureRevisionError()
        if rev <= 0:
            return current
        if rev < self.compact_revision:
            raise CompactedError()
        return rev

    def range(self, req: RangeRequest) -> RangeResult:
        return evaluate_range(self, req, self.current_revision, None)

    def iter_latest(self, start: bytes, end: bytes) -> Iterator[KeyValue]:
        """Current KeyValues with start <= key < end (end b"" = just start, b"\\0" = to the end)."""
        if not end:
            kv = self.get(start)
            if kv is not None:
                yield kv
            return
        if end != GTE_RANGE_END and end <= start:
            return
        it = self.latest.iter()
        it.seek(start)
        bounded = end != GTE_RANGE_END
        while it.valid():
            key = it.key()
            if bounded and key >= end:
                break
            yield encoding.decode_record(it.value())
            it.next()

    def iter_at(self, start: bytes, end: bytes, rev: int) -> Iterator[KeyValue]:
        """KeyValues as they were at revision `rev`, in key order, from the on-disk key index."""
        if end and end != GTE_RANGE_END and end <= start:
            return
        it = self.index.iter()
        it.seek(encoding.index_bound(start))
        stop = None if end == GTE_RANGE_END else encoding.index_bound(end if end else start + b"\x00")
        best: tuple[bytes, int, int, bool] | None = None  # (key, main, sub, tombstone) visible at rev
        current_key: bytes | None = None
        while it.valid():
            ikey = it.key()
            if stop is not None and ikey >= stop:
                break
            key, off = encoding.unescape_key(ikey)
            if key != current_key:
                if best is not None and not best[3]:
                    yield self._record_at(best[1], best[2])
                best = None
                current_key = key
            main, sub = encoding.decode_revision(ikey[off:])
            if main <= rev:
                _, _, tomb = encoding.decode_index_value(it.value())
                best = (key, main, sub, tomb)
            it.next()
        if best is not None and not best[3]:
            yield self._record_at(best[1], best[2])

    def _record_at(self, main: int, sub: int) -> KeyValue:
        data = self.kv[encoding.encode_revision(main, sub)]
        assert data is not None, "index entry without its revision record"
        return encoding.decode_record(data)

    def history(self, start_rev: int, limit: int) -> list[tuple[tuple[int, int], KeyValue]]:
        """Up to `limit` records from revision `start_rev` on, in revision order (watch catch-up)."""
        out: list[tuple[tuple[int, int], KeyValue]] = []
        it = self.kv.iter()
        it.seek(encoding.encode_revision(start_rev, 0))
        while it.valid() and len(out) < limit:
            out.append((encoding.decode_revision(it.key()), encoding.decode_record(it.value())))
            it.next()
        return out

    # ---------------------------------------------------------------- writes

    def group_batch(self) -> WriteBatch:
        """The batch of the open write group, opening one if needed.

        Consecutive plain puts of one apply share one RocksDB write instead of one each (a write costs
        about what the rest of a small put's apply does). Only `get` sees what a group holds, so a
        group may only serve transactions that read nothing else (a put reads its key's current
        version); `flush_group` must run before anything else reads the store, and runs before any
        other batch is committed. A crash before the flush loses the group and the applied index it
        carries together: the entries are replayed from the Raft log.
        """
        if self._group is None:
            self._group = WriteBatch(raw_mode=True)
        return self._group

    def flush_group(self) -> None:
        """Write the open group, if any, with the applied index and revision of its last entry."""
        batch = self._group
        if batch is None:
            return
        self._group = None
        self._group_latest.clear()
        meta = self.handles["meta"]
        batch.put(META_APPLIED_INDEX, _u64(self.applied_index), meta)
        batch.put(META_CURRENT_REV, _u64(self.current_revision), meta)
        self._write(batch)

    def commit_batch(self, batch: WriteBatch, index: int, revision: int,
                     latest: dict[bytes, KeyValue | None] | None = None) -> None:
        """Commit one entry's writes with its applied index. The open group's batch is only recorded
        (with `latest`, the records it wrote, for `get`); any other batch first flushes the group."""
        if batch is self._group:
            if latest:
                self._group_latest.update(latest)
                self._remember(latest)  # before the group lands: nothing reads the store until then
        else:
            self.flush_group()
            meta = self.handles["meta"]
            batch.put(META_APPLIED_INDEX, _u64(index), meta)
            if revision != self.current_revision:
                batch.put(META_CURRENT_REV, _u64(revision), meta)
            self._write(batch)
            if latest:
                self._remember(latest)
        self.applied_index = index
        self.current_revision = revision

    def _write(self, batch: WriteBatch) -> None:
        self._written_since_size += batch.size_in_bytes()
        if self.on_commit is None:
            self.db.write(batch)
        else:
            start = time.perf_counter()
            self.db.write(batch)
            self.on_commit(time.perf_counter() - start)

    def get_meta(self, name: bytes) -> bytes | None:
        data: bytes | None = self.meta.get(name)
        return data

    def commit_meta(self, index: int, updates: dict[bytes, bytes]) -> None:
        """Write names of the `meta` family (membership, cluster id) atomically with the applied index."""
        batch = WriteBatch(raw_mode=True)
        for name, value in updates.items():
            batch.put(name, value, self.handles["meta"])
        self.commit_batch(batch, index, self.current_revision)

    def record_applied(self, index: int) -> None:
        """Mark an entry that changes no MVCC state (a read-only txn, a no-op) as applied."""
        self.commit_batch(WriteBatch(raw_mode=True), index, self.current_revision)

    # ------------------------------------------------------------ compaction

    def schedule_compaction(self, rev: int, index: int) -> None:
        """Logically compact at `rev`: reads below it fail from now on; physical deletion follows."""
        if rev <= self.first_revision:
            raise CompactedError()
        if rev > self.current_revision:
            raise FutureRevisionError()
        batch = WriteBatch(raw_mode=True)
        meta = self.handles["meta"]
        batch.put(META_COMPACT_REV, _u64(rev), meta)
        batch.put(META_COMPACT_SCHEDULED, _u64(rev), meta)
        batch.put(META_COMPACT_CURSOR, b"", meta)
        self.commit_batch(batch, index, self.current_revision)
        self.compact_revision = self.first_revision = rev

    @property
    def compaction_pending(self) -> bool:
        scheduled = _read_u64(self.meta.get(META_COMPACT_SCHEDULED))
        return scheduled > _read_u64(self.meta.get(META_COMPACT_FINISHED))

    def compaction_step(self, max_keys: int = 1000) -> bool:
        """Delete superseded revisions of up to `max_keys` user keys; True once compaction is complete.

        For every key, the newest revision at or below the compaction point is kept unless it is a
        tombstone; everything older goes. The cursor is saved with each batch so a crash resumes here.
        """
        self.flush_group()
        target = _read_u64(self.meta.get(META_COMPACT_SCHEDULED))
        if target <= _read_u64(self.meta.get(META_COMPACT_FINISHED)):
            return True
        cursor = self.meta.get(META_COMPACT_CURSOR) or b""
        it = self.index.iter()
        it.seek(cursor)
        batch = WriteBatch(raw_mode=True)
        kv_cf, index_cf, meta = self.handles["kv"], self.handles["index"], self.handles["meta"]
        keys_done = 0
        # (index key, revision bytes, tombstone) of the current key's revisions at or below the target
        group: list[tuple[bytes, bytes, bool]] = []
        current_key: bytes | None = None

        def flush_group() -> None:
            if not group:
                return
            keep_last = not group[-1][2]
            doomed = group[:-1] if keep_last else group
            for ikey, rev_bytes, _ in doomed:
                batch.delete(ikey, index_cf)
                batch.delete(rev_bytes, kv_cf)
            group.clear()

        while it.valid():
            ikey = it.key()
            key, off = encoding.unescape_key(ikey)
            if key != current_key:
                flush_group()
                if keys_done >= max_keys:
                    batch.put(META_COMPACT_CURSOR, ikey, meta)
                    self.db.write(batch)
                    return False
                current_key = key
                keys_done += 1
            rev_bytes = ikey[off:]
            main, _ = encoding.decode_revision(rev_bytes)
            if main <= target:
                group.append((ikey, rev_bytes, encoding.decode_index_value(it.value())[2]))
            it.next()
        flush_group()
        batch.put(META_COMPACT_FINISHED, _u64(target), meta)
        batch.put(META_COMPACT_CURSOR, b"", meta)
        self.db.write(batch)
        return True

    # ------------------------------------------------------------ leases

    def lease_exists(self, lease_id: int) -> bool:
        return self.lease.get(b"l" + _u64(lease_id & 0xFFFFFFFFFFFFFFFF)) is not None

    # ------------------------------------------------------------ size

    def db_size(self) -> int:
        """The database's size on disk and in memtables, as the quota sees it.

        Every write asks (etcd's quota check), and reading the properties of six families costs more
        than the rest of a small put; so a measurement is kept for at most SIZE_CACHE_S (RocksDB's own
        flushes and compactions change it in the background), plus the bytes of every batch applied
        since: an estimate that never lags the writes, so the quota is not overrun meanwhile.
        """
        now = time.monotonic()
        cached = self._size_cache
        if cached is not None and now - cached[0] < SIZE_CACHE_S:
            return cached[1] + self._written_since_size
        size = self._measure_size()
        self._size_cache = (now, size)
        self._written_since_size = 0
        return size

    def forget_size(self) -> None:
        """Measure afresh on the next `db_size` (after a defragment shrank the files)."""
        self._size_cache = None

    def _measure_size(self) -> int:
        total = 0
        for cf in self.families.values():
            for prop in ("rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"):
                value = cf.property_int_value(prop)
                total += value or 0
        return total
