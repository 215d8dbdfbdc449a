"""The write-ahead log of consensus: append-only segment files of checksummed records.

Each record is `length u32 | crc32 u32 | type u8 | header crc32 u32 | payload`: the first checksum covers
type and payload, the header checksum the nine bytes before it, so a damaged length is recognised as
damage instead of being read as "the record runs past the end of the file". Records hold log entries,
hard states (term, vote, commit), snapshot markers (the log continues after them) and opaque metadata.
Appends are plain buffered writes; `sync()` makes them durable with `fdatasync` and is meant to be run
off the event loop (it releases the GIL), once for a whole group of appends. All file operations go
through a `WalFiles` layer (storage/wal_files.py) so tests can simulate power loss and failing disks.

With `preallocate`, the segment being written runs on past its last record in zeros written ahead
(`preallocate` bytes at a time): a sync of records written over them changes no file size, which on
ext4 saves the journal commit an append's sync pays (bare 8 KiB sync p50 ~135 µs against ~195 µs on
the machine of BENCHMARKS.md). The zeros read as a torn tail: open cuts them off, and a segment is cut
to its last record when the log rolls past it, so a closed segment never ends in zeros.

On open, only a torn tail is repaired: at the end of the last segment, a record that is incomplete at
end of file, or whose damage is explained by a zero-filled region reaching end of file from a sector
boundary inside it (the pages of an append that never reached the disk, as etcd's decoder recognises a
torn write by a zero-filled sector). Any other damage (a checksum mismatch on a complete record, damage
in an earlier segment, or damage followed by anything but zeros) raises `WalCorruptError`
("walpb: crc mismatch", etcd's words) before any file is changed. An entry whose index is at or below
one already read replaces the suffix from that index on, which is how a follower's overwritten log tail
is replayed.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from etcdpy.storage.wal_files import OS_FILES, WalFiles

SEGMENT_BYTES = 64 * 1024 * 1024
# The unit a disk writes atomically: a torn append leaves whole sectors of zeros (etcd's minSectorSize).
SECTOR_BYTES = 512

_FRAME = struct.Struct(">IIB")  # length, crc32 of type + payload, type
_HEADER = struct.Struct(">IIBI")  # the frame, then the crc32 of the frame
_ENTRY = struct.Struct(">QQB")
_HARD_STATE = struct.Struct(">QQQ")
_SNAPSHOT = struct.Struct(">QQ")

REC_ENTRY = 1
REC_HARD_STATE = 2
REC_SNAPSHOT = 3
REC_METADATA = 4


@dataclass(frozen=True, slots=True)
class WalEntry:
    index: int
    term: int
    type: int
    data: bytes


class WalHardState(NamedTuple):
    term: int
    vote: int
    commit: int


class WalCorruptError(Exception):
    """A record is damaged in a way a crash cannot explain: the log cannot be trusted, nothing was changed."""


@dataclass
class WalState:
    """What a WAL replays on open."""

    entries: list[WalEntry] = field(default_factory=list)
    hard_state: WalHardState = WalHardState(0, 0, 0)
    snapshot_index: int = 0
    snapshot_term: int = 0
    snapshot_data: bytes = b""  # opaque to the WAL: the caller's description of the snapshot
    metadata: bytes = b""


def _segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


def _parse_name(name: str) -> tuple[int, int]:
    seq, first = name[: -len(".wal")].split("-")
    return int(seq, 16), int(first, 16)


class WAL:
    def __init__(self, directory: str, segment_bytes: int = SEGMENT_BYTES,
                 files: WalFiles = OS_FILES, preallocate: int = 0) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.files = files
        self.preallocate = preallocate
        os.makedirs(directory, exist_ok=True)
        self._fd = -1
        self._seq = 0
        self._path = ""
        self._size = 0  # where the records of the current segment end: the next one goes here
        self._allocated = 0  # the current segment's length (records, then zeros written ahead)
        self.last_index = 0
        # Written again at the head of every new segment (as etcd does), so releasing old segments
        # after a snapshot never loses who this member is, its last vote or where replay starts.
        self._carry: dict[int, bytes] = {}

    # ------------------------------------------------------------------ open

    def open(self) -> WalState:
        """Replay every segment, repair a torn tail, and position for appending."""
        state = WalState()
        names = self._segments()
        # Read and check everything before changing anything: damage that refuses the start must leave
        # every file as it was.
        torn_at: int | None = None
        size = 0
        in_last: set[int] = set()  # record types the last segment holds
        for i, name in enumerate(names):
            last = i == len(names) - 1
            data = self.files.read(os.path.join(self.dir, name))
            in_last = set()
            end = _replay(os.path.join(self.dir, name), data, state, last, in_last)
            size = len(data)
            if end < size:
                torn_at = end
        if names:
            self._seq, _ = _parse_name(names[-1])
            path = os.path.join(self.dir, names[-1])
            if torn_at is not None:
                # A crash mid-append left part of a record (never synced, so never acknowledged).
                self.files.truncate(path, torn_at)
                size = torn_at
            self._fd = self.files.open_write(path, create=False)
            self._path = path
            self._size = self._allocated = size
        else:
            self._start_segment(1, 1)
        self.last_index = state.entries[-1].index if state.entries else state.snapshot_index
        if state.metadata:
            self._carry[REC_METADATA] = state.metadata
        if state.snapshot_index:
            marker = _SNAPSHOT.pack(state.snapshot_index, state.snapshot_term)
            self._carry[REC_SNAPSHOT] = marker + state.snapshot_data
        if state.hard_state != WalHardState(0, 0, 0):
            self._carry[REC_HARD_STATE] = _HARD_STATE.pack(*state.hard_state)
        if len(names) > 1 and not set(self._carry) <= in_last:
            # A power loss right after a roll can leave the new segment without the records carried
            # into it (they were never synced). Appending to it as it is would let releasing the
            # older segments take this member's identity, snapshot marker and vote with them.
            self._write_carry()
            self.sync()
        return state

    def _segments(self) -> list[str]:
        return sorted(n for n in self.files.listdir(self.dir) if n.endswith(".wal"))

    # ---------------------------------------------------------------- append

    def append(self, entries: list[WalEntry], hard_state: WalHardState | None = None) -> None:
        """Buffer entries (and the hard state after them) into the current segment; not yet durable."""
        if self._size >= self.segment_bytes:
            first = entries[0].index if entries else self.last_index + 1
            self._roll(first)
        parts: list[bytes] = []
        for e in entries:
            parts.append(_record(REC_ENTRY, _ENTRY.pack(e.index, e.term, e.type) + e.data))
        if entries:
            self.last_index = entries[-1].index
        if hard_state is not None:
            body = _HARD_STATE.pack(*hard_state)
            self._carry[REC_HARD_STATE] = body
            parts.append(_record(REC_HARD_STATE, body))
        self._write(b"".join(parts))

    def save_snapshot(self, index: int, term: int, data: bytes = b"") -> None:
        """Record that the state machine holds everything up to `index`: replay starts after it."""
        body = _SNAPSHOT.pack(index, term) + data
        self._carry[REC_SNAPSHOT] = body
        self._write(_record(REC_SNAPSHOT, body))
        if index > self.last_index:
            self.last_index = index

    def save_metadata(self, data: bytes) -> None:
        self._carry[REC_METADATA] = data
        self._write(_record(REC_METADATA, data))

    def _write(self, blob: bytes) -> None:
        if not blob:
            return
        end = self._size + len(blob)
        self.files.write_at(self._fd, blob, self._size)
        self._size = end
        if end > self._allocated:
            # Zeros past segment_bytes would never be written over: the log rolls at its next append.
            ahead = min(self.preallocate, self.segment_bytes - end)
            if ahead > 0:
                self.files.zero_fill(self._fd, end, ahead)
                end += ahead
            self._allocated = end

    def sync(self) -> None:
        """Make every append so far durable. Blocking: run it in a worker thread."""
        self.files.fdatasync(self._fd)

    @property
    def sync_fd(self) -> int:
        """The descriptor `sync` syncs, for a caller that syncs it another way (kernel AIO): its
        `fdatasync` makes every append so far durable (a segment is synced before the next begins)."""
        return self._fd

    # -------------------------------------------------------------- segments

    def _start_segment(self, seq: int, first_index: int) -> None:
        path = os.path.join(self.dir, _segment_name(seq, first_index))
        self._fd = self.files.open_write(path, create=True)
        self._path = path
        self._seq = seq
        self._size = self._allocated = 0
        self.files.fsync_dir(self.dir)

    def _roll(self, first_index: int) -> None:
        # The segment being closed is complete for good: replay treats any damage in it as corruption,
        # zeros after its last record included, so those go before the next segment exists.
        self.files.fdatasync(self._fd)
        if self._allocated > self._size:
            self.files.truncate(self._path, self._size)
        self.files.close(self._fd)
        self._fd = -1
        self._start_segment(self._seq + 1, first_index)
        self._write_carry()

    def _write_carry(self) -> None:
        # Metadata, then the snapshot marker, then the hard state: replay order restores each.
        carried = [_record(t, self._carry[t]) for t in (REC_METADATA, REC_SNAPSHOT, REC_HARD_STATE)
                   if t in self._carry]
        self._write(b"".join(carried))

    def release_to(self, index: int) -> int:
        """Delete segments whose entries all lie at or below `index` (after a durable snapshot there).

        A segment is only known to end where the next begins, so the last segment is always kept.
        Returns the number of segments removed.
        """
        names = self._segments()
        removed = 0
        for name, following in zip(names, names[1:], strict=False):
            _, next_first = _parse_name(following)
            if next_first - 1 <= index:
                self.files.remove(os.path.join(self.dir, name))
                removed += 1
            else:
                break
        if removed:
            self.files.fsync_dir(self.dir)
        return removed

    def close(self) -> None:
        if self._fd >= 0:
            self.files.close(self._fd)
            self._fd = -1


def _record(rtype: int, body: bytes) -> bytes:
    frame = _FRAME.pack(len(body), zlib.crc32(body, zlib.crc32(bytes([rtype]))), rtype)
    return frame + zlib.crc32(frame).to_bytes(4, "big") + body


def _replay(path: str, data: bytes, state: WalState, last: bool, types: set[int]) -> int:
    """Apply the records of one segment; returns where its valid records end (a torn tail follows).

    Raises WalCorruptError for damage a crash mid-append cannot explain, or any damage if not `last`.
    """
    pos = 0
    size = len(data)
    while pos < size:
        header_ok = False
        end = pos + _HEADER.size
        if end <= size:
            length, crc, rtype, hcrc = _HEADER.unpack_from(data, pos)
            header_ok = zlib.crc32(data[pos : pos + _FRAME.size]) == hcrc
            if header_ok:
                end += length
                body = data[pos + _HEADER.size : end]
                if end <= size and zlib.crc32(body, zlib.crc32(bytes([rtype]))) == crc:
                    _apply_record(state, rtype, body)
                    types.add(rtype)
                    pos = end
                    continue
        if last and _is_torn(data, pos, end):
            return pos
        if end > size:
            raise WalCorruptError(f"wal: unexpected EOF in {path} at offset {pos}")
        raise WalCorruptError(f"walpb: crc mismatch in {path} at offset {pos}")
    return pos


def _is_torn(data: bytes, pos: int, end: int) -> bool:
    """Whether the damaged record at `pos` (ending at `end`, or its header's end if the header is bad)
    is what a crash in the middle of appending it leaves: cut off by the end of the file, or zeros
    from a sector boundary inside it to the end of the file (the file grew, the data never landed).
    Nothing but zeros may follow: a valid record after the damage means the damage is not a tail."""
    if end > len(data):
        return True
    zeros_from = len(data[pos:].rstrip(b"\0")) + pos
    if zeros_from <= pos:
        return True
    boundary = -(-zeros_from // SECTOR_BYTES) * SECTOR_BYTES
    return boundary < end


def _apply_record(state: WalState, rtype: int, body: bytes) -> None:
    if rtype == REC_ENTRY:
        index, term, etype = _ENTRY.unpack_from(body)
        entry = WalEntry(index, term, etype, body[_ENTRY.size :])
        entries = state.entries
        if entries and index <= entries[-1].index:
            # A rewritten suffix: keep what precedes `index`, then take the new entry.
            del entries[max(0, index - entries[0].index) :]
        entries.append(entry)
    elif rtype == REC_HARD_STATE:
        state.hard_state = WalHardState(*_HARD_STATE.unpack(body))
    elif rtype == REC_SNAPSHOT:
        index, term = _SNAPSHOT.unpack_from(body)
        state.snapshot_index, state.snapshot_term = index, term
        state.snapshot_data = body[_SNAPSHOT.size :]
        state.entries = [e for e in state.entries if e.index > index]
    elif rtype == REC_METADATA:
        state.metadata = body
