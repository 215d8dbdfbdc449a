"""The simulated disk of tests/power_loss.py loses what a real one could: writes since the last sync,
appended or written over durable bytes (the zeros the WAL writes ahead), whole sectors at a time over
durable bytes, and nothing synced."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.power_loss import PowerLossDisk


def test_unsynced_writes_over_durable_zeros_can_be_lost_and_synced_ones_never(tmp_path: Path) -> None:
    outcomes: set[bytes] = set()
    for seed in range(40):
        disk = PowerLossDisk(random.Random(seed))
        path = str(tmp_path / f"f{seed}")
        fd = disk.open_write(path, create=True)
        disk.fsync_dir(str(tmp_path))
        disk.write_at(fd, b"synced", 0)
        disk.zero_fill(fd, 6, 1024)
        disk.fdatasync(fd)
        disk.write_at(fd, b"unsynced", 6)  # over the zeros: the file's size does not change
        disk.power_loss()
        data = open(path, "rb").read()
        assert data[:6] == b"synced" and len(data) == 6 + 1024
        assert data[6:14] in (b"unsynced", bytes(8))  # within the durable size, sectors land whole
        assert data[14:] == bytes(1024 - 8)
        outcomes.add(data[6:14])
        os.remove(path)
    assert bytes(8) in outcomes and b"unsynced" in outcomes  # both lost and kept happen
