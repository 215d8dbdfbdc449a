"""The Storage protocol the Raft core reads its stable log through, and MemoryStorage.

Raft only ever reads storage; the driver writes it (persisting Ready) so that the
core stays free of I/O. MemoryStorage is what tests, the simulator and the benchmark
use; the real server wraps its WAL behind the same protocol.
"""

from __future__ import annotations

from typing import Protocol

from etcdpy.raft.errors import ErrCompacted, ErrSnapOutOfDate, ErrUnavailable
from etcdpy.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata, entry_size


class Storage(Protocol):
    """Read access to the persisted log. Errors: ErrCompacted below first_index(), ErrUnavailable
    beyond last_index(), ErrSnapshotTemporarilyUnavailable from snapshot() while one is being built.

    snapshot() is what the leader ships to a follower that needs compacted entries. It should reflect
    recent applied state (etcd's server builds it on demand): a member added after the snapshot was
    taken is not in its ConfState and will refuse it until a newer snapshot exists.
    """

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi); at least one entry is returned even if it exceeds max_size."""
        ...

    def term(self, i: int) -> int:
        """Term of entry i, which must be in [first_index()-1, last_index()]."""
        ...

    def last_index(self) -> int: ...

    def first_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


def limit_size(ents: list[Entry], max_size: int) -> list[Entry]:
    """Longest prefix of ents within max_size bytes, but never empty if ents is not."""
    if len(ents) <= 1 or max_size >= (1 << 62):
        return ents
    size = 0
    for i, e in enumerate(ents):
        size += len(e.data) + 16
        if size > max_size and i > 0:
            return ents[:i]
    return ents


class MemoryStorage:
    """An in-memory Storage. ents[0] is a dummy entry holding the snapshot's index and term."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snap = Snapshot()
        self.ents: list[Entry] = [Entry()]

    # -- Storage protocol -------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        cs = self.snap.metadata.conf_state
        return (
            HardState(self.hard_state.term, self.hard_state.vote, self.hard_state.commit),
            ConfState(
                list(cs.voters), list(cs.learners), list(cs.voters_outgoing), list(cs.learners_next),
                cs.auto_leave,
            ),
        )

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self.ents[0].index
        if lo <= offset:
            raise ErrCompacted(f"index {lo} is compacted (first is {offset + 1})")
        if hi > self.last_index() + 1:
            raise ErrUnavailable(f"entries hi {hi} is out of bound lastindex {self.last_index()}")
        if len(self.ents) == 1:
            # Only the dummy entry: nothing to return.
            raise ErrUnavailable("no entries")
        return limit_size(self.ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        offset = self.ents[0].index
        if i < offset:
            raise ErrCompacted(f"index {i} is compacted")
        if i - offset >= len(self.ents):
            raise ErrUnavailable(f"index {i} is unavailable")
        return self.ents[i - offset].term

    def last_index(self) -> int:
        return self.ents[0].index + len(self.ents) - 1

    def first_index(self) -> int:
        return self.ents[0].index + 1

    def snapshot(self) -> Snapshot:
        return self.snap

    # -- Writes, done by the driver ------------------------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = HardState(hs.term, hs.vote, hs.commit)

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.metadata.index <= self.snap.metadata.index:
            raise ErrSnapOutOfDate("requested snapshot is older than the existing one")
        self.snap = snap
        self.ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, i: int, cs: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine at applied index i (the driver made `data`)."""
        if i <= self.snap.metadata.index:
            raise ErrSnapOutOfDate("requested index is older than the existing snapshot")
        offset = self.ents[0].index
        if i > self.last_index():
            raise ValueError(f"snapshot {i} is out of bound lastindex({self.last_index()})")
        conf = cs if cs is not None else self.snap.metadata.conf_state
        self.snap = Snapshot(data=data, metadata=SnapshotMetadata(conf, i, self.ents[i - offset].term))
        return self.snap

    def compact(self, compact_index: int) -> None:
        """Discard entries before compact_index; the driver must not compact past what it applied."""
        offset = self.ents[0].index
        if compact_index <= offset:
            raise ErrCompacted(f"index {compact_index} is already compacted")
        if compact_index > self.last_index():
            raise ValueError(f"compact {compact_index} is out of bound lastindex({self.last_index()})")
        i = compact_index - offset
        self.ents = [Entry(term=self.ents[i].term, index=self.ents[i].index)] + self.ents[i + 1 :]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, truncating any conflicting suffix (the log may be rewritten by a new leader)."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return  # all of them are already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self.ents[0].index
        n = len(self.ents)
        if offset == n:
            self.ents.extend(entries)
        elif offset < n:
            del self.ents[offset:]
            self.ents.extend(entries)
        else:
            raise ValueError(f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]")


__all__ = ["Storage", "MemoryStorage", "limit_size", "entry_size"]
