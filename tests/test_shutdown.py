"""A member stopped by SIGTERM shuts down completely: it closes its database before it dies.

uvicorn re-raises the signal that stopped it once its server returns; if that killed the process
there, the member never closed RocksDB, and the next start replayed RocksDB's own log (and restart
took longer with every write since the last flush).
"""

from __future__ import annotations

import base64
import signal
from pathlib import Path

import httpx

from tests.servers import start_etcdpy


def test_sigterm_closes_the_database_then_dies_of_the_signal(tmp_path: Path) -> None:
    server = start_etcdpy(tmp_path)
    try:
        with httpx.Client(timeout=10) as http:
            for i in range(50):
                body = {"key": base64.b64encode(b"k%d" % i).decode(), "value": "dg=="}
                assert http.post(f"{server.url}/v3/kv/put", json=body).status_code == 200
        db = server.data_dir / "member" / "db"
        assert any(log.stat().st_size for log in db.glob("*.log")), "the writes are in RocksDB's log"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == -signal.SIGTERM  # etcd's exit: by the signal
        # Closing flushed the memtables: RocksDB's log holds nothing left to replay.
        assert [log.stat().st_size for log in db.glob("*.log")] in ([], [0])
    finally:
        server.kill()
