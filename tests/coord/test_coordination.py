"""etcdpy's own lock and election behaviour, where it goes beyond etcd 3.4 (a wait ends as soon as the
waiter's lease ends; a deadline or a client that leaves takes its key out of the queue) and the
`/election/sse` stream. One etcdpy server over HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Server, start_etcdpy

WAIT_S = 10.0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(Path(tmp_path_factory.mktemp("coord")))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=WAIT_S) as c:
        yield c


def post(client: httpx.Client, url: str, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return client.post(url + path, json=body, **kw)


def keys_under(client: httpx.Client, url: str, prefix: str) -> list[str]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    resp = post(client, url, "/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
    return [base64.b64decode(kv["key"]).decode() for kv in resp.json().get("kvs", [])]


def wait_keys(client: httpx.Client, url: str, prefix: str, n: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(keys_under(client, url, prefix)) != n:
        assert time.monotonic() < deadline, f"never {n} keys under {prefix}"
        time.sleep(0.02)


def grant(client: httpx.Client, url: str, lease: int, ttl: int = 600) -> None:
    post(client, url, "/v3/lease/grant", {"ID": lease, "TTL": ttl}).raise_for_status()


def test_revoked_lease_ends_a_waiting_lock(server: Server, client: httpx.Client) -> None:
    url = server.url
    grant(client, url, 0x11)
    grant(client, url, 0x12)
    post(client, url, "/v3/lock/lock", {"name": b64("rv"), "lease": 0x11}).raise_for_status()
    with ThreadPoolExecutor(1) as pool:
        waiter = pool.submit(post, httpx.Client(timeout=WAIT_S), url, "/v3/lock/lock",
                             {"name": b64("rv"), "lease": 0x12})
        wait_keys(client, url, "rv/", 2)
        post(client, url, "/v3/lease/revoke", {"ID": 0x12}).raise_for_status()
        resp = waiter.result()
    # etcd 3.4 would wait for the holder and then answer with a key that no longer exists.
    assert resp.status_code == 500
    assert resp.json() == {"error": "mutex: session is expired", "message": "mutex: session is expired",
                           "code": 2}
    assert keys_under(client, url, "rv/") == ["rv/11"]


def test_expired_lease_ends_a_waiting_campaign(server: Server, client: httpx.Client) -> None:
    url = server.url
    grant(client, url, 0x21)
    grant(client, url, 0x22, ttl=2)  # never kept alive
    body = {"name": b64("ex"), "value": b64("a"), "lease": 0x21}
    post(client, url, "/v3/election/campaign", body).raise_for_status()
    started = time.monotonic()
    resp = post(client, url, "/v3/election/campaign", {"name": b64("ex"), "value": b64("b"), "lease": 0x22})
    assert resp.status_code == 500
    assert resp.json()["message"] == "etcdserver: requested lease not found"
    assert time.monotonic() - started < 6.0  # ended by the expiry, not by some later event
    assert keys_under(client, url, "ex/") == ["ex/21"]


@pytest.mark.parametrize("path", ["/v3/lock/lock", "/v3/election/campaign"])
def test_deadline_takes_the_waiter_out_of_the_queue(server: Server, client: httpx.Client, path: str) -> None:
    url = server.url
    name = "dl" + path.rsplit("/", 1)[1]
    first, second = (0x31, 0x32) if "lock" in path else (0x33, 0x34)
    grant(client, url, first)
    grant(client, url, second)
    post(client, url, path, {"name": b64(name), "lease": first}).raise_for_status()
    resp = post(client, url, path, {"name": b64(name), "lease": second}, headers={"Grpc-Timeout": "300m"})
    assert resp.status_code == 504
    assert resp.json()["message"] == "context deadline exceeded"
    assert keys_under(client, url, f"{name}/") == [f"{name}/{first:x}"]


def test_client_leaving_a_campaign_takes_its_key_out(server: Server, client: httpx.Client) -> None:
    url = server.url
    grant(client, url, 0x41)
    grant(client, url, 0x42)
    post(client, url, "/v3/election/campaign", {"name": b64("cg"), "lease": 0x41}).raise_for_status()
    with pytest.raises(httpx.TimeoutException):
        post(client, url, "/v3/election/campaign", {"name": b64("cg"), "lease": 0x42}, timeout=0.5)
    wait_keys(client, url, "cg/", 1)
    assert keys_under(client, url, "cg/") == ["cg/41"]


def _sse_events(lines: Iterator[str], n: int) -> list[tuple[str, dict[str, Any]]]:
    """The next `n` data events from an SSE line iterator, with their ids."""
    out: list[tuple[str, dict[str, Any]]] = []
    eid = ""
    for line in lines:
        if line.startswith("id: "):
            eid = line[4:]
        elif line.startswith("data: "):
            out.append((eid, json.loads(line[6:])))
            if len(out) == n:
                return out
    raise AssertionError("stream ended early")


def open_sse(sse: httpx.Client, url: str, last_id: str = "") -> Any:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    return sse.stream("GET", f"{url}/election/sse", params={"name": "dash"}, headers=headers)


def test_election_sse_reports_and_resumes(server: Server, client: httpx.Client) -> None:
    url = server.url
    grant(client, url, 0x51)
    won = post(client, url, "/v3/election/campaign", {"name": b64("dash"), "value": b64("a"), "lease": 0x51})
    leader = won.json()["leader"]
    with httpx.Client(timeout=WAIT_S) as sse, open_sse(sse, url) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        first = _sse_events(lines, 1)
        post(client, url, "/v3/election/proclaim", {"leader": leader, "value": b64("a2")}).raise_for_status()
        second = _sse_events(lines, 1)
    (id1, d1), (id2, d2) = first[0], second[0]
    assert base64.b64decode(d1["kv"]["value"]) == b"a" and id1 == d1["revision"]
    assert base64.b64decode(d2["kv"]["value"]) == b"a2" and int(id2) > int(id1)
    # Resuming after the last report: nothing is repeated; the next change comes through.
    with httpx.Client(timeout=WAIT_S) as sse, open_sse(sse, url, id2) as resp:
        post(client, url, "/v3/election/proclaim", {"leader": leader, "value": b64("a3")}).raise_for_status()
        (_, d3), = _sse_events(resp.iter_lines(), 1)
    assert base64.b64decode(d3["kv"]["value"]) == b"a3"
    # Resuming from before the last change: the current leader is sent.
    with httpx.Client(timeout=WAIT_S) as sse, open_sse(sse, url, id1) as resp:
        (_, d4), = _sse_events(resp.iter_lines(), 1)
    assert base64.b64decode(d4["kv"]["value"]) == b"a3"
