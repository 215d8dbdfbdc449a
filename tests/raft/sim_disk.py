"""A simulated member's disk: what a write-ahead log promises across a crash, and what it does not.

Writes land in an unsynced tail (the OS page cache) and become durable only when sync() is called,
which the simulated driver does when Ready.must_sync says so (or a snapshot is saved), as
app/server/node_core.py does with fdatasync. A crash keeps the durable part plus a random prefix of the
unsynced tail: a kill -9 keeps all of it, a power loss may drop any suffix, and a write never
survives without the writes before it. Restart rebuilds the Raft storage from what survived.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from etcdpy.raft import Entry, HardState, MemoryStorage, Snapshot


@dataclass(frozen=True)
class _Op:
    kind: str  # "entries" | "hard_state" | "snapshot" (a received one) | "compact" (our own)
    entries: tuple[Entry, ...] = ()
    hard_state: HardState | None = None
    snapshot: Snapshot | None = None


class SimDisk:
    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.entries: list[Entry] = []  # contiguous, all after the snapshot's index
        self.hard_state = HardState()
        self.unsynced: list[_Op] = []
        self.syncs = 0

    # -- writes (buffered) -------------------------------------------------------------------

    def write_entries(self, ents: list[Entry]) -> None:
        if ents:
            self.unsynced.append(_Op("entries", entries=tuple(ents)))

    def write_hard_state(self, hs: HardState) -> None:
        self.unsynced.append(_Op("hard_state", hard_state=HardState(hs.term, hs.vote, hs.commit)))

    def write_snapshot(self, snap: Snapshot) -> None:
        """A snapshot received from the leader: it replaces the whole log."""
        self.unsynced.append(_Op("snapshot", snapshot=snap))

    def write_compaction(self, snap: Snapshot) -> None:
        """Our own snapshot of the applied state: entries after it stay."""
        self.unsynced.append(_Op("compact", snapshot=snap))

    def sync(self) -> None:
        for op in self.unsynced:
            self._apply(op)
        self.unsynced = []
        self.syncs += 1

    def crash(self, rng: random.Random) -> int:
        """Lose a random suffix of the unsynced writes; return how many were lost."""
        keep = rng.randrange(len(self.unsynced) + 1)
        lost = len(self.unsynced) - keep
        for op in self.unsynced[:keep]:
            self._apply(op)
        self.unsynced = []
        return lost

    # -- what survives -----------------------------------------------------------------------

    def _apply(self, op: _Op) -> None:
        if op.kind == "entries":
            base = self.snapshot.metadata.index
            ents = [e for e in op.entries if e.index > base]
            if not ents:
                return
            first = ents[0].index
            last = self.entries[-1].index if self.entries else base
            if first > last + 1:
                raise AssertionError(f"disk: gap appending at {first} after {last}")
            del self.entries[first - base - 1 :]
            self.entries.extend(ents)
        elif op.kind == "hard_state":
            assert op.hard_state is not None
            self.hard_state = op.hard_state
        else:
            assert op.snapshot is not None
            idx = op.snapshot.metadata.index
            if idx <= self.snapshot.metadata.index:
                return
            self.snapshot = op.snapshot
            self.entries = [] if op.kind == "snapshot" else [e for e in self.entries if e.index > idx]

    def load(self, storage: MemoryStorage) -> None:
        """Fill an empty storage with the durable state (what a restart reads back)."""
        snap_index = self.snapshot.metadata.index
        if snap_index:
            storage.apply_snapshot(self.snapshot)
        if self.entries:
            storage.append(list(self.entries))
        hs = self.hard_state
        # The snapshot record is written (and may survive) before the hard state of the same Ready;
        # a snapshot only ever holds committed entries, so it proves the commit index reached it.
        storage.set_hard_state(HardState(hs.term, hs.vote, max(hs.commit, snap_index)))
