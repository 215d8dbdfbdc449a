"""One write transaction against MVCC: the unit that applies one log entry.

All writes of the transaction share one main revision (etcd: a txn creates exactly one revision), each
write taking the next sub revision. Reads inside the transaction see its earlier writes through an
overlay. `end()` commits everything in one RocksDB batch together with the applied index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rocksdict import WriteBatch

from etcdpy.storage import encoding
from etcdpy.storage.kv_range import evaluate_range
from etcdpy.storage.kv_types import Event, EventType, KeyValue, RangeRequest, RangeResult

if TYPE_CHECKING:
    from etcdpy.storage.mvcc import MVCCStore


class WriteTxn:
    def __init__(self, store: MVCCStore, index: int, grouped: bool = False) -> None:
        """`grouped`: write into the store's open write group (MVCCStore.group_batch); only for a
        transaction that reads nothing but its keys' current records."""
        self.store = store
        self.index = index
        self.begin_revision = store.current_revision
        self.sub = 0
        self.batch = store.group_batch() if grouped else WriteBatch(raw_mode=True)
        self.overlay: dict[bytes, KeyValue | None] = {}
        self.events: list[Event] = []
        self._h = store.handles

    @property
    def revision(self) -> int:
        """The revision as the transaction sees it: the new one once it has written anything."""
        return self.begin_revision + 1 if self.sub else self.begin_revision

    def get(self, key: bytes) -> KeyValue | None:
        if key in self.overlay:
            return self.overlay[key]
        return self.store.get(key)

    def range(self, req: RangeRequest) -> RangeResult:
        return evaluate_range(self.store, req, self.revision, self.overlay)

    def put(self, key: bytes, value: bytes, lease: int, prev: KeyValue | None) -> KeyValue:
        """Write a new version of `key`; `prev` is its current KeyValue (the caller already read it)."""
        main = self.begin_revision + 1
        sub = self.sub
        self.sub += 1
        if prev is None:
            kv = KeyValue(key, main, main, 1, value, lease)
        else:
            kv = KeyValue(key, prev.create_revision, main, prev.version + 1, value, lease)
        record = encoding.encode_record(kv)
        batch, h = self.batch, self._h
        batch.put(encoding.encode_revision(main, sub), record, h["kv"])
        batch.put(encoding.index_key(key, main, sub), encoding.encode_index_value(kv.create_revision,
                                                                               kv.version, False), h["index"])
        batch.put(key, record, h["latest"])
        if prev is not None and prev.lease and prev.lease != lease:
            batch.delete(_attachment(prev.lease, key), h["lease"])
        if lease and (prev is None or prev.lease != lease):
            batch.put(_attachment(lease, key), b"", h["lease"])
        self.overlay[key] = kv
        self.events.append(Event(EventType.PUT, kv, prev))
        return kv

    def delete(self, prev: KeyValue) -> None:
        """Write a tombstone for `prev.key` (which currently exists)."""
        main = self.begin_revision + 1
        sub = self.sub
        self.sub += 1
        key = prev.key
        tomb = KeyValue(key, 0, main, 0, b"", 0)
        batch, h = self.batch, self._h
        batch.put(encoding.encode_revision(main, sub), encoding.encode_record(tomb), h["kv"])
        batch.put(encoding.index_key(key, main, sub), encoding.encode_index_value(0, 0, True), h["index"])
        batch.delete(key, h["latest"])
        if prev.lease:
            batch.delete(_attachment(prev.lease, key), h["lease"])
        self.overlay[key] = None
        self.events.append(Event(EventType.DELETE, tomb, prev))

    def end(self) -> list[Event]:
        self.store.commit_batch(self.batch, self.index, self.revision, self.overlay)
        return self.events


def _attachment(lease: int, key: bytes) -> bytes:
    return b"k" + (lease & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big") + key
