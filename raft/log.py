"""RaftLog: the node's view of the whole log, stable storage plus the unstable tail.

Owns the commit and applied cursors and the log-matching rules (find_conflict,
maybe_append) and the term lookups used by the leader's fast back-off.
"""

from __future__ import annotations

from etcdpy.raft.errors import ErrCompacted, ErrUnavailable
from etcdpy.raft.log_unstable import Unstable
from etcdpy.raft.storage import Storage, limit_size
from etcdpy.raft.types import Entry, Snapshot

NO_LIMIT = 1 << 62


class RaftLog:
    __slots__ = ("storage", "unstable", "committed", "applied", "max_next_ents_size")

    def __init__(self, storage: Storage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # Everything up to the snapshot is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (f"committed={self.committed}, applied={self.applied}, "
                f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)}")

    # -- indexes and terms ---------------------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        u = self.unstable
        if u.entries:
            return u.offset + len(u.entries) - 1
        if u.snapshot is not None:
            return u.snapshot.metadata.index
        return self.storage.last_index()

    def term(self, i: int) -> int:
        """Term of entry i; 0 if i is beyond the log; raises ErrCompacted if it was compacted."""
        u = self.unstable
        off = u.offset
        if i >= off:
            k = i - off
            if k < len(u.entries):
                return u.entries[k].term
            if not u.entries and u.snapshot is not None and i == u.snapshot.metadata.index:
                return u.snapshot.metadata.term
            return 0
        if u.snapshot is not None and u.snapshot.metadata.index == i:
            return u.snapshot.metadata.term
        dummy = self.first_index() - 1
        if i < dummy:
            raise ErrCompacted(f"index {i} compacted")
        try:
            return self.storage.term(i)
        except ErrUnavailable:
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def zero_term_on_compacted(self, i: int) -> int:
        try:
            return self.term(i)
        except ErrCompacted:
            return 0

    def match_term(self, i: int, t: int) -> bool:
        try:
            return self.term(i) == t
        except ErrCompacted:
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """§5.4.1: a candidate's log is at least as up to date as ours."""
        lt = self.last_term()
        return term > lt or (term == lt and lasti >= self.last_index())

    # -- appending ------------------------------------------------------------------------

    def maybe_append(self, index: int, log_term: int, committed: int, ents: list[Entry]) -> int | None:
        """Append ents after (index, log_term) if that entry matches; return the last new index.

        Returns None if our log has no entry matching (index, log_term) (the MsgApp is rejected).
        """
        if not self.match_term(index, log_term):
            return None
        lastnewi = index + len(ents)
        if ents:
            ci = self.find_conflict(ents)
            if ci:
                if ci <= self.committed:
                    raise AssertionError(f"entry {ci} conflict with committed entry {self.committed}")
                self.append(ents[ci - ents[0].index :])
        # Only what the leader proved matches (up to lastnewi) may be committed: our log may hold
        # a stale suffix beyond it.
        self.commit_to(min(committed, lastnewi))
        return lastnewi

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise AssertionError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: list[Entry]) -> int:
        """First index among ents that is new or conflicts with our log; 0 if all already present."""
        last = self.last_index()
        # Fast path for the common case of a pure append: nothing to compare.
        if ents[0].index > last:
            return ents[0].index
        for e in ents:
            if e.index > last:
                return e.index
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """Largest index <= index whose term is <= term (fast back-off over a whole term)."""
        if index > self.last_index():
            return index
        while index > 0:
            try:
                t = self.term(index)
            except ErrCompacted:
                break
            if t <= term:
                break
            index -= 1
        return index

    # -- commit and apply -----------------------------------------------------------------

    def commit_to(self, tocommit: int) -> None:
        if self.committed < tocommit:
            if self.last_index() < tocommit:
                raise AssertionError(
                    f"tocommit({tocommit}) is out of range [lastIndex({self.last_index()})]")
            self.committed = tocommit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        if max_index > self.committed and self.zero_term_on_compacted(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise AssertionError(f"applied({i}) is out of range [prevApplied({self.applied}), "
                                 f"committed({self.committed})]")
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    # -- reading --------------------------------------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return self.unstable.entries

    def has_next_ents(self) -> bool:
        off = max(self.applied + 1, self.first_index())
        return self.committed + 1 > off

    def next_ents(self) -> list[Entry]:
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        try:
            return self.entries(self.first_index(), NO_LIMIT)
        except ErrCompacted:
            return self.all_entries()

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi) limited to max_size bytes; raises ErrCompacted if lo is compacted."""
        self._check_out_of_bounds(lo, hi)
        if lo == hi:
            return []
        u = self.unstable
        ents: list[Entry] = []
        if lo < u.offset:
            stored = self.storage.entries(lo, min(hi, u.offset), max_size)
            # Storage returned fewer entries than asked because of the size limit: stop here.
            if len(stored) < min(hi, u.offset) - lo:
                return stored
            ents = stored
        if hi > u.offset:
            tail = u.slice(max(lo, u.offset), hi)
            ents = ents + tail if ents else tail
        return limit_size(ents, max_size)

    def _check_out_of_bounds(self, lo: int, hi: int) -> None:
        if lo > hi:
            raise AssertionError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise ErrCompacted(f"index {lo} compacted (first {fi})")
        length = self.last_index() + 1 - fi
        if hi > fi + length:
            raise AssertionError(f"slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]")

    def restore(self, s: Snapshot) -> None:
        self.committed = s.metadata.index
        self.unstable.restore(s)
