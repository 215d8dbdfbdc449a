"""Whole-database snapshots of MVCC: a consistent stream out of one store, a fresh store from a stream.

Used to catch up a member whose log was compacted away (Raft's snapshot), and for snapshot save and
restore. The stream is a sequence of records `family u8 | key length u32 | value length u32 | key | value`
ending with a trailer record (family 255) carrying the SHA-256 of everything before it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Mapping

from rocksdict import Options, Rdict, WriteBatch

from etcdpy.storage.mvcc import FAMILIES, META_APPLIED_INDEX

_REC = struct.Struct(">BII")
_TRAILER = 255
CHUNK_BYTES = 256 * 1024


class SnapshotCorruptError(Exception):
    """The stream ended early or its checksum does not match."""


def dump_to_file(families: Mapping[str, Rdict], path: str) -> int:
    """Write the whole database to `path` in the stream format; returns its size in bytes.

    rocksdict's snapshot iterators do not honour the snapshot, so consistency comes from running
    this without yielding: applies happen on the same thread and cannot interleave. That blocks the
    caller for the length of the dump (about a second per few hundred thousand keys).
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as out:
        buf: list[bytes] = []
        pending = 0
        for number, name in enumerate(FAMILIES):
            it = families[name].iter()
            it.seek_to_first()
            while it.valid():
                key, value = it.key(), it.value()
                buf.append(_REC.pack(number, len(key), len(value)) + key + value)
                pending += _REC.size + len(key) + len(value)
                if pending >= CHUNK_BYTES:
                    chunk = b"".join(buf)
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    buf, pending = [], 0
                it.next()
        chunk = b"".join(buf)
        digest.update(chunk)
        trailer = _REC.pack(_TRAILER, 0, 32) + digest.digest()
        out.write(chunk + trailer)
        size += len(chunk) + len(trailer)
    return size


def applied_index_of(path: str) -> int:
    """The applied index recorded in a dump (0 if none): what the database will have applied once the
    dump is loaded, known before loading it (a WAL record promising it must be durable first)."""
    meta = FAMILIES.index("meta")
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while len(data) - pos >= _REC.size:
        family, klen, vlen = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        if family == _TRAILER:
            break
        if family == meta and data[start : start + klen] == META_APPLIED_INDEX:
            return int.from_bytes(data[start + klen : start + klen + vlen], "big")
        pos = start + klen + vlen
    return 0


def read_chunks(path: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            yield chunk


def iter_records(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes, bytes]]:
    """(family number, key, value) of every record of a dump, checking its checksum at the end.

    Raises SnapshotCorruptError when the stream is cut short, names an unknown family, or its
    SHA-256 does not match; records already yielded must then be discarded by the caller.
    """
    digest = hashlib.sha256()
    pending = b""
    for chunk in chunks:
        pending += chunk
        pos = 0
        while len(pending) - pos >= _REC.size:
            family, klen, vlen = _REC.unpack_from(pending, pos)
            end = pos + _REC.size + klen + vlen
            if len(pending) < end:
                break
            if family == _TRAILER:
                digest.update(pending[:pos])
                if pending[pos + _REC.size : end] != digest.digest():
                    raise SnapshotCorruptError("snapshot checksum mismatch")
                return
            if family >= len(FAMILIES):
                raise SnapshotCorruptError(f"snapshot record of unknown family {family}")
            key_at = pos + _REC.size
            yield family, pending[key_at : key_at + klen], pending[key_at + klen : end]
            pos = end
        digest.update(pending[:pos])
        pending = pending[pos:]
    raise SnapshotCorruptError("snapshot stream ended before its checksum")


def stream_length(path: str) -> int:
    """Where the dump in `path` ends (just past its trailer record), found by walking the record
    headers; anything after it is not part of the dump (a saved snapshot appends its SHA-256 there).
    Raises SnapshotCorruptError when no trailer is found."""
    size = os.path.getsize(path)
    pos = 0
    with open(path, "rb") as f:
        while pos + _REC.size <= size:
            f.seek(pos)
            family, klen, vlen = _REC.unpack(f.read(_REC.size))
            pos += _REC.size + int(klen) + int(vlen)
            if family == _TRAILER:
                if pos > size:
                    break
                return pos
    raise SnapshotCorruptError("snapshot file is truncated: its dump has no end")


def read_range(path: str, length: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The first `length` bytes of `path`, in chunks."""
    with open(path, "rb") as f:
        left = length
        while left > 0 and (chunk := f.read(min(chunk_bytes, left))):
            left -= len(chunk)
            yield chunk


def load(path: str, chunks: Iterable[bytes]) -> None:
    """Build a fresh database at `path` from a dump; the checksum must match or nothing is kept."""
    tmp = path + ".incoming"
    shutil.rmtree(tmp, ignore_errors=True)
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    db = Rdict(tmp, opts, column_families={name: Options(raw_mode=True) for name in FAMILIES})
    handles = [db.get_column_family_handle(name) for name in FAMILIES]
    try:
        batch = WriteBatch(raw_mode=True)
        pending = 0
        for family, key, value in iter_records(chunks):
            batch.put(key, value, handles[family])
            pending += len(key) + len(value)
            if pending >= CHUNK_BYTES:
                db.write(batch)
                batch = WriteBatch(raw_mode=True)
                pending = 0
        db.write(batch)
        db.flush_wal(True)
    except BaseException:
        db.close()
        del handles, db
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    db.close()
    del handles, db
    swap_in(tmp, path)


def swap_in(new: str, path: str) -> None:
    """Put the database directory `new` at `path`, so that a crash at any point leaves either the old
    database or the new one at `path`, never neither: the old one is renamed aside first (MVCCStore
    puts it back if the crash came before the second rename) and removed only once the new one's name
    is durable."""
    parent = os.path.dirname(os.path.abspath(path))
    old = path + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(path):
        os.rename(path, old)
    os.rename(new, path)
    _fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
