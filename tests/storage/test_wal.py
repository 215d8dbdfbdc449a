"""The WAL: what was appended and synced comes back; torn tails are repaired; rewrites replace."""

import os

import pytest

from etcdpy.storage.wal import WAL, WalCorruptError, WalEntry, WalHardState


def entries(first: int, last: int, term: int = 1) -> list[WalEntry]:
    return [WalEntry(i, term, 0, f"e{i}".encode()) for i in range(first, last + 1)]


def reopen(path: str, **kw: int) -> tuple[WAL, object]:
    wal = WAL(path, **kw)
    return wal, wal.open()


def test_replays_entries_and_hard_state(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 5), WalHardState(2, 1, 5))
    wal.sync()
    wal.close()
    wal, state = reopen(str(tmp_path))
    assert [e.index for e in state.entries] == [1, 2, 3, 4, 5]
    assert state.entries[2].data == b"e3"
    assert state.hard_state == WalHardState(2, 1, 5)
    assert wal.last_index == 5


def test_torn_tail_is_truncated_and_appending_continues(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 3))
    wal.close()
    segment = os.path.join(tmp_path, sorted(os.listdir(tmp_path))[0])
    size = os.path.getsize(segment)
    with open(segment, "r+b") as f:
        f.truncate(size - 3)  # a crash in the middle of writing entry 3
    wal, state = reopen(str(tmp_path))
    assert [e.index for e in state.entries] == [1, 2]
    wal.append(entries(3, 4))
    wal.close()
    _, state = reopen(str(tmp_path))
    assert [e.data for e in state.entries] == [b"e1", b"e2", b"e3", b"e4"]


def test_flipped_byte_in_tail_is_treated_as_torn(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 3))
    wal.close()
    segment = os.path.join(tmp_path, sorted(os.listdir(tmp_path))[0])
    with open(segment, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    _, state = reopen(str(tmp_path))
    assert [e.index for e in state.entries] == [1, 2]


def test_corruption_before_the_last_segment_is_an_error(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), segment_bytes=64)
    for i in range(1, 11):
        wal.append(entries(i, i))
    wal.close()
    names = sorted(os.listdir(tmp_path))
    assert len(names) >= 2
    with open(os.path.join(tmp_path, names[0]), "r+b") as f:
        f.seek(10)
        f.write(b"\xff\xff")  # inside the first record's body
    with pytest.raises(WalCorruptError):
        reopen(str(tmp_path))


def test_rewritten_suffix_replaces_the_old_one(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 5, term=1))
    wal.append(entries(3, 4, term=2))  # a new leader overwrote 3..5
    wal.close()
    _, state = reopen(str(tmp_path))
    assert [(e.index, e.term) for e in state.entries] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def test_snapshot_marker_and_segment_release(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), segment_bytes=64)
    for i in range(1, 11):
        wal.append(entries(i, i))
    wal.save_snapshot(8, 1)
    before = len(os.listdir(tmp_path))
    assert wal.release_to(8) > 0
    assert len(os.listdir(tmp_path)) < before
    wal.close()
    wal, state = reopen(str(tmp_path))
    assert state.snapshot_index == 8
    assert [e.index for e in state.entries] == [9, 10]
    assert wal.last_index == 10


def test_released_segments_do_not_take_metadata_snapshot_or_vote_with_them(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), segment_bytes=64)
    wal.save_metadata(b"member-7")
    wal.append(entries(1, 1), WalHardState(3, 2, 1))
    for i in range(2, 11):
        wal.append(entries(i, i))
    wal.save_snapshot(8, 3, b"conf")
    wal.append(entries(11, 12))  # rolls: the new segment starts with what must survive
    assert wal.release_to(8) > 0
    wal.close()
    _, state = reopen(str(tmp_path))
    assert state.metadata == b"member-7"
    assert (state.snapshot_index, state.snapshot_data) == (8, b"conf")
    assert state.hard_state.vote == 2
    assert [e.index for e in state.entries] == [9, 10, 11, 12]
