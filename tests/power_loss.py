"""A disk that can lose power, for the WAL, and the matching model of RocksDB's durability.

`PowerLossDisk` is a `WalFiles` layer over real files that remembers, per file, what has been made
durable (`fdatasync` makes a file's bytes and size durable; `fsync_dir` makes creations and removals in
a directory durable) and what every write since overwrote. `power_loss()` then rewrites the files to what
a machine losing power could leave:

- a file whose creation no directory fsync covered is gone, a removal no fsync covered is undone;
- each file keeps its durable content, plus possibly a prefix of what was written after it, from the
  first byte written since the last sync. Within the durable size (writes over the zeros the WAL wrote
  ahead, see storage/wal.py) the prefix ends at a sector boundary, sectors being written whole, and the
  rest is as it was durable; where the file grew, the prefix may end at any byte (the size reached the
  disk with only some of the data), or at a sector boundary followed by zeros to the new size (the size
  reached the disk, later sectors did not). Reordered page writeback within the unsynced part (a later
  sector landing while an earlier one did not) is not modelled: the WAL refuses such a tail as damage
  rather than guess.

`cut_power()` stops the machine at an instant: every later file operation raises `PowerCut` (a
BaseException, so no `except Exception` in the server can swallow it and carry on) and reaches nothing.

RocksDB is written unsynced by design (the WAL replays what it loses), so the model is the pessimistic
one: after a power loss, the database is what it was at its last durable point, the last `make_durable`
(RocksDB's synced flush before log compaction) or snapshot install, and nothing written after it.
`DurableDb` keeps a RocksDB checkpoint taken at each such point and puts it in place of the database
directory at a power loss. Anything RocksDB happened to persist later (its own background flushes) can
only make the real outcome better than the model's.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from rocksdict import Checkpoint, Rdict

from etcdpy.storage.wal_files import OsFiles

SECTOR = 512


class PowerCut(BaseException):
    """The power went off: this operation, and every one after it, never reached the disk."""


@dataclass
class FaultPlan:
    """When to cut the power or fail an operation: `op` is one of open/write/fdatasync/truncate/remove/
    fsync_dir/create, or "*" for any, matched on its `nth` occurrence (1-based) after the plan is armed."""

    op: str
    nth: int = 1
    error: int | None = None  # an errno to raise (EIO, ENOSPC) instead of cutting the power
    seen: int = 0

    def hit(self, op: str) -> bool:
        if op != self.op and self.op != "*":
            return False
        self.seen += 1
        return self.seen == self.nth


@dataclass
class PowerLossDisk(OsFiles):
    rng: random.Random
    durable_len: dict[str, int] = field(default_factory=dict)
    # Per file, since its last sync: each write's (offset, bytes it overwrote).
    undo: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    unsynced_creates: set[str] = field(default_factory=set)
    unsynced_removes: dict[str, bytes] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)
    plan: FaultPlan | None = None
    off: bool = False
    ops: int = 0
    on_op: Callable[[str, str], None] | None = None  # observer: (op, path), before the op happens
    on_cut: Callable[[], None] | None = None  # told once when the power goes off (from any thread)

    # ------------------------------------------------------------------ the machine

    def cut_power(self) -> None:
        if not self.off:
            self.off = True
            if self.on_cut is not None:
                self.on_cut()

    def _enter(self, op: str, path: str) -> None:
        if self.off:
            raise PowerCut(f"{op} {path}: the power is off")
        self.ops += 1
        if self.on_op is not None:
            self.on_op(op, path)
            if self.off:
                raise PowerCut(f"{op} {path}: the power went off")
        plan = self.plan
        if plan is not None and plan.hit(op):
            self.plan = None
            if plan.error is None:
                self.cut_power()
                raise PowerCut(f"{op} {path}: the power went off")
            raise OSError(plan.error, os.strerror(plan.error), path)

    # ------------------------------------------------------------------ WalFiles

    def open_write(self, path: str, create: bool) -> int:
        self._enter("create" if create and not os.path.exists(path) else "open", path)
        existed = os.path.exists(path)
        fd = super().open_write(path, create)
        self.paths[fd] = path
        if not existed:
            self.unsynced_creates.add(path)
            self.durable_len[path] = 0
        else:
            self.durable_len.setdefault(path, os.path.getsize(path))
        return fd

    def write_at(self, fd: int, data: bytes, offset: int) -> None:
        path = self.paths[fd]
        self._enter("write", path)
        with open(path, "rb") as f:
            f.seek(offset)
            overwritten = f.read(len(data))
        self.undo.setdefault(path, []).append((offset, overwritten))
        super().write_at(fd, data, offset)

    def fdatasync(self, fd: int) -> None:
        path = self.paths[fd]
        self._enter("fdatasync", path)
        super().fdatasync(fd)
        self._durable(path, os.fstat(fd).st_size)

    def _durable(self, path: str, size: int) -> None:
        self.durable_len[path] = size
        self.undo.pop(path, None)

    def _durable_image(self, path: str, data: bytes) -> bytes:
        """The file as its last sync left it: every write since undone, cut to the durable size."""
        image = bytearray(data)
        for offset, overwritten in reversed(self.undo.get(path, [])):
            image[offset:offset + len(overwritten)] = overwritten
        return bytes(image[: self.durable_len.get(path, len(data))])

    def close(self, fd: int) -> None:
        # Closing is not a durability point and cannot fail on a local disk; allowed after the cut so
        # the dead member can be torn down.
        os.close(fd)
        self.paths.pop(fd, None)

    def truncate(self, path: str, size: int) -> None:
        self._enter("truncate", path)
        super().truncate(path, size)
        self._durable(path, size)  # OsFiles.truncate fsyncs the whole file

    def remove(self, path: str) -> None:
        self._enter("remove", path)
        if path not in self.unsynced_creates:
            with open(path, "rb") as f:
                self.unsynced_removes[path] = self._durable_image(path, f.read())
        self.unsynced_creates.discard(path)
        self.durable_len.pop(path, None)
        self.undo.pop(path, None)
        super().remove(path)

    def fsync_dir(self, directory: str) -> None:
        self._enter("fsync_dir", directory)
        super().fsync_dir(directory)
        inside = os.path.abspath(directory)

        def elsewhere(path: str) -> bool:
            return os.path.dirname(os.path.abspath(path)) != inside
        self.unsynced_creates = {p for p in self.unsynced_creates if elsewhere(p)}
        self.unsynced_removes = {p: d for p, d in self.unsynced_removes.items() if elsewhere(p)}

    # ------------------------------------------------------------------ the loss

    def power_loss(self) -> list[str]:
        """Rewrite every file to what survives; returns one line per file changed (for failure output).
        Afterwards the disk is on again and everything on it is durable."""
        self.off = True
        report: list[str] = []
        for fd in list(self.paths):
            self.close(fd)
        for path in sorted(self.unsynced_creates):
            if os.path.exists(path):
                os.remove(path)
                report.append(f"{os.path.basename(path)}: creation lost")
        for path, data in sorted(self.unsynced_removes.items()):
            with open(path, "wb") as f:
                f.write(data)
            report.append(f"{os.path.basename(path)}: removal lost")
        for path, durable in sorted(self.durable_len.items()):
            if path in self.unsynced_creates or not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            writes = self.undo.get(path, [])
            if len(data) == durable and not writes:
                continue
            first = min((offset for offset, _ in writes), default=durable)  # the first byte written since
            image = self._durable_image(path, data)
            cut = self.rng.randint(min(first, len(data)), len(data))
            if self.rng.random() < 0.5:
                if cut < durable:
                    cut = cut // SECTOR * SECTOR
                kept = data[:cut] + image[cut:]
                how = f"cut at {cut}"
            else:
                upto = max(min(first, len(data)), cut // SECTOR * SECTOR)
                kept = data[:upto] + image[upto:]
                kept += bytes(len(data) - len(kept))
                how = f"sectors from {upto} lost, zeros to {len(data)}"
            with open(path, "wb") as f:
                f.write(kept)
            report.append(f"{os.path.basename(path)}: durable {durable} of {len(data)} bytes, {how}")
        self.durable_len.clear()
        self.undo.clear()
        self.unsynced_creates.clear()
        self.unsynced_removes.clear()
        self.plan = None
        self.on_op = None
        self.on_cut = None
        self.off = False
        return report


class DurableDb:
    """RocksDB as it stands at its last durable point, kept as a checkpoint beside the live database."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.copy = db_path + ".durable"
        self.have_copy = False

    def mark(self, db: Rdict) -> None:
        """The live database is durable as it is now (after a synced flush, or a snapshot install)."""
        shutil.rmtree(self.copy, ignore_errors=True)
        Checkpoint(db).create_checkpoint(self.copy)
        self.have_copy = True

    def power_loss(self) -> None:
        """Replace the (closed) live database with its last durable state: empty if it never had one."""
        shutil.rmtree(self.db_path, ignore_errors=True)
        if self.have_copy:
            shutil.copytree(self.copy, self.db_path)


EIO = errno.EIO
ENOSPC = errno.ENOSPC
