"""The plain REST view (`/kv/{key}`, beyond etcd) against a live etcdpy: raw values in and out (binary
too), listings, `?rev=`, ETag / If-Match compare-and-swap, `?watch=true` as server-sent events, and the
v3 API's permissions applied to it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, start_etcdpy

TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(Path(tmp_path_factory.mktemp("restkv")))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_put_get_text_and_binary(client: httpx.Client) -> None:
    r = client.put("/kv/greeting", content=b"hello")
    assert r.status_code == 200
    rev = r.json()["revision"]
    assert r.headers["etag"] == f'"{rev}"'
    got = client.get("/kv/greeting")
    assert got.status_code == 200
    assert got.content == b"hello"
    assert got.headers["etag"] == f'"{rev}"'
    assert got.headers["x-etcd-version"] == "1"
    # Binary values and keys (percent-encoded) go through untouched; the v3 API sees the same bytes.
    blob = bytes(range(256))
    assert client.put("/kv/bin%FF%00key", content=blob).status_code == 200
    assert client.get("/kv/bin%FF%00key").content == blob
    v3 = client.post("/v3/kv/range", json={"key": _b64(b"bin\xff\x00key")}).json()
    assert base64.b64decode(v3["kvs"][0]["value"]) == blob


def test_keys_with_slashes_are_not_cleaned(client: httpx.Client) -> None:
    assert client.put("/kv/%2Fetc%2F..%2Fpasswd", content=b"x", follow_redirects=False).status_code == 200
    v3 = client.post("/v3/kv/range", json={"key": _b64(b"/etc/../passwd")}).json()
    assert v3["kvs"][0]["value"] == _b64(b"x")
    assert client.get("/kv/a//b", follow_redirects=False).status_code == 404


def test_missing_key_is_404_with_etcd_error(client: httpx.Client) -> None:
    r = client.get("/kv/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "etcdpy: key not found", "message": "etcdpy: key not found", "code": 5}


def test_rev_reads_history(client: httpx.Client) -> None:
    first = client.put("/kv/hist", content=b"v1").json()["revision"]
    client.put("/kv/hist", content=b"v2")
    assert client.get("/kv/hist").content == b"v2"
    assert client.get("/kv/hist", params={"rev": first}).content == b"v1"
    bad = client.get("/kv/hist", params={"rev": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == 3


def test_prefix_listing_text_and_base64(client: httpx.Client) -> None:
    client.put("/kv/list/a", content=b"1")
    client.put("/kv/list/b", content=b"\xff\xfe")
    client.put("/kv/list/%FF", content=b"3")
    body = client.get("/kv/list/", params={"prefix": "true"}).json()
    assert body["count"] == 3
    entries = body["kvs"]
    assert entries[0]["key"] == "list/a" and entries[0]["value"] == "1"
    assert entries[1]["key"] == "list/b" and entries[1]["value_base64"] == _b64(b"\xff\xfe")
    assert entries[2]["key_base64"] == _b64(b"list/\xff")
    assert isinstance(entries[0]["mod_revision"], int)
    keys = client.get("/kv/list/", params={"prefix": "true", "keys_only": "true", "limit": 1}).json()
    assert keys["more"] is True and "value" not in keys["kvs"][0]


def test_if_match_compare_and_swap(client: httpx.Client) -> None:
    tag = client.put("/kv/cas", content=b"one").headers["etag"]
    ok = client.put("/kv/cas", content=b"two", headers={"If-Match": tag})
    assert ok.status_code == 200
    new_tag = ok.headers["etag"]
    stale = client.put("/kv/cas", content=b"three", headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["code"] == 9
    assert stale.headers["etag"] == new_tag  # the current version, to retry with
    assert client.get("/kv/cas").content == b"two"
    # Create-only and must-exist.
    assert client.put("/kv/cas", content=b"x", headers={"If-None-Match": "*"}).status_code == 412
    assert client.put("/kv/fresh", content=b"x", headers={"If-None-Match": "*"}).status_code == 200
    assert client.put("/kv/absent", content=b"x", headers={"If-Match": "*"}).status_code == 412
    # A conditional delete.
    assert client.delete("/kv/cas", headers={"If-Match": tag}).status_code == 412
    gone = client.delete("/kv/cas", headers={"If-Match": new_tag})
    assert gone.status_code == 200 and gone.json()["deleted"] == 1
    assert client.get("/kv/cas").status_code == 404


def test_if_none_match_on_get_is_304(client: httpx.Client) -> None:
    tag = client.put("/kv/cached", content=b"c").headers["etag"]
    assert client.get("/kv/cached", headers={"If-None-Match": tag}).status_code == 304
    assert client.get("/kv/cached", headers={"If-None-Match": '"1"'}).status_code == 200


def test_delete_prefix(client: httpx.Client) -> None:
    for name in ("x", "y"):
        client.put(f"/kv/del/{name}", content=b"v")
    r = client.delete("/kv/del/", params={"prefix": "true"})
    assert r.json()["deleted"] == 2
    assert client.get("/kv/del/", params={"prefix": "true"}).json()["count"] == 0


def test_lease_attaches(client: httpx.Client) -> None:
    lease = client.post("/v3/lease/grant", json={"TTL": 60}).json()["ID"]
    assert client.put("/kv/leased", params={"lease": lease}, content=b"v").status_code == 200
    assert client.get("/kv/leased").headers["x-etcd-lease"] == lease


def test_watch_as_server_sent_events(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        start = c.put("/kv/w/first", content=b"1").json()["revision"]
        seen: list[dict[str, object]] = []
        with c.stream("GET", "/kv/w/", params={"prefix": "true", "watch": "true", "rev": start}) as s:
            assert s.status_code == 200
            assert s.headers["content-type"].startswith("text/event-stream")
            writer = threading.Thread(target=lambda: httpx.put(f"{server.url}/kv/w/second", content=b"2"))
            started = False
            for line in s.iter_lines():
                if line.startswith("event: created") and not started:
                    started = True
                    writer.start()
                if line.startswith("data: ") and "events" in line:
                    seen.append(json.loads(line[6:]))
                    if len(seen) == 2:
                        break
            writer.join()
    keys = [base64.b64decode(str(m["events"][0]["kv"]["key"])) for m in seen]  # type: ignore[index]
    assert keys == [b"w/first", b"w/second"]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(Path(tmp_path_factory.mktemp("restkv-auth")))
    try:
        with httpx.Client(base_url=srv.url, timeout=TIMEOUT) as c:
            for path, body in (
                ("/v3/auth/user/add", {"name": "root", "password": "rootpw"}),
                ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                ("/v3/auth/user/add", {"name": "alice", "password": "alicepw"}),
                ("/v3/auth/role/add", {"name": "pub"}),
                ("/v3/auth/role/grant", {"name": "pub", "perm": {
                    "permType": "READWRITE", "key": _b64(b"pub/"), "range_end": _b64(b"pub0")}}),
                ("/v3/auth/user/grant", {"user": "alice", "role": "pub"}),
                ("/v3/auth/enable", {}),
            ):
                assert c.post(path, json=body).status_code == 200, path
        yield srv
    finally:
        srv.stop()


def _token(url: str, name: str, password: str) -> str:
    r = httpx.post(f"{url}/v3/auth/authenticate", json={"name": name, "password": password}, timeout=TIMEOUT)
    return str(r.json()["token"])


def test_same_permissions_as_v3(auth_server: Server) -> None:
    alice = {"Authorization": _token(auth_server.url, "alice", "alicepw")}
    with httpx.Client(base_url=auth_server.url, timeout=TIMEOUT) as c:
        assert c.put("/kv/pub/x", content=b"ok", headers=alice).status_code == 200
        assert c.get("/kv/pub/x", headers=alice).content == b"ok"
        denied = c.put("/kv/secret", content=b"no", headers=alice)
        assert denied.status_code == 403
        assert denied.json() == {"error": "etcdserver: permission denied",
                                 "message": "etcdserver: permission denied", "code": 7}
        assert c.get("/kv/secret", headers=alice).status_code == 403
        assert c.get("/kv/", params={"prefix": "true"}, headers=alice).status_code == 403
        assert c.get("/kv/secret", params={"watch": "true"}, headers=alice).status_code == 403
        no_user = c.get("/kv/pub/x")
        assert no_user.status_code == 400 and no_user.json()["message"] == "etcdserver: user name is empty"
        bad = c.get("/kv/pub/x", headers={"Authorization": "bogus"})
        assert bad.status_code == 401 and bad.json()["code"] == 16
