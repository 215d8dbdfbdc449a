"""The dashboard's server side (`/ui`, `/ui/api/*`) over HTTP against a running etcdpy, and the listing's
count budget on a store directly. The browser tests (test_dashboard.py) cover the front end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from etcdpy.app.gateway.ui import describe_value, hexdump, list_tree
from etcdpy.storage import encoding
from etcdpy.storage.kv_types import KeyValue
from etcdpy.storage.mvcc import MVCCStore
from tests.servers import Server, start_etcdpy
from tests.ui.data import b64, call, load, put, unb64


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(tmp_path_factory.mktemp("ui-api"))
    try:
        yield srv
    finally:
        srv.stop()


def tree(url: str, prefix: str, **params: Any) -> dict[str, Any]:
    resp = httpx.get(f"{url}/ui/api/tree", params={"prefix": b64(prefix), **params})
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def names(page: dict[str, Any]) -> list[str]:
    return [e["name"] for e in page["entries"]]


def test_front_end_is_served_from_the_package(server: Server) -> None:
    resp = httpx.get(f"{server.url}/ui", follow_redirects=False)
    assert resp.status_code == 301 and resp.headers["location"] == "/ui/"
    index = httpx.get(f"{server.url}/ui/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in index.text and "http" not in index.text.split("<body>")[0].replace(
        "http://www.w3.org", "")  # nothing loaded from another origin
    for name in ("app.js", "api.js", "keys.js", "history.js", "watch.js", "leases.js", "cluster.js",
                 "style.css"):
        resp = httpx.get(f"{server.url}/ui/static/{name}")
        assert resp.status_code == 200, name
    assert httpx.get(f"{server.url}/ui/static/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{server.url}/ui/static/..%2Fui.py", follow_redirects=True).status_code == 404
    assert httpx.get(f"{server.url}/ui/static/missing.js").status_code == 404


def test_tree_groups_by_delimiter_with_counts_and_pages(server: Server) -> None:
    load(server.url, [(f"/t/a/{i:02d}", "x") for i in range(30)]
         + [(f"/t/b/c/{i}", "y") for i in range(5)] + [("/t/key1", "v"), ("/t/key2", "vv"), ("/u", "z")])
    page = tree(server.url, "/t/")
    assert names(page) == ["a/", "b/", "key1", "key2"]
    folders = {e["name"]: e for e in page["entries"] if e["type"] == "folder"}
    assert folders["a/"]["count"] == 30 and folders["b/"]["count"] == 5
    assert all(f["exact"] for f in folders.values())
    key2 = page["entries"][3]
    assert unb64(key2["key"]) == "/t/key2" and key2["size"] == 2 and "value" not in key2
    assert page["more"] is False

    # Paging: limit and `after` (the last entry's key) walk the same listing without overlap.
    first = tree(server.url, "/t/", limit=2)
    assert names(first) == ["a/", "b/"] and first["more"] is True
    second = tree(server.url, "/t/", limit=2, after=first["entries"][-1]["key"])
    assert names(second) == ["key1", "key2"] and second["more"] is False
    inside = tree(server.url, "/t/a/", limit=10)
    assert names(inside) == [f"{i:02d}" for i in range(10)] and inside["more"] is True
    rest = tree(server.url, "/t/a/", limit=100, after=inside["entries"][-1]["key"])
    assert names(rest) == [f"{i:02d}" for i in range(10, 30)]

    # Search by prefix: any prefix lists, also one that is not a folder.
    assert names(tree(server.url, "/t/k")) == ["key1", "key2"]
    assert names(tree(server.url, "/t/a/2")) == [f"2{i}" for i in range(10)]
    # Without a delimiter the listing is flat.
    assert len(tree(server.url, "/t/", delimiter="")["entries"]) == 37


def test_tree_rejects_bad_parameters_in_etcds_error_shape(server: Server) -> None:
    resp = httpx.get(f"{server.url}/ui/api/tree", params={"prefix": "not base64!"})
    assert resp.status_code == 400
    message = "prefix is not valid base64"
    assert resp.json() == {"error": message, "message": message, "code": 3}
    resp = httpx.get(f"{server.url}/ui/api/tree", params={"limit": "0"})
    assert resp.status_code == 400 and resp.json()["code"] == 3


def test_counting_stops_at_the_budget_and_says_so(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path / "db"))
    try:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for folder in ("a", "b", "c"):
            for i in range(50):
                key = f"{folder}/{i:03d}".encode()
                record = encoding.encode_record(KeyValue(key, 2, 2, 1, b"v", 0))
                batch.put(key, record, store.handles["latest"])
        store.db.write(batch)
        exact = list_tree(store, b"", b"/", 10, None)
        assert [(e["name"], e["count"], e["exact"]) for e in exact["entries"]] == [
            ("a/", 50, True), ("b/", 50, True), ("c/", 50, True)]
        capped = list_tree(store, b"", b"/", 10, None, budget=70)
        # All three folders are still listed; counts past the budget are lower bounds.
        assert [(e["name"], e["exact"]) for e in capped["entries"]] == [
            ("a/", True), ("b/", False), ("c/", False)]
        assert capped["entries"][0]["count"] == 50 and capped["entries"][1]["count"] == 20
        assert capped["entries"][2]["count"] >= 1
    finally:
        store.close()


def test_key_answers_value_and_format(server: Server) -> None:
    put(server.url, "/fmt/json", '{"b":[1,2],"a":"x"}')
    got = httpx.get(f"{server.url}/ui/api/key", params={"key": b64("/fmt/json")}).json()
    assert got["format"] == "json" and got["pretty"] == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "x"\n}'
    assert got["kv"]["version"] == "1" and unb64(got["kv"]["value"]) == '{"b":[1,2],"a":"x"}'
    missing = httpx.get(f"{server.url}/ui/api/key", params={"key": b64("/fmt/none")}).json()
    assert missing["kv"] is None


def test_value_formats() -> None:
    assert describe_value(b"")["format"] == "empty"
    assert describe_value(b"hello world")["format"] == "text"
    assert describe_value(b"[1, 2")["format"] == "text"  # broken JSON stays text
    yaml_doc = describe_value(b"name: web\nports:\n    - 80\n    - 443\n")
    assert yaml_doc == {"format": "yaml", "pretty": "name: web\nports:\n- 80\n- 443"}
    assert describe_value(b"just: one line")["format"] == "text"
    binary = describe_value(b"\x00\x01\xffabc")
    assert binary["format"] == "binary"
    assert binary["pretty"] == f"00000000  {'0001 ff61 6263':<40}  ...abc"
    assert hexdump(bytes(range(32))).count("\n") == 1


def test_history_lists_revisions_newest_first_and_ends_at_compaction(server: Server) -> None:
    revs = [put(server.url, "/hist/k", f"value {i}") for i in range(4)]
    call(server.url, "kv/deleterange", {"key": b64("/hist/k")})
    last = put(server.url, "/hist/k", "value again")
    page = httpx.get(f"{server.url}/ui/api/history", params={"key": b64("/hist/k")}).json()
    entries = page["entries"]
    assert [e["type"] for e in entries] == ["PUT", "DELETE", "PUT", "PUT", "PUT", "PUT"]
    assert [int(e["revision"]) for e in entries if e["type"] == "PUT"] == [last, *reversed(revs)]
    assert unb64(entries[2]["value"]) == "value 3" and entries[2]["format"] == "text"
    assert entries[0]["version"] == "1" and entries[2]["version"] == "4"

    small = httpx.get(f"{server.url}/ui/api/history", params={"key": b64("/hist/k"), "limit": 2}).json()
    assert len(small["entries"]) == 2 and small["more"] is True
    older = httpx.get(f"{server.url}/ui/api/history",
                      params={"key": b64("/hist/k"), "before": small["entries"][-1]["revision"]}).json()
    assert [e["revision"] for e in older["entries"]] == [e["revision"] for e in entries[2:]]

    # Compacting at revs[2]: revs[0] and revs[1] are gone; revs[2] is what was current then.
    call(server.url, "kv/compaction", {"revision": str(revs[2]), "physical": True})
    after = httpx.get(f"{server.url}/ui/api/history", params={"key": b64("/hist/k")}).json()
    assert after["compact_revision"] == str(revs[2])
    assert [int(e["revision"]) for e in after["entries"] if e["type"] == "PUT"] == [last, revs[3], revs[2]]
