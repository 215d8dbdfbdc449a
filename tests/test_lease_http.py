"""Leases over HTTP against a running etcdpy: server-chosen IDs, expiry, keepalive, restart."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx

from tests.servers import start_etcdpy

TIMEOUT_S = 10.0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=TIMEOUT_S)


def test_lease_lifecycle_and_restart(tmp_path: Path) -> None:
    srv = start_etcdpy(tmp_path)
    try:
        url = srv.url
        granted = post(url, "/v3/lease/grant", {"TTL": 30}).json()
        lease = int(granted["ID"])
        assert 0 < lease < 2**63 and granted["TTL"] == "30"
        other = int(post(url, "/v3/lease/grant", {"TTL": 30}).json()["ID"])
        assert other != lease
        put = post(url, "/v3/kv/put", {"key": b64("l/a"), "value": b64("1"), "lease": lease})
        assert put.status_code == 200
        rev = int(post(url, "/v3/kv/range", {"key": b64("l/a")}).json()["header"]["revision"])

        srv = srv.restart()  # leases and their keys survive; the TTL starts again in full
        url = srv.url
        ttl = post(url, "/v3/lease/timetolive", {"ID": lease, "keys": True}).json()
        assert ttl["grantedTTL"] == "30" and int(ttl["TTL"]) in (29, 30)
        assert ttl["keys"] == [b64("l/a")]
        listed = {x["ID"] for x in post(url, "/v3/lease/leases", {}).json()["leases"]}
        assert listed == {str(lease), str(other)}
        keepalive = post(url, "/v3/lease/keepalive", {"ID": lease}).json()
        assert keepalive["result"]["TTL"] == "30"
        assert post(url, "/v3/lease/revoke", {"ID": lease}).json()["header"]["revision"] == str(rev + 1)
        assert "kvs" not in post(url, "/v3/kv/range", {"key": b64("l/a")}).json()
    finally:
        srv.stop()


def test_expiry_revokes_and_keepalive_extends(tmp_path: Path) -> None:
    srv = start_etcdpy(tmp_path)
    try:
        url = srv.url
        for lease, key in ((1, "e/short"), (2, "e/kept")):
            post(url, "/v3/lease/grant", {"ID": lease, "TTL": 2}).raise_for_status()
            post(url, "/v3/kv/put", {"key": b64(key), "value": b64("v"), "lease": lease}).raise_for_status()
        deadline = time.monotonic() + TIMEOUT_S
        # Keep lease 2 alive while lease 1 expires (bounded poll: expiry is time-based).
        while time.monotonic() < deadline:
            post(url, "/v3/lease/keepalive", {"ID": 2}).raise_for_status()
            if "kvs" not in post(url, "/v3/kv/range", {"key": b64("e/short")}).json():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("lease 1 did not expire")
        assert post(url, "/v3/lease/timetolive", {"ID": 1}).json()["TTL"] == "-1"
        assert "kvs" in post(url, "/v3/kv/range", {"key": b64("e/kept")}).json()
        unknown = post(url, "/v3/lease/keepalive", {"ID": 1}).json()["result"]
        assert "TTL" not in unknown and unknown["ID"] == "1"
    finally:
        srv.stop()
