"""Unstable: the tail of the log (and possibly a snapshot) not yet persisted by the driver.

Entries live here from the moment Raft accepts them until the driver reports, via
advance(), that they are on stable storage; only then are they read from Storage.
"""

from __future__ import annotations

from etcdpy.raft.types import Entry, Snapshot


class Unstable:
    __slots__ = ("snapshot", "entries", "offset")

    def __init__(self, offset: int) -> None:
        # An incoming snapshot not yet persisted; it precedes `entries`.
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        # Log index of entries[0] (or where it would be).
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == i:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, i: int, t: int) -> None:
        """Entries up to (i, t) were persisted; drop them unless they were replaced meanwhile."""
        gt = self.maybe_term(i)
        if gt is None:
            return
        # A matching term at i means the persisted entries are the ones still held here; if the
        # term differs, a newer leader overwrote them after the Ready was produced.
        if gt == t and i >= self.offset:
            del self.entries[: i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, s: Snapshot) -> None:
        self.offset = s.metadata.index + 1
        self.entries = []
        self.snapshot = s

    def truncate_and_append(self, ents: list[Entry]) -> None:
        after = ents[0].index
        n = self.offset + len(self.entries)
        if after == n:
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replaces everything we hold (and may rewind below what storage has; the driver's
            # append truncates storage accordingly).
            self.offset = after
            self.entries = list(ents)
        else:
            # Keep [offset, after) and replace the rest.
            self.entries = self.entries[: after - self.offset]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        if lo > hi or lo < self.offset or hi > self.offset + len(self.entries):
            raise IndexError(f"unstable.slice[{lo},{hi}) out of bound [{self.offset},"
                             f"{self.offset + len(self.entries)}]")
        return self.entries[lo - self.offset : hi - self.offset]
