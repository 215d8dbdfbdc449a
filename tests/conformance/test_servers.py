"""tests/servers.py against real etcd: start, restart on the same data dir, kill."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.servers import free_port, start_etcd


def test_free_port_is_bindable() -> None:
    assert 0 < free_port() < 65536


def test_etcd_restart_keeps_data_and_flags(tmp_path: Path) -> None:
    server = start_etcd(tmp_path, extra=["--max-txn-ops", "200"])
    try:
        assert server.data_dir == tmp_path / "ref.etcd"
        assert server.argv[-2:] == ["--max-txn-ops", "200"]
        put = httpx.post(f"{server.url}/v3/kv/put", json={"key": "YQ==", "value": "MQ=="})
        assert put.status_code == 200
        server = server.restart()
        got = httpx.post(f"{server.url}/v3/kv/range", json={"key": "YQ=="}).json()
        assert got["kvs"][0]["value"] == "MQ=="
    finally:
        server.kill()
    assert server.proc.poll() is not None
    assert (tmp_path / "ref.etcd.log").stat().st_size > 0
