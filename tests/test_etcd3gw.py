"""The etcd3gw client (PyPI `etcd3gw`) against etcdpy, and against real etcd 3.4 as a check on the tests.

Each test runs against both servers and asserts explicit outcomes, so a passing etcd run shows the
expectations are etcd's and a failing etcdpy run is an etcdpy difference. What etcd3gw sends (from its
source): JSON bodies with base64 keys, enums as numbers (`sort_order: 0`), `create_revision: 0` as a
number, and `transaction()` posts `json.dumps(txn)` with no Content-Type header at all.

Watch, lease and lock calls are covered elsewhere.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from etcd3gw import exceptions
from etcd3gw.client import Etcd3Client

from tests.etcd3gw_support import clean_client, running
from tests.servers import Server

CLIENT_TIMEOUT_S = 10.0


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[Etcd3Client]:
    with clean_client(server, CLIENT_TIMEOUT_S) as c:
        yield c


def current_revision(c: Etcd3Client) -> int:
    return int(c.post(c.get_url("/kv/range"), json={"key": b64("\0")})["header"]["revision"])


def test_version_discovery_picks_v3(server: Server) -> None:
    parts = urlsplit(server.url)
    c = Etcd3Client(host="127.0.0.1", port=parts.port or 2379, protocol="http", api_path=None)
    try:
        assert c.api_path == "/v3/"  # from GET /version: etcdserver 3.4.x
        assert c.get_url("/kv/put") == f"{server.url}/v3/kv/put"
        version = c.session.get(f"{server.url}/version").json()
        assert version["etcdserver"].startswith("3.4.")
        assert version["etcdcluster"] == "3.4.0"
    finally:
        c.session.close()


def test_put_get_delete(client: Etcd3Client) -> None:
    rev = current_revision(client)
    assert client.put("gw/a", "alpha") is True
    assert client.get("gw/a") == [b"alpha"]
    assert client.put("gw/a", "beta") is True
    [(value, meta)] = client.get("gw/a", metadata=True)
    assert value == b"beta"
    assert meta["key"] == b"gw/a"
    assert (meta["create_revision"], meta["mod_revision"], meta["version"]) == (
        str(rev + 1), str(rev + 2), "2")
    assert client.get("gw/missing") == []
    assert client.delete("gw/a") is True
    assert client.get("gw/a") == []
    assert client.delete("gw/a") is False  # nothing deleted: no `deleted` in the answer
    assert current_revision(client) == rev + 3  # the no-op delete made no revision


def test_binary_and_empty_values(client: Etcd3Client) -> None:
    blob = bytes(range(256))
    assert client.put(b"gw/bin\x00\xff", blob)
    assert client.get(b"gw/bin\x00\xff") == [blob]
    assert client.put("gw/empty", "")
    [(value, meta)] = client.get("gw/empty", metadata=True)
    assert value == b"" and "value" not in meta  # empty value is omitted on the wire
    assert client.put("gw/uni", "héllo".encode())
    assert client.get("gw/uni") == ["héllo".encode()]


def test_get_options(client: Etcd3Client) -> None:
    for i, v in enumerate(["c", "a", "b"]):
        client.put(f"gw/opt/{i}", v)
    rev_after_first = current_revision(client) - 2
    assert [m["key"] for _, m in client.get_prefix("gw/opt/")] == [b"gw/opt/0", b"gw/opt/1", b"gw/opt/2"]
    assert [v for v, _ in client.get_prefix("gw/opt/", sort_order="descend")] == [b"b", b"a", b"c"]
    assert [v for v, _ in client.get_prefix("gw/opt/", sort_order="ascend", sort_target="value")] == [
        b"a", b"b", b"c"]
    assert client.get("gw/opt/", range_end="gw/opt0", limit=2) == [b"c", b"a"]
    assert client.get("gw/opt/", range_end="gw/opt0", revision=rev_after_first) == [b"c"]
    [(value, meta)] = client.get("gw/opt/1", metadata=True, keys_only=True)
    assert value == b"" and meta["key"] == b"gw/opt/1"
    # count_only answers without kvs, which etcd3gw reports as no values.
    assert client.get("gw/opt/", range_end="gw/opt0", count_only=True) == []
    assert client.get("gw/opt/", range_end="gw/opt0", min_mod_revision=rev_after_first + 1) == [b"a", b"b"]
    with pytest.raises(ValueError):
        client.get("gw/opt/0", sort_order="sideways")  # type: ignore[call-overload]


def test_prefix_and_all(client: Etcd3Client) -> None:
    for k in ["gw/p/1", "gw/p/2", "gw/p/3", "gw/q/1", "other"]:
        client.put(k, k.upper())
    assert [(v, m["key"]) for v, m in client.get_prefix("gw/p/")] == [
        (b"GW/P/1", b"gw/p/1"), (b"GW/P/2", b"gw/p/2"), (b"GW/P/3", b"gw/p/3")]
    assert [m["key"] for _, m in client.get_all()] == [b"gw/p/1", b"gw/p/2", b"gw/p/3", b"gw/q/1", b"other"]
    assert [m["key"] for _, m in client.get_all(sort_order="descend")] == [
        b"other", b"gw/q/1", b"gw/p/3", b"gw/p/2", b"gw/p/1"]
    rev = current_revision(client)
    assert client.delete_prefix("gw/p/") is True
    assert current_revision(client) == rev + 1  # one deleterange, one revision for all three keys
    assert client.get_prefix("gw/p/") == []
    assert client.delete_prefix("gw/p/") is False
    assert [m["key"] for _, m in client.get_all()] == [b"gw/q/1", b"other"]
    assert client.delete("\0", range_end="\0", prev_kv=True) is True
    assert client.get_all() == []


def test_transaction_success_and_failure(client: Etcd3Client) -> None:
    client.put("gw/txn/k", "v1")
    rev = current_revision(client)
    txn = {
        "compare": [{"key": b64("gw/txn/k"), "result": "EQUAL", "target": "VALUE", "value": b64("v1")}],
        "success": [
            {"request_put": {"key": b64("gw/txn/k"), "value": b64("v2"), "prev_kv": True}},
            {"request_put": {"key": b64("gw/txn/other"), "value": b64("o")}},
            {"request_range": {"key": b64("gw/txn/k")}},
        ],
        "failure": [{"request_range": {"key": b64("gw/txn/k")}}],
    }
    res = client.transaction(txn)
    assert res["succeeded"] is True
    assert res["header"]["revision"] == str(rev + 1)  # two puts, one revision
    put, put2, rng = res["responses"]
    assert put["response_put"]["header"] == {"revision": str(rev + 1)}
    assert base64.b64decode(put["response_put"]["prev_kv"]["value"]) == b"v1"
    assert "response_put" in put2
    assert [base64.b64decode(kv["value"]) for kv in rng["response_range"]["kvs"]] == [b"v2"]
    assert client.get("gw/txn/other") == [b"o"]

    # The same txn again: the compare fails, the failure branch runs, no `succeeded` on the wire.
    res = client.transaction(txn)
    assert "succeeded" not in res
    assert res["header"]["revision"] == str(rev + 1)
    [rng] = res["responses"]
    assert [base64.b64decode(kv["value"]) for kv in rng["response_range"]["kvs"]] == [b"v2"]


def test_transaction_compare_targets_and_delete(client: Etcd3Client) -> None:
    client.put("gw/t/a", "1")
    [(_, meta)] = client.get("gw/t/a", metadata=True)
    mod = meta["mod_revision"]
    res = client.transaction({
        "compare": [
            {"key": b64("gw/t/a"), "result": "EQUAL", "target": "MOD", "mod_revision": mod},
            {"key": b64("gw/t/a"), "result": "GREATER", "target": "VERSION", "version": 0},
            {"key": b64("gw/t/a"), "result": "LESS", "target": "CREATE", "create_revision": int(mod) + 1},
            {"key": b64("gw/t/a"), "result": "NOT_EQUAL", "target": "VALUE", "value": b64("2")},
        ],
        "success": [{"request_delete_range": {"key": b64("gw/t/a"), "prev_kv": True}}],
        "failure": [],
    })
    assert res["succeeded"] is True
    [resp] = res["responses"]
    assert resp["response_delete_range"]["deleted"] == "1"
    assert base64.b64decode(resp["response_delete_range"]["prev_kvs"][0]["value"]) == b"1"
    assert client.get("gw/t/a") == []
    # Nested txn and an empty txn.
    res = client.transaction({"success": [{"request_txn": {"success": [
        {"request_put": {"key": b64("gw/t/n"), "value": b64("nested")}}]}}]})
    assert res["succeeded"] is True
    assert res["responses"][0]["response_txn"]["succeeded"] is True
    assert client.get("gw/t/n") == [b"nested"]
    assert client.transaction({}) == {"header": res["header"], "succeeded": True}


def test_create_and_replace(client: Etcd3Client) -> None:
    assert client.create("gw/c", "first") is True
    assert client.create("gw/c", "second") is False
    assert client.get("gw/c") == [b"first"]
    assert client.replace("gw/c", "wrong", "x") is False
    assert client.get("gw/c") == [b"first"]
    assert client.replace("gw/c", "first", "second") is True
    assert client.get("gw/c") == [b"second"]
    assert client.replace("gw/absent", "", "x") is False  # a VALUE compare on a missing key fails
    assert client.get("gw/absent") == []


def test_errors_become_exceptions(client: Etcd3Client) -> None:
    client.put("gw/e", "1")
    rev = current_revision(client)
    with pytest.raises(exceptions.Etcd3Exception) as info:
        client.get("gw/e", revision=rev + 100)
    assert "required revision is a future revision" in str(info.value.detail_text)
    client.post(client.get_url("/kv/compaction"), json={"revision": rev})
    with pytest.raises(exceptions.Etcd3Exception) as info:
        client.get("gw/e", revision=rev - 1)
    assert "required revision has been compacted" in str(info.value.detail_text)
    assert client.get("gw/e", revision=rev) == [b"1"]  # exactly at the compaction point still reads
    with pytest.raises(exceptions.Etcd3Exception) as info:
        client.transaction({"success": [
            {"request_put": {"key": b64("gw/dup"), "value": b64("1")}},
            {"request_put": {"key": b64("gw/dup"), "value": b64("2")}},
        ]})
    assert "duplicate key given in txn request" in str(info.value.detail_text)
    # A lease that does not exist: 404 from the gateway, a plain Etcd3Exception here.
    with pytest.raises(exceptions.Etcd3Exception) as info:
        client.post(client.get_url("/kv/put"), json={"key": b64("gw/l"), "value": b64("v"), "lease": 12345})
    assert "requested lease not found" in str(info.value.detail_text)


def flag(server: Server, name: str) -> str:
    return server.argv[server.argv.index(name) + 1]


def test_status(client: Etcd3Client, server: Server) -> None:
    client.put("gw/s", "1")
    status = client.status()
    header = status["header"]
    assert status["version"] == "3.4.23"
    assert status["leader"] == header["member_id"]  # a single member leads itself
    assert int(status["dbSize"]) > 0 and 0 < int(status["dbSizeInUse"]) <= int(status["dbSize"])
    assert int(status["raftTerm"]) >= 1 and status["raftTerm"] == header["raft_term"]
    assert int(status["raftIndex"]) >= int(status["raftAppliedIndex"]) > 0
    assert header["revision"] == str(current_revision(client))
    assert "errors" not in status and "isLearner" not in status
    # Each write goes through the log: the applied index moves on.
    client.put("gw/s", "2")
    assert int(client.status()["raftAppliedIndex"]) > int(status["raftAppliedIndex"])


def test_members(client: Etcd3Client, server: Server) -> None:
    [member] = client.members()
    assert member["name"] == server.name
    assert member["peerURLs"] == [flag(server, "--initial-advertise-peer-urls")]
    assert member["clientURLs"] == [flag(server, "--advertise-client-urls")]
    assert member["ID"] == client.status()["header"]["member_id"]
    assert "isLearner" not in member
