"""The file operations the WAL makes, behind one small interface so a test can stand in for the disk.

Production uses `OS_FILES`, a thin pass-through to `os` (one attribute lookup more per call, no copies).
A test can substitute a layer that keeps written-but-unsynced bytes apart and drops them on a simulated
power loss (tests/power_loss.py), or that fails a write or a sync the way a full or broken disk does.
Every durability promise the WAL makes is one of these calls: `fdatasync` for a file's contents and
size, `fsync_dir` for the creation and removal of files in a directory. Writes are positional: the WAL
knows where its records end, and a segment may run on past them in zeros written ahead
(`WAL(preallocate=...)`).
"""

from __future__ import annotations

import os
from typing import Protocol


class WalFiles(Protocol):
    def listdir(self, directory: str) -> list[str]: ...

    def read(self, path: str) -> bytes: ...

    def open_write(self, path: str, create: bool) -> int:
        """Open `path` for writing (creating it if `create`); returns a descriptor for the calls below."""
        ...

    def write_at(self, fd: int, data: bytes, offset: int) -> None:
        """Write all of `data` at `offset`, or raise (ENOSPC, EIO)."""
        ...

    def zero_fill(self, fd: int, offset: int, size: int) -> None:
        """Write `size` zero bytes at `offset`: space written ahead, so that the syncs of records later
        written over it change no file size (and skip a journal commit), as etcd preallocates."""
        ...

    def fdatasync(self, fd: int) -> None: ...

    def close(self, fd: int) -> None: ...

    def truncate(self, path: str, size: int) -> None:
        """Cut `path` to `size` bytes, durably."""
        ...

    def remove(self, path: str) -> None: ...

    def fsync_dir(self, directory: str) -> None:
        """Make the creation and removal of files in `directory` durable."""
        ...


class OsFiles:
    """The real disk."""

    def listdir(self, directory: str) -> list[str]:
        return os.listdir(directory)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def open_write(self, path: str, create: bool) -> int:
        flags = os.O_WRONLY | (os.O_CREAT if create else 0)
        return os.open(path, flags, 0o600)

    def write_at(self, fd: int, data: bytes, offset: int) -> None:
        # A regular file may take fewer bytes than offered (the disk filling up mid-write); the next
        # write then raises ENOSPC. Never return with part of a record silently missing.
        written = os.pwrite(fd, data, offset)
        while written < len(data):
            written += os.pwrite(fd, memoryview(data)[written:], offset + written)

    def zero_fill(self, fd: int, offset: int, size: int) -> None:
        # Written for real: fallocate's unwritten extents still cost a journal commit when a later
        # write converts them (measured on ext4: no faster than plain appends).
        self.write_at(fd, bytes(size), offset)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def truncate(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: str) -> None:
        os.remove(path)

    def fsync_dir(self, directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


OS_FILES: WalFiles = OsFiles()
