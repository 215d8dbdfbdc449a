"""etcd3gw's watch and lease calls against etcdpy, and against real etcd 3.4 as a check on the tests.

etcd3gw parses its watch stream chunk by chunk (`iter_content(chunk_size=None)` + `json.loads` per
chunk), so these tests also prove that every watch message is one HTTP chunk.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest
from etcd3gw.client import Etcd3Client

from tests.etcd3gw_support import clean_client, running
from tests.servers import Server

TIMEOUT_S = 10.0


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(request.param, tmp_path_factory.mktemp(f"gw-{request.param}")) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[Etcd3Client]:
    with clean_client(server, TIMEOUT_S) as c:
        yield c


def _collect(events: Iterator[dict], n: int) -> list[dict]:  # type: ignore[type-arg]
    out: queue.Queue[dict] = queue.Queue()  # type: ignore[type-arg]

    def run() -> None:
        for _ in range(n):
            out.put(next(events))

    threading.Thread(target=run, daemon=True).start()
    return [out.get(timeout=TIMEOUT_S) for _ in range(n)]



def test_watch_and_cancel(client: Etcd3Client) -> None:
    events, cancel = client.watch("gw/a")
    # etcd3gw returns before the watch is created: put until the first event arrives, then continue.
    got: queue.Queue[dict] = queue.Queue()  # type: ignore[type-arg]

    def reader() -> None:
        for ev in events:
            got.put(ev)

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + TIMEOUT_S
    first = None
    while first is None and time.monotonic() < deadline:
        client.put("gw/a", "probe")
        try:
            first = got.get(timeout=0.2)
        except queue.Empty:
            pass
    assert first is not None and first["kv"]["key"] == b"gw/a"
    while not got.empty():
        got.get()
    client.put("gw/a", "1")
    client.delete("gw/a")
    ev1 = got.get(timeout=TIMEOUT_S)
    while ev1["kv"].get("value") == b"probe":
        ev1 = got.get(timeout=TIMEOUT_S)
    ev2 = got.get(timeout=TIMEOUT_S)
    assert ev1["kv"]["value"] == b"1" and "type" not in ev1
    assert ev2["type"] == "DELETE" and ev2["kv"]["key"] == b"gw/a"
    cancel()


def test_watch_prefix_from_history(client: Etcd3Client) -> None:
    client.put("gw/p/1", "a")
    rev = int(client.get("gw/p/1", metadata=True)[0][1]["mod_revision"])
    client.put("gw/p/2", "b")
    client.put("gw/q", "outside")
    events, cancel = client.watch_prefix("gw/p/", start_revision=rev)
    got = _collect(events, 2)
    assert [e["kv"]["key"] for e in got] == [b"gw/p/1", b"gw/p/2"]
    cancel()


def test_watch_once_with_prev_kv(client: Etcd3Client) -> None:
    client.put("gw/once", "old")
    rev = int(client.get("gw/once", metadata=True)[0][1]["mod_revision"])
    client.put("gw/once", "new")
    event = client.watch_once("gw/once", timeout=TIMEOUT_S, start_revision=rev + 1, prev_kv=True)
    assert event["kv"]["value"] == b"new"
    assert event["prev_kv"]["value"] == "b2xk"  # etcd3gw decodes kv only; prev_kv stays base64


def test_lease_grant_keys_refresh_ttl_revoke(client: Etcd3Client) -> None:
    lease = client.lease(ttl=60)
    assert lease.id > 0
    assert client.put("gw/l/a", "1", lease=lease)
    assert client.put("gw/l/b", "2", lease=lease)
    assert sorted(lease.keys()) == [b"gw/l/a", b"gw/l/b"]
    assert 55 <= lease.ttl() <= 60
    assert lease.refresh() == 60
    assert any(int(item["ID"]) == lease.id for item in client.post(
        client.get_url("/lease/leases"), json={}).get("leases", []))
    assert lease.revoke()
    assert client.get("gw/l/a") == [] and client.get("gw/l/b") == []
    assert lease.ttl() == -1
    assert lease.refresh() == -1  # keepalive of a revoked lease: no TTL in the answer


def test_lease_expiry_deletes_keys_and_notifies(client: Etcd3Client) -> None:
    lease = client.lease(ttl=2)
    client.put("gw/exp", "v", lease=lease)
    rev = int(client.get("gw/exp", metadata=True)[0][1]["mod_revision"])
    events, cancel = client.watch("gw/exp", start_revision=rev + 1)
    got = _collect(events, 1)  # the expiry's DELETE (TTL 2 s; etcd checks every 500 ms)
    assert got[0]["type"] == "DELETE"
    assert client.get("gw/exp") == []
    cancel()
