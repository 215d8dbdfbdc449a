"""The WAL: what was appended and synced comes back; torn tails are repaired; rewrites replace."""

import os

import pytest

from etcdpy.storage.wal import SECTOR_BYTES, WAL, WalCorruptError, WalEntry, WalHardState


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


def segment_files(path) -> dict[str, bytes]:
    return {name: open(os.path.join(path, name), "rb").read() for name in sorted(os.listdir(path))}


def flip(path: str, offset: int, count: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def assert_refuses_untouched(path, match: str = "walpb: crc mismatch") -> None:
    before = segment_files(path)
    with pytest.raises(WalCorruptError, match=match) as info:
        reopen(str(path))
    assert "\n" not in str(info.value)
    assert segment_files(path) == before


def test_flipped_byte_in_last_record_refuses_to_start(tmp_path) -> None:
    """A complete record failing its checksum is damage, not a torn write (etcd: walpb: crc mismatch)."""
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 3))
    wal.close()
    segment = os.path.join(tmp_path, sorted(os.listdir(tmp_path))[0])
    flip(segment, os.path.getsize(segment) - 1, 1)
    assert_refuses_untouched(tmp_path)


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_flipped_bytes_in_the_middle_refuse_and_keep_the_log(tmp_path, where: float) -> None:
    """16 flipped bytes in the middle of a 2.5 MB segment: refuse to start, cut nothing (the file used to
    be truncated to the damaged offset, throwing most of the log away)."""
    wal, _ = reopen(str(tmp_path))
    for i in range(1, 20001, 100):
        wal.append([WalEntry(j, 1, 0, b"x" * 120) for j in range(i, i + 100)])
    wal.sync()
    wal.close()
    [segment] = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
    size = os.path.getsize(segment)
    assert size > 2_500_000
    flip(segment, int(size * where), 16)
    assert_refuses_untouched(tmp_path)


def test_every_16_byte_flip_in_a_record_is_refused(tmp_path) -> None:
    """Wherever 16 flipped bytes land in a record followed by others (length, checksums, type,
    payload), the damage is reported and the files stay as they were."""
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 6))
    wal.close()
    [name] = os.listdir(tmp_path)
    segment = os.path.join(tmp_path, name)
    pristine = open(segment, "rb").read()
    record = len(pristine) // 6
    for offset in range(record, 3 * record):
        with open(segment, "wb") as f:
            f.write(pristine)
        flip(segment, offset, 16)
        assert_refuses_untouched(tmp_path, match="walpb: crc mismatch|unexpected EOF")


def test_damage_followed_by_valid_records_is_not_a_torn_tail(tmp_path) -> None:
    """Zeros inside one record with valid records after it: damage, not an interrupted append."""
    wal, _ = reopen(str(tmp_path))
    wal.append([WalEntry(i, 1, 0, b"y" * 2000) for i in range(1, 6)])
    wal.close()
    [name] = os.listdir(tmp_path)
    segment = os.path.join(tmp_path, name)
    with open(segment, "r+b") as f:
        f.seek(2048)
        f.write(bytes(512))  # a whole sector of entry 2 zeroed
    assert_refuses_untouched(tmp_path)


@pytest.mark.parametrize("keep_sectors", [0, 1, 3])
def test_zero_filled_tail_from_a_sector_boundary_is_torn(tmp_path, keep_sectors: int) -> None:
    """An append that grew the file but whose later sectors never reached the disk reads as zeros from
    a sector boundary to the end: repaired like a short tail."""
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 2))
    wal.sync()
    synced = wal._size
    wal.append([WalEntry(3, 1, 0, b"z" * 3000)])
    wal.close()
    [name] = os.listdir(tmp_path)
    segment = os.path.join(tmp_path, name)
    size = os.path.getsize(segment)
    boundary = (synced // SECTOR_BYTES + keep_sectors) * SECTOR_BYTES
    with open(segment, "r+b") as f:
        f.seek(max(boundary, synced))
        f.write(bytes(size - max(boundary, synced)))
    wal, state = reopen(str(tmp_path))
    assert [e.index for e in state.entries] == [1, 2]
    assert os.path.getsize(segment) == synced
    wal.append(entries(3, 3))
    wal.close()
    assert [e.index for e in reopen(str(tmp_path))[1].entries] == [1, 2, 3]


def test_truncated_earlier_segment_is_an_error(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), segment_bytes=64)
    for i in range(1, 11):
        wal.append(entries(i, i))
    wal.close()
    first = os.path.join(tmp_path, sorted(os.listdir(tmp_path))[0])
    os.truncate(first, os.path.getsize(first) - 3)
    assert_refuses_untouched(tmp_path, match="unexpected EOF")


def test_sync_is_an_fdatasync_of_the_segment(tmp_path, monkeypatch) -> None:
    """The production file layer really syncs: the power-loss tests substitute it, so check it here."""
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
    wal, _ = reopen(str(tmp_path))
    wal.append(entries(1, 1))
    wal.sync()
    assert synced == [wal._fd]


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


def test_carried_records_lost_with_a_fresh_segment_are_written_again(tmp_path) -> None:
    """Power lost right after a roll: the new segment exists but the records carried into it never
    reached the disk. Appending to it as it was let a later release take the member's identity with it."""
    wal, _ = reopen(str(tmp_path), segment_bytes=64)
    wal.save_metadata(b"member-7")
    wal.append(entries(1, 1), WalHardState(3, 2, 1))
    wal.save_snapshot(1, 3, b"conf")
    for i in range(2, 6):
        wal.append(entries(i, i))
    wal.sync()
    wal.close()
    newest = os.path.join(tmp_path, sorted(os.listdir(tmp_path))[-1])
    os.truncate(newest, 0)
    wal, state = reopen(str(tmp_path), segment_bytes=1 << 20)
    wal.append(entries(5, 5))
    assert wal.release_to(5) > 0
    wal.close()
    _, state = reopen(str(tmp_path))
    assert state.metadata == b"member-7"
    assert (state.snapshot_index, state.snapshot_data, state.hard_state.vote) == (1, b"conf", 2)
    assert [e.index for e in state.entries] == [5]


def test_a_preallocated_segment_runs_on_in_zeros_that_open_cuts_off(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), preallocate=4096)
    wal.append(entries(1, 3), WalHardState(1, 1, 3))
    wal.sync()
    (segment,) = segment_files(tmp_path)
    path = os.path.join(tmp_path, segment)
    data = open(path, "rb").read()
    records_end = wal._size
    assert len(data) == records_end + 4096 and data[records_end:] == bytes(4096)
    # Records written over the zeros change no file size: their sync has no size to journal.
    wal.append(entries(4, 20))
    wal.sync()
    assert os.path.getsize(path) == len(data)
    wal.close()  # the zeros stay (as after a kill)
    wal, state = reopen(str(tmp_path), preallocate=4096)
    assert [e.index for e in state.entries] == list(range(1, 21))
    assert state.hard_state == WalHardState(1, 1, 3)
    assert os.path.getsize(path) == wal._size  # open cut the zeros off; appending writes them again
    wal.append(entries(21, 21))
    assert os.path.getsize(path) > wal._size
    wal.close()
    assert [e.index for e in reopen(str(tmp_path))[1].entries] == list(range(1, 22))


def test_a_segment_the_log_rolls_past_ends_at_its_last_record(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), segment_bytes=64, preallocate=4096)
    for i in range(1, 11):
        wal.append(entries(i, i))
    wal.sync()
    names = sorted(segment_files(tmp_path))
    assert len(names) > 2
    for name in names[:-1]:  # a closed segment with zeros after its records would be damage
        assert not open(os.path.join(tmp_path, name), "rb").read().endswith(b"\0" * 16)
    # No zeros past segment_bytes: the log rolls before it would write over them.
    assert all(len(data) <= 64 + 64 for data in segment_files(tmp_path).values())
    wal.close()
    assert [e.index for e in reopen(str(tmp_path))[1].entries] == list(range(1, 11))


def test_a_record_torn_inside_the_zeros_is_cut_off(tmp_path) -> None:
    wal, _ = reopen(str(tmp_path), preallocate=4096)
    wal.append(entries(1, 2))
    wal.sync()
    torn_at = wal._size
    wal.append([WalEntry(3, 1, 0, b"x" * 2000)])
    wal.close()  # before any sync: the zeros after entry 3 stay
    (segment,) = segment_files(tmp_path)
    path = os.path.join(tmp_path, segment)
    lost_from = (torn_at // SECTOR_BYTES + 1) * SECTOR_BYTES
    with open(path, "r+b") as f:  # entry 3's sectors after the first never reached the disk
        f.seek(lost_from)
        f.write(bytes(wal._size - lost_from))
    wal, state = reopen(str(tmp_path), preallocate=4096)
    assert [e.index for e in state.entries] == [1, 2]
    assert os.path.getsize(path) == torn_at
