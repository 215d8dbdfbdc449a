"""The write-ahead log of consensus: append-only segment files of checksummed records.

Each record is `length u32 | crc32 u32 | type u8 | payload`, the CRC covering type and payload. Records
hold log entries, hard states (term, vote, commit), snapshot markers (the log continues after them) and
opaque metadata. Appends are plain buffered writes; `sync()` makes them durable with `os.fdatasync` and
is meant to be run off the event loop (it releases the GIL), once for a whole group of appends.

On open, a torn or corrupt tail of the last segment (a crash mid-write) is truncated away; corruption
anywhere else is an error. An entry whose index is at or below one already read replaces the suffix
from that index on, which is how a follower's overwritten log tail is replayed.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

SEGMENT_BYTES = 64 * 1024 * 1024

_HEADER = struct.Struct(">IIB")
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
    """A record failed its checksum before the last segment's tail: the log cannot be trusted."""


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
    def __init__(self, directory: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        self._fd = -1
        self._seq = 0
        self._size = 0
        self.last_index = 0
        # Written again at the head of every new segment (as etcd does), so releasing old segments
        # after a snapshot never loses who this member is, its last vote or where replay starts.
        self._carry: dict[int, bytes] = {}

    # ------------------------------------------------------------------ open

    def open(self) -> WalState:
        """Replay every segment, repair a torn tail, and position for appending."""
        state = WalState()
        names = self._segments()
        for i, name in enumerate(names):
            last = i == len(names) - 1
            self._replay(os.path.join(self.dir, name), state, repair=last)
        if names:
            self._seq, _ = _parse_name(names[-1])
            path = os.path.join(self.dir, names[-1])
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = os.path.getsize(path)
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
        return state

    def _segments(self) -> list[str]:
        return sorted(n for n in os.listdir(self.dir) if n.endswith(".wal"))

    def _replay(self, path: str, state: WalState, repair: bool) -> None:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            if pos + _HEADER.size > len(data):
                break
            length, crc, rtype = _HEADER.unpack_from(data, pos)
            body_start = pos + _HEADER.size
            body = data[body_start : body_start + length]
            if len(body) < length or zlib.crc32(bytes([rtype]) + body) != crc:
                break
            _apply_record(state, rtype, body)
            pos = body_start + length
        if pos < len(data):
            if not repair:
                raise WalCorruptError(f"{path}: bad record at offset {pos}")
            # A crash mid-append leaves a partial record at the very end: drop it.
            with open(path, "r+b") as f:
                f.truncate(pos)
                os.fsync(f.fileno())

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
        if blob:
            os.write(self._fd, blob)
            self._size += len(blob)

    def sync(self) -> None:
        """Make every append so far durable. Blocking: run it in a worker thread."""
        os.fdatasync(self._fd)

    # -------------------------------------------------------------- segments

    def _start_segment(self, seq: int, first_index: int) -> None:
        path = os.path.join(self.dir, _segment_name(seq, first_index))
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seq = seq
        self._size = 0
        self._sync_dir()

    def _roll(self, first_index: int) -> None:
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._start_segment(self._seq + 1, first_index)
        # Metadata, then the snapshot marker, then the hard state: replay order restores each.
        carried = [_record(t, self._carry[t]) for t in (REC_METADATA, REC_SNAPSHOT, REC_HARD_STATE)
                   if t in self._carry]
        self._write(b"".join(carried))

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

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
                os.remove(os.path.join(self.dir, name))
                removed += 1
            else:
                break
        if removed:
            self._sync_dir()
        return removed

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _record(rtype: int, body: bytes) -> bytes:
    return _HEADER.pack(len(body), zlib.crc32(bytes([rtype]) + body), rtype) + body


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
