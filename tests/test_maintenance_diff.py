"""Maintenance against real etcd 3.4: the quota alarm fires and disarms alike, the snapshot stream is
framed alike, and etcdpy's snapshot save/status/restore commands work on what the stream gives.
Exact-byte cases for alarms live in tests/conformance/cases/maintenance.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Server, etcdpy_env, start_etcd, start_etcdpy

QUOTA = ["--quota-backend-bytes", "400000"]
NOSPACE = {"error": "etcdserver: mvcc: database space exceeded",
           "message": "etcdserver: mvcc: database space exceeded", "code": 8}


@contextlib.contextmanager
def _both(tmp_path_factory: pytest.TempPathFactory, name: str,
          extra: list[str]) -> Iterator[dict[str, Server]]:
    """Real etcd and etcdpy, started alike."""
    etcd = start_etcd(tmp_path_factory.mktemp(f"etcd{name}"), extra=extra)
    try:
        etcdpy = start_etcdpy(tmp_path_factory.mktemp(f"etcdpy{name}"), extra=extra)
        try:
            yield {"etcd": etcd, "etcdpy": etcdpy}
        finally:
            etcdpy.stop()
    finally:
        etcd.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with _both(tmp_path_factory, "", QUOTA) as both:
        yield both


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Servers without a small quota, for tests that need more data than the quota story allows."""
    with _both(tmp_path_factory, "-plain", []) as both:
        yield both


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=10)


def _quota_story(url: str) -> dict[str, Any]:
    value = base64.b64encode(os.urandom(150_000)).decode()
    key = base64.b64encode(b"big").decode()
    puts = [_post(url, "/v3/kv/put", {"key": key, "value": value}) for _ in range(6)]
    me = _post(url, "/v3/maintenance/status", {}).json()["header"]["member_id"]
    story: dict[str, Any] = {
        "first_put": puts[0].status_code,
        # Where the quota bites depends on each database's layout: compare how, not after how many.
        "refused": sorted({p.text for p in puts if p.status_code != 200}),
        "last_put": puts[-1].status_code,
        "alarms": _post(url, "/v3/maintenance/alarm", {"action": "GET"}).json(),
        "health": httpx.get(url + "/health").status_code,
        "range": _post(url, "/v3/kv/range", {"key": key, "count_only": True}).json().get("count"),
        "grant": _post(url, "/v3/lease/grant", {"TTL": 60}).status_code,
    }
    story["alarms_are_mine"] = story.pop("alarms") == {"alarms": [{"memberID": me, "alarm": "NOSPACE"}]}
    rev = _post(url, "/v3/kv/deleterange", {"key": key}).json()["header"]["revision"]
    story["compact"] = _post(url, "/v3/kv/compaction", {"revision": rev, "physical": True}).status_code
    story["defrag"] = _post(url, "/v3/maintenance/defragment", {}).json()
    story["disarm"] = _post(url, "/v3/maintenance/alarm",
                            {"action": "DEACTIVATE", "memberID": me, "alarm": "NOSPACE"}).status_code
    story["after"] = _post(url, "/v3/kv/put", {"key": key, "value": "YQ=="}).status_code
    story["healthy_again"] = httpx.get(url + "/health").status_code
    story["status_errors"] = _post(url, "/v3/maintenance/status", {}).json().get("errors")
    return story


def test_quota_alarm_fires_and_disarms_as_in_etcd(servers: dict[str, Server]) -> None:
    etcd, ours = _quota_story(servers["etcd"].url), _quota_story(servers["etcdpy"].url)
    assert ours == etcd
    assert etcd["first_put"] == 200 and etcd["last_put"] == 429
    assert [json.loads(r) for r in etcd["refused"]] == [NOSPACE]
    assert etcd["alarms_are_mine"] and etcd["health"] == 503 and etcd["after"] == 200


def _stream(url: str) -> list[dict[str, Any]]:
    resp = httpx.post(url + "/v3/maintenance/snapshot", content=b"{}", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    return [json.loads(line)["result"] for line in resp.text.splitlines() if line]


def test_snapshot_stream_is_framed_as_etcd_frames_it(plain: dict[str, Server]) -> None:
    for name, server in plain.items():
        for i in range(40):  # enough data for several 32 KiB messages
            _post(server.url, "/v3/kv/put", {"key": base64.b64encode(b"s%d" % i).decode(),
                                             "value": base64.b64encode(os.urandom(2000)).decode()})
        messages = _stream(server.url)
        blobs = [base64.b64decode(m["blob"]) for m in messages]
        total = len(blobs[0]) + int(messages[0].get("remaining_bytes", 0))
        assert len(messages) >= 3, name
        assert all(list(m) == ["remaining_bytes", "blob"] for m in messages[:-2]), name
        assert all(len(b) == 32 * 1024 for b in blobs[:-2]), name
        assert "remaining_bytes" not in messages[-2] and "remaining_bytes" not in messages[-1], name
        assert sum(len(b) for b in blobs[:-1]) == total, name
        assert blobs[-1] == hashlib.sha256(b"".join(blobs[:-1])).digest(), name


def _etcdpy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = etcdpy_env()
    return subprocess.run([sys.executable, "-m", "etcdpy.app", "snapshot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_snapshot_commands_save_inspect_and_refuse_damage(plain: dict[str, Server], tmp_path: Path) -> None:
    url = plain["etcdpy"].url
    saved = _etcdpy("save", "backup.snap", "--endpoints", url, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == "Snapshot saved at backup.snap"
    revision = int(_post(url, "/v3/kv/range", {"key": "AA=="}).json()["header"]["revision"])
    status = _etcdpy("status", "backup.snap", "-w", "json", cwd=tmp_path)
    doc = json.loads(status.stdout)
    assert list(doc) == ["hash", "revision", "totalKey", "totalSize"]
    assert doc["revision"] == revision and doc["totalSize"] == (tmp_path / "backup.snap").stat().st_size - 32
    table = _etcdpy("status", "backup.snap", "-w", "table", cwd=tmp_path).stdout.splitlines()
    # The HASH column is as wide as the hash in hex (7 digits one time in 16), its title centred by
    # tablewriter: etcdctl 3.4 prints '|  HASH   |' for a 7-digit hash and '|   HASH   |' for 8.
    gap = len(f"{doc['hash']:x}") - len("HASH")
    title = " " * (gap // 2) + "HASH" + " " * (gap - gap // 2)
    assert table[1] == f"| {title} | REVISION | TOTAL KEYS | TOTAL SIZE |"

    data = (tmp_path / "backup.snap").read_bytes()
    (tmp_path / "cut.snap").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    (tmp_path / "flipped.snap").write_bytes(bytes(flipped))
    for bad in ("cut.snap", "flipped.snap"):
        for cmd in (["status", bad], ["restore", bad, "--data-dir", "r"]):
            result = _etcdpy(*cmd, cwd=tmp_path)
            assert result.returncode == 1 and result.stderr.startswith("Error: "), (cmd, result.stderr)
        assert not (tmp_path / "r").exists()
    restored = _etcdpy("restore", "backup.snap", "--data-dir", "r", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    again = _etcdpy("restore", "backup.snap", "--data-dir", "r", cwd=tmp_path)
    assert again.stderr.strip() == 'Error: data-dir "r" exists'


def test_hashkv_and_downgrade_are_etcd_35_additions(servers: dict[str, Server]) -> None:
    for path in ("/v3/maintenance/hashkv", "/v3/maintenance/downgrade"):
        assert _post(servers["etcd"].url, path, {}).status_code == 404  # etcd 3.4 has neither
    url = servers["etcdpy"].url
    answer = _post(url, "/v3/maintenance/hashkv", {}).json()
    assert set(answer) <= {"header", "hash", "compact_revision", "hash_revision"}
    assert answer == _post(url, "/v3/maintenance/hashkv", {"revision": answer["hash_revision"]}).json()
    assert _post(url, "/v3/maintenance/hash", {}).json()["hash"] >= 0
    ok = _post(url, "/v3/maintenance/downgrade", {"action": "VALIDATE", "version": "3.3"})
    assert ok.json()["version"] == "3.4.0"
    bad = _post(url, "/v3/maintenance/downgrade", {"action": "ENABLE", "version": "3.2"})
    assert bad.json()["message"] == "etcdserver: invalid downgrade target version"
    assert _post(url, "/v3/maintenance/downgrade", {"action": "ENABLE", "version": "3.3"}).status_code == 200
    busy = _post(url, "/v3/maintenance/downgrade", {"action": "VALIDATE", "version": "3.3"})
    assert busy.json()["message"] == "etcdserver: cluster has a downgrade job in progress"
    assert _post(url, "/v3/maintenance/downgrade", {"action": "CANCEL"}).status_code == 200
    idle = _post(url, "/v3/maintenance/downgrade", {"action": "CANCEL"})
    assert (idle.status_code, idle.json()["code"]) == (412, 9)


@pytest.fixture(scope="module")
def with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Quota servers with auth on, so writes are proposed stamped with their user."""
    with _both(tmp_path_factory, "-auth", QUOTA) as both:
        yield both


def _root_token(url: str) -> str:
    for path, body in (("/v3/auth/user/add", {"name": "root", "password": "pw"}),
                       ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                       ("/v3/auth/enable", {})):
        assert _post(url, path, body).status_code == 200, path
    token: str = _post(url, "/v3/auth/authenticate", {"name": "root", "password": "pw"}).json()["token"]
    return token


def test_the_quota_holds_for_writes_made_with_auth_on(with_auth: dict[str, Server]) -> None:
    value = base64.b64encode(os.urandom(150_000)).decode()
    outcomes = {}
    for name, server in with_auth.items():
        token = _root_token(server.url)
        puts = [httpx.post(server.url + "/v3/kv/put", json={"key": "YQ==", "value": value},
                           headers={"Authorization": token}, timeout=10) for _ in range(6)]
        outcomes[name] = (puts[0].status_code, sorted({p.text for p in puts if p.status_code != 200}),
                          puts[-1].status_code)
    assert outcomes["etcdpy"] == outcomes["etcd"]
    assert outcomes["etcd"][2] == 429 and [json.loads(r) for r in outcomes["etcd"][1]] == [NOSPACE]


def test_snapshot_status_table_is_etcdctls_for_a_seven_digit_hash() -> None:
    # etcdctl 3.4's `snapshot status -w table` for a snapshot whose hash is 0x9ac9d46 (asked on 127.0.0.1).
    from etcdpy.app.backup import SnapshotStatus
    from etcdpy.app.snapshot_cli import format_status

    assert format_status(SnapshotStatus(162307398, 17, 20, 20480), "table") == "\n".join([
        "+---------+----------+------------+------------+",
        "|  HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |",
        "+---------+----------+------------+------------+",
        "| 9ac9d46 |       17 |         20 |      20 kB |",
        "+---------+----------+------------+------------+",
    ])
