"""The file operations the WAL makes, behind one small interface so a test can stand in for the disk.

Production uses `OS_FILES`, a thin pass-through to `os` (one attribute lookup more per call, no copies).
A test can substitute a layer that keeps written-but-unsynced bytes apart and drops them on a simulated
power loss (tests/power_loss.py), or that fails a write or a sync the way a full or broken disk does.
Every durability promise the WAL makes is one of these calls: `fdatasync` for a file's contents and
size, `fsync_dir` for the creation and removal of files in a directory.
"""

from __future__ import annotations

import os
from typing import Protocol


class WalFiles(Protocol):
    def listdir(self, directory: str) -> list[str]: ...

    def read(self, path: str) -> bytes: ...

    def open_append(self, path: str, create: bool) -> int:
        """Open `path` for appending (creating it if `create`); returns a descriptor for the calls below."""
        ...

    def write(self, fd: int, data: bytes) -> None:
        """Write all of `data` at the end of the file, or raise (ENOSPC, EIO)."""
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

    def open_append(self, path: str, create: bool) -> int:
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0)
        return os.open(path, flags, 0o600)

    def write(self, fd: int, data: bytes) -> None:
        # A regular file may take fewer bytes than offered (the disk filling up mid-write); the next
        # write then raises ENOSPC. Never return with part of a record silently missing.
        written = os.write(fd, data)
        while written < len(data):
            written += os.write(fd, memoryview(data)[written:])

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
