"""/health, /version and /debug/vars against real etcd 3.4; /livez and /readyz as etcd 3.5 documents them;
the metrics listener's endpoints; /docs served without any external host."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, free_port, start_etcd, start_etcdpy

SHARED_HEADERS = ("content-type", "access-control-allow-origin", "access-control-allow-methods",
                  "access-control-allow-headers", "x-content-type-options")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, str, str]]:
    tmp = tmp_path_factory.mktemp("health")
    etcd_metrics = f"http://127.0.0.1:{free_port()}"
    ours_metrics = f"http://127.0.0.1:{free_port()}"
    etcd = start_etcd(tmp, extra=["--listen-metrics-urls", etcd_metrics])
    try:
        ours = start_etcdpy(tmp, extra=["--listen-metrics-urls", ours_metrics])
        try:
            # As etcd, the cluster version is decided just after the first leader: wait for it.
            deadline = time.monotonic() + 10
            while httpx.get(ours.url + "/version").json()["etcdcluster"] == "not_decided":
                assert time.monotonic() < deadline, "the cluster version was never decided"
                time.sleep(0.05)
            yield etcd, ours, etcd_metrics, ours_metrics
        finally:
            ours.stop()
    finally:
        etcd.stop()


def same_answer(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for name in SHARED_HEADERS:
        assert a.headers.get(name) == b.headers.get(name), name


@pytest.mark.parametrize("path", ["/health", "/health?serializable=true", "/version", "/livez",
                                  "/no-such-page"])
def test_client_url_answers_as_etcd(pair: tuple[Server, Server, str, str], path: str) -> None:
    etcd, ours, _, _ = pair
    theirs = httpx.get(etcd.url + path)
    mine = httpx.get(ours.url + path)
    if path == "/livez":  # etcd 3.4 has none; 3.5's answer is the health JSON with a reason
        assert theirs.status_code == 404
        assert (mine.status_code, mine.json()) == (200, {"health": "true", "reason": ""})
        return
    same_answer(mine, theirs)


@pytest.mark.parametrize("path", ["/health", "/metrics", "/version"])
def test_metrics_url_answers_as_etcd(pair: tuple[Server, Server, str, str], path: str) -> None:
    _, _, etcd_metrics, ours_metrics = pair
    theirs = httpx.get(etcd_metrics + path)
    mine = httpx.get(ours_metrics + path)
    assert mine.status_code == theirs.status_code
    assert mine.headers["content-type"] == theirs.headers["content-type"]
    if path != "/metrics":
        same_answer(mine, theirs)


def test_readyz_and_livez_follow_etcd_35(pair: tuple[Server, Server, str, str]) -> None:
    _, ours, _, _ = pair
    for path in ("/readyz", "/readyz?serializable=true", "/livez?serializable=true",
                 "/readyz?exclude=NOSPACE"):
        resp = httpx.get(ours.url + path)
        assert (resp.status_code, resp.json()) == (200, {"health": "true", "reason": ""}), path


def test_debug_vars_has_etcds_shape(pair: tuple[Server, Server, str, str]) -> None:
    etcd, ours, _, _ = pair
    theirs = httpx.get(etcd.url + "/debug/vars")
    mine = httpx.get(ours.url + "/debug/vars")
    assert mine.headers["content-type"] == theirs.headers["content-type"]
    t, m = theirs.json(), mine.json()
    assert sorted(m) == sorted(t)
    assert sorted(m["raft.status"]) == sorted(t["raft.status"])
    assert m["raft.status"]["raftState"] == t["raft.status"]["raftState"] == "StateLeader"
    assert m["raft.status"]["lead"] == m["raft.status"]["id"]
    member_id = httpx.post(ours.url + "/v3/maintenance/status", content=b"{}").json()["header"]["member_id"]
    assert m["raft.status"]["id"] == f"{int(member_id):x}"
    assert sorted(m["raft.status"]["progress"][m["raft.status"]["id"]]) == ["match", "next", "state"]
    assert isinstance(m["file_descriptor_limit"], int) and isinstance(m["cmdline"], list)
    # Go's expvar layout: one variable per line, in name order.
    assert [line.split('"')[1] for line in mine.text.splitlines()[1:-1]] == sorted(t)


def test_health_counters_move(pair: tuple[Server, Server, str, str]) -> None:
    _, ours, _, ours_metrics = pair

    def successes() -> float:
        text = httpx.get(ours_metrics + "/metrics").text
        return float(re.search(r"^etcd_server_health_success (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    before = successes()
    assert httpx.get(ours.url + "/health").status_code == 200
    assert successes() == before + 1


def test_docs_work_offline(pair: tuple[Server, Server, str, str], tmp_path: Path) -> None:
    """Every asset /docs references is served by the member itself: no CDN, no external host."""
    _, ours, _, _ = pair
    page = httpx.get(ours.url + "/docs")
    assert page.status_code == 200
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert refs, page.text
    assert not [r for r in refs if "//" in r], f"external references in /docs: {refs}"
    for ref in refs:
        resp = httpx.get(ours.url + ref)
        assert resp.status_code == 200, ref
        assert resp.content, ref
    assert "SwaggerUIBundle" in httpx.get(ours.url + "/docs/static/swagger-ui-bundle.js").text
