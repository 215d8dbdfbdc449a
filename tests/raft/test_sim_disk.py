"""The simulated disk keeps synced writes across a crash and may lose any suffix of the rest."""

from __future__ import annotations

import random

from etcdpy.raft import ConfState, Entry, HardState, MemoryStorage, Snapshot, SnapshotMetadata
from tests.raft.sim_disk import SimDisk


def ents(lo: int, hi: int, term: int) -> list[Entry]:
    return [Entry(term=term, index=i, data=f"{term}/{i}".encode()) for i in range(lo, hi + 1)]


def loaded(d: SimDisk) -> MemoryStorage:
    st = MemoryStorage()
    d.load(st)
    return st


def test_synced_writes_survive_and_unsynced_may_be_lost() -> None:
    outcomes = set()
    for seed in range(40):
        d = SimDisk()
        d.write_entries(ents(1, 3, 1))
        d.write_hard_state(HardState(1, 1, 3))
        d.sync()
        d.write_hard_state(HardState(2, 2, 3))  # a vote, not synced
        d.write_entries(ents(4, 5, 2))
        d.crash(random.Random(seed))
        st = loaded(d)
        assert st.last_index() >= 3 and st.hard_state.term >= 1
        # Never a later write without the earlier ones.
        assert not (st.last_index() == 5 and st.hard_state.term == 1)
        outcomes.add((st.hard_state.term, st.last_index()))
    assert outcomes == {(1, 3), (2, 3), (2, 5)}


def test_rewritten_suffix_and_snapshots() -> None:
    d = SimDisk()
    d.write_entries(ents(1, 5, 1))
    d.write_entries(ents(4, 6, 2))  # a new leader overwrote 4 and 5
    d.write_compaction(Snapshot(b"s3", SnapshotMetadata(ConfState([1]), 3, 1)))
    d.sync()
    st = loaded(d)
    assert (st.first_index(), st.last_index(), st.term(4), st.snap.data) == (4, 6, 2, b"s3")
    # A snapshot from the leader replaces the whole log; its commit index is implied by it.
    d.write_snapshot(Snapshot(b"s9", SnapshotMetadata(ConfState([1]), 9, 3)))
    d.sync()
    st = loaded(d)
    assert (st.first_index(), st.last_index(), st.hard_state.commit) == (10, 9, 9)
