"""Range evaluation as etcd's applier does it: fetch, count, filter, sort, limit.

Shared by plain reads and by reads inside a write transaction (which see its uncommitted writes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from etcdpy.storage.kv_types import KeyValue, RangeRequest, RangeResult, SortOrder, SortTarget

# b"\0" as range_end means "every key >= key" (etcd's mkGteRange).
GTE_RANGE_END = b"\x00"

_SORT_KEYS = {
    SortTarget.KEY: lambda kv: kv.key,
    SortTarget.VERSION: lambda kv: kv.version,
    SortTarget.CREATE: lambda kv: kv.create_revision,
    SortTarget.MOD: lambda kv: kv.mod_revision,
    SortTarget.VALUE: lambda kv: kv.value,
}


class KeySource(Protocol):
    """What a range reads from (MVCCStore): the keyspace now, or as it was at a revision."""

    def check_revision(self, rev: int, current: int) -> int: ...

    def iter_latest(self, start: bytes, end: bytes) -> Iterator[KeyValue]: ...

    def iter_at(self, start: bytes, end: bytes, rev: int) -> Iterator[KeyValue]: ...


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == GTE_RANGE_END:
        return key >= start
    return start <= key < end


def evaluate_range(
    store: KeySource, req: RangeRequest, current: int, overlay: dict[bytes, KeyValue | None] | None
) -> RangeResult:
    """Evaluate a range as etcd's applier does: fetch, count, filter, sort, then limit.

    `overlay` holds the uncommitted writes of the enclosing txn so later ops see earlier ones.
    """
    rev = store.check_revision(req.revision, current)
    if rev == current:
        kvs = list(store.iter_latest(req.key, req.range_end))
        if overlay:
            kvs = _merge_overlay(kvs, overlay, req.key, req.range_end)
    else:
        kvs = list(store.iter_at(req.key, req.range_end, rev))
    count = len(kvs)
    if req.count_only:
        return RangeResult([], False, count, current)
    if req.min_mod_revision:
        kvs = [kv for kv in kvs if kv.mod_revision >= req.min_mod_revision]
    if req.max_mod_revision:
        kvs = [kv for kv in kvs if kv.mod_revision <= req.max_mod_revision]
    if req.min_create_revision:
        kvs = [kv for kv in kvs if kv.create_revision >= req.min_create_revision]
    if req.max_create_revision:
        kvs = [kv for kv in kvs if kv.create_revision <= req.max_create_revision]
    order = req.sort_order
    if req.sort_target != SortTarget.KEY and order == SortOrder.NONE:
        # Results already come in key order; any other target sorts ascending by default.
        order = SortOrder.ASCEND
    if order == SortOrder.ASCEND and req.sort_target != SortTarget.KEY:
        kvs.sort(key=_SORT_KEYS[req.sort_target])
    elif order == SortOrder.DESCEND:
        kvs.sort(key=_SORT_KEYS[req.sort_target], reverse=True)
    more = False
    if 0 < req.limit < len(kvs):
        kvs = kvs[: req.limit]
        more = True
    if req.keys_only:
        kvs = [kv._replace(value=b"") for kv in kvs]
    return RangeResult(kvs, more, count, current)


def _merge_overlay(
    kvs: list[KeyValue], overlay: dict[bytes, KeyValue | None], start: bytes, end: bytes
) -> list[KeyValue]:
    merged = {kv.key: kv for kv in kvs}
    for key, kv in overlay.items():
        if in_range(key, start, end):
            if kv is None:
                merged.pop(key, None)
            else:
                merged[key] = kv
    return [merged[k] for k in sorted(merged)]
