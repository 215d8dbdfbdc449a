"""A disk that fails under the WAL (EIO on fdatasync, ENOSPC on write) stops the member cleanly.

The member logs one critical line and exits non-zero; the write in flight is never acknowledged, and
every write acknowledged before the failure is there after a restart on a working disk.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from etcdpy.app.config import Config
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.kv_types import RangeRequest
from tests.servers import REPO_ROOT

ACKS_BEFORE = 25


async def read_back(data_dir: Path) -> dict[str, int]:
    config = Config(name="df", data_dir=str(data_dir), heartbeat_interval=10, election_timeout=100)
    server = EtcdServer(config)
    server.start()
    try:
        while not server.node.is_leader:
            await asyncio.sleep(0.01)
        result = await server.range(RangeRequest(key=b"df/", range_end=b"df0"))
        return {kv.key.decode(): kv.mod_revision for kv in result.kvs}
    finally:
        await server.stop()
        server.close()


@pytest.mark.parametrize(("op", "error"), [("fdatasync", "EIO"), ("write", "ENOSPC")])
def test_disk_error_stops_the_member_without_acknowledging(tmp_path: Path, op: str, error: str) -> None:
    data_dir = tmp_path / "df.etcdpy"
    done = subprocess.run([sys.executable, "-m", "tests.disk_fault_member", str(data_dir), op, error,
                           str(ACKS_BEFORE)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    critical = [line for line in done.stderr.splitlines() if line.startswith("CRITICAL")]
    assert len(critical) == 1 and "disk failure" in critical[0], done.stderr[-3000:]
    assert ("Errno 5" if error == "EIO" else "Errno 28") in critical[0]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    armed = lines.index("ARMED")
    assert armed == ACKS_BEFORE, lines
    assert lines[armed + 1:] == [], f"acknowledged after the disk failed: {lines[armed:]}"
    acked = {key: int(rev) for _, key, rev in (line.split() for line in lines[:armed])}

    survived = asyncio.run(read_back(data_dir))
    assert {k: survived.get(k) for k in acked} == acked
