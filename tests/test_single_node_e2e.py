"""End-to-end checks of one etcdpy member over HTTP, the way a user with curl drives the v3 gateway.

The gateway ignores Content-Type (curl -d sends application/x-www-form-urlencoded), every write makes
exactly one revision, a graceful restart (SIGTERM) keeps all data and the revision counter, and a
compaction (logical or physical) makes older revisions unreadable without creating a revision.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Server, start_etcdpy

CLIENT_TIMEOUT_S = 10.0
COMPACTED = {"error": "etcdserver: mvcc: required revision has been compacted",
             "message": "etcdserver: mvcc: required revision has been compacted", "code": 11}
FUTURE = {"error": "etcdserver: mvcc: required revision is a future revision",
          "message": "etcdserver: mvcc: required revision is a future revision", "code": 11}


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode()


class Api:
    """POSTs raw JSON text, as curl -d does, with a chosen Content-Type (None: no header at all)."""

    def __init__(self, url: str, content_type: str | None = "application/json") -> None:
        self.url = url
        self.content_type = content_type
        self.http = httpx.Client(timeout=CLIENT_TIMEOUT_S)

    def raw(self, path: str, body: dict[str, Any] | str) -> httpx.Response:
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        req = self.http.build_request("POST", f"{self.url}{path}", content=text.encode(), headers=headers)
        if self.content_type is None:
            assert "content-type" not in req.headers
        return self.http.send(req)

    def ok(self, path: str, body: dict[str, Any] | str) -> dict[str, Any]:
        resp = self.raw(path, body)
        assert resp.status_code == 200, f"{path} {body}: {resp.status_code} {resp.text}"
        assert resp.headers["content-type"] == "application/json"
        out: dict[str, Any] = resp.json()
        return out

    def err(self, path: str, body: dict[str, Any] | str, status: int = 400) -> dict[str, Any]:
        resp = self.raw(path, body)
        assert resp.status_code == status, f"{path} {body}: {resp.status_code} {resp.text}"
        out: dict[str, Any] = resp.json()
        return out

    def rev(self) -> int:
        return int(self.ok("/v3/kv/range", {"key": b64("\0")})["header"]["revision"])

    def put(self, key: str, value: str) -> int:
        return int(self.ok("/v3/kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def get(self, key: str, revision: int = 0) -> str | None:
        body: dict[str, Any] = {"key": b64(key)}
        if revision:
            body["revision"] = str(revision)
        kvs = self.ok("/v3/kv/range", body).get("kvs", [])
        return unb64(kvs[0].get("value", "")) if kvs else None

    def dump(self) -> list[tuple[str, str, str, str, str]]:
        kvs = self.ok("/v3/kv/range", {"key": b64("\0"), "range_end": b64("\0")}).get("kvs", [])
        return [(unb64(kv["key"]), unb64(kv.get("value", "")), kv["create_revision"], kv["mod_revision"],
                 kv["version"]) for kv in kvs]

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that do not restart it; each starts from an empty keyspace."""
    srv = start_etcdpy(tmp_path_factory.mktemp("shared"))
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that kill or restart it."""
    srv = start_etcdpy(tmp_path)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def api(shared: Server) -> Iterator[Api]:
    a = Api(shared.url)
    a.ok("/v3/kv/deleterange", {"key": b64("\0"), "range_end": b64("\0")})
    yield a
    a.close()


@pytest.fixture
def own_api(server: Server) -> Iterator[Api]:
    a = Api(server.url)
    yield a
    a.close()


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "application/json",
                                          "text/plain"])
def test_round_trip_any_content_type(shared: Server, content_type: str | None) -> None:
    api = Api(shared.url, content_type)
    try:
        start = api.rev()
        put = api.ok("/v3/kv/put", {"key": b64("foo"), "value": b64("bar")})
        assert put["header"]["revision"] == str(start + 1)
        assert set(put["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}

        rng = api.ok("/v3/kv/range", {"key": b64("foo")})
        assert rng["kvs"] == [{"key": b64("foo"), "create_revision": str(start + 1),
                               "mod_revision": str(start + 1), "version": "1", "value": b64("bar")}]
        assert rng["count"] == "1"

        txn = api.ok("/v3/kv/txn", {
            "compare": [{"key": b64("foo"), "target": "VALUE", "result": "EQUAL", "value": b64("bar")}],
            "success": [{"request_put": {"key": b64("foo"), "value": b64("baz"), "prev_kv": True}}],
            "failure": [{"request_range": {"key": b64("foo")}}],
        })
        assert txn["succeeded"] is True
        assert txn["header"]["revision"] == str(start + 2)
        assert txn["responses"][0]["response_put"]["prev_kv"]["value"] == b64("bar")

        deleted = api.ok("/v3/kv/deleterange", {"key": b64("foo"), "prev_kv": True})
        assert deleted["deleted"] == "1"
        assert deleted["prev_kvs"][0]["value"] == b64("baz")
        assert deleted["header"]["revision"] == str(start + 3)
        assert api.get("foo") is None

        compact = api.ok("/v3/kv/compaction", {"revision": str(start + 2)})
        assert compact == {"header": {**put["header"], "revision": str(start + 3)}}
        assert api.get("foo", revision=start + 2) == "baz"
        assert api.err("/v3/kv/range", {"key": b64("foo"), "revision": str(start + 1)}) == COMPACTED
    finally:
        api.close()


def test_empty_null_and_trailing_bodies(api: Api) -> None:
    api.put("e", "1")
    for body in ("", "{}", "null"):
        assert api.ok("/v3/kv/txn", body)["succeeded"] is True  # an empty txn: compares hold vacuously
        assert api.err("/v3/kv/range", body) == {"error": "etcdserver: key is not provided",
                                                 "message": "etcdserver: key is not provided", "code": 3}
    assert api.ok("/v3/kv/range", '{"key":"ZQ=="} trailing garbage')["kvs"][0]["value"] == b64("1")
    # lowerCamelCase and string/number int64s are accepted alike.
    assert api.ok("/v3/kv/range", {"key": b64("\0"), "rangeEnd": b64("\0"), "countOnly": True,
                                   "limit": 1})["count"] == "1"


def test_with_curl(shared: Server) -> None:
    server = shared
    def curl(*args: str) -> str:
        return subprocess.run(["curl", "-sS", *args], check=True, capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S).stdout

    body = json.dumps({"key": b64("curl"), "value": b64("yes")})
    put = json.loads(curl("-d", body, f"{server.url}/v3/kv/put"))
    rev = put["header"]["revision"]
    got = json.loads(curl("-d", json.dumps({"key": b64("curl")}), f"{server.url}/v3/kv/range"))
    assert got["kvs"][0]["value"] == b64("yes") and got["kvs"][0]["mod_revision"] == rev
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "GET", f"{server.url}/v3/kv/range") == "405"
    assert json.loads(curl(f"{server.url}/health")) == {"health": "true"}


def test_revision_increments(api: Api) -> None:
    r = api.rev()
    assert api.put("a", "1") == r + 1
    assert api.put("a", "2") == r + 2  # overwrite: new revision, same key
    many = api.ok("/v3/kv/txn", {"success": [
        {"request_put": {"key": b64(f"t{i}"), "value": b64(str(i))}} for i in range(5)]})
    assert many["header"]["revision"] == str(r + 3)  # one revision for the whole txn
    assert {kv[3] for kv in api.dump() if kv[0].startswith("t")} == {str(r + 3)}
    # Writes that change nothing make no revision.
    assert "deleted" not in api.ok("/v3/kv/deleterange", {"key": b64("nope")})
    readonly = api.ok("/v3/kv/txn", {"success": [{"request_range": {"key": b64("a")}}]})
    assert readonly["header"]["revision"] == str(r + 3)
    failed = api.ok("/v3/kv/txn", {
        "compare": [{"key": b64("a"), "target": "VERSION", "result": "EQUAL", "version": "99"}],
        "success": [{"request_put": {"key": b64("a"), "value": b64("x")}}],
    })
    assert "succeeded" not in failed and failed["header"]["revision"] == str(r + 3)
    api.ok("/v3/kv/compaction", {"revision": str(r + 1)})
    assert api.rev() == r + 3
    # A range delete of several keys is one revision; versions restart after a delete.
    deleted = api.ok("/v3/kv/deleterange", {"key": b64("t"), "range_end": b64("u")})
    assert (deleted["deleted"], deleted["header"]["revision"]) == ("5", str(r + 4))
    assert api.put("t0", "again") == r + 5
    assert [kv for kv in api.dump() if kv[0] == "t0"] == [("t0", "again", str(r + 5), str(r + 5), "1")]
    # A failed write (unknown lease) makes no revision either.
    api.err("/v3/kv/put", {"key": b64("l"), "value": b64("v"), "lease": "999"}, status=404)
    assert api.rev() == r + 5


def test_restart_keeps_data_and_revision(server: Server, own_api: Api) -> None:
    api = own_api
    for i in range(30):
        api.put(f"k/{i % 10}", f"v{i}")
    api.ok("/v3/kv/deleterange", {"key": b64("k/7")})
    api.ok("/v3/kv/txn", {"success": [{"request_put": {"key": b64("k/txn"), "value": b64("t")}},
                                      {"request_delete_range": {"key": b64("k/8")}}]})
    before, rev = api.dump(), api.rev()
    old = api.get("k/3", revision=rev - 20)

    server = server.restart()  # SIGTERM, wait, start again on the same data dir and port
    try:
        assert api.dump() == before
        assert api.rev() == rev
        assert api.get("k/3", revision=rev - 20) == old  # history survives too
        assert api.put("k/new", "n") == rev + 1  # the counter continues, it does not restart
        assert api.ok("/v3/kv/range", {"key": b64("k/new")})["kvs"][0]["create_revision"] == str(rev + 1)
    finally:
        server.kill()


def test_compaction_errors(api: Api) -> None:
    revs = [api.put("c", f"v{i}") for i in range(5)]
    api.ok("/v3/kv/compaction", {"revision": str(revs[2])})
    assert api.get("c", revision=revs[2]) == "v2"  # exactly at the compaction revision still reads
    assert api.get("c", revision=revs[3]) == "v3"
    assert api.err("/v3/kv/range", {"key": b64("c"), "revision": str(revs[1])}) == COMPACTED
    assert api.err("/v3/kv/range", {"key": b64("c"), "revision": "1"}) == COMPACTED
    # Compacting at or below the current compaction point: the same error; beyond the head: future.
    assert api.err("/v3/kv/compaction", {"revision": str(revs[2])}) == COMPACTED
    assert api.err("/v3/kv/compaction", {"revision": str(revs[0])}) == COMPACTED
    assert api.err("/v3/kv/compaction", {"revision": str(revs[4] + 10)}) == FUTURE
    assert api.err("/v3/kv/range", {"key": b64("c"), "revision": str(revs[4] + 1)}) == FUTURE
    # A txn reading below the compaction point fails as a whole and writes nothing.
    assert api.err("/v3/kv/txn", {"success": [
        {"request_put": {"key": b64("side"), "value": b64("effect")}},
        {"request_range": {"key": b64("c"), "revision": str(revs[0])}}]}) == COMPACTED
    assert api.get("side") is None
    assert api.rev() == revs[4]


def test_physical_compaction(server: Server, own_api: Api) -> None:
    api = own_api
    revs = [api.put(f"p/{i % 3}", f"v{i}") for i in range(60)]
    api.ok("/v3/kv/deleterange", {"key": b64("p/0")})
    head = api.rev()
    latest = api.dump()
    target = revs[40]
    at_target = [api.get(f"p/{i}", revision=target) for i in range(3)]

    resp = api.ok("/v3/kv/compaction", {"revision": str(target), "physical": True})
    assert resp["header"]["revision"] == str(head)  # compaction makes no revision
    assert api.rev() == head
    for rev in (revs[0], revs[20], target - 1):
        assert api.err("/v3/kv/range", {"key": b64("p/"), "range_end": b64("p0"),
                                        "revision": str(rev)}) == COMPACTED
    assert [api.get(f"p/{i}", revision=target) for i in range(3)] == at_target
    assert api.dump() == latest

    # The compaction is durable: after a crash the old revisions stay gone and the rest stays.
    server.kill()
    server = server.restart()
    try:
        assert api.rev() == head
        assert api.err("/v3/kv/range", {"key": b64("p/1"), "revision": str(target - 1)}) == COMPACTED
        assert [api.get(f"p/{i}", revision=target) for i in range(3)] == at_target
        assert api.dump() == latest
        assert api.put("p/after", "x") == head + 1
    finally:
        server.kill()
