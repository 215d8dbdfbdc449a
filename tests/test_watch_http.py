"""Watch over HTTP against a running etcdpy: framing, correctness under load and compaction, slow
consumers, and the SSE endpoint (resume, compaction, progress, CORS, shutdown)."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, start_etcdpy
from tests.stream_client import StreamClosed, StreamConn

TIMEOUT_S = 15.0


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(tmp_path_factory.mktemp("watch-http"),
                       extra=["--cors", "http://allowed.example,http://other.example"])
    try:
        yield srv
    finally:
        srv.stop()


def put(url: str, key: str, value: str = "v", client: httpx.Client | None = None) -> int:
    c = client or httpx
    resp = c.post(f"{url}/v3/kv/put", json={"key": b64(key), "value": b64(value)})
    resp.raise_for_status()
    return int(resp.json()["header"]["revision"])


def create(key: str, **fields: object) -> dict[str, object]:
    return {"create_request": {"key": b64(key), **fields}}


# ---------------------------------------------------------------- framing


def test_headers_wait_for_the_first_message(server: Server) -> None:
    conn = StreamConn(server.url)
    try:
        # nothing sent yet: etcd sends no status line until it has a message
        with pytest.raises(TimeoutError):
            conn.read_head(0.5)
        conn.send(create("frame/a"))
        assert conn.read_head(TIMEOUT_S) == 200
        assert conn.headers["content-type"] == "application/json"
        assert conn.headers["grpc-metadata-content-type"] == "application/grpc"
        assert conn.headers["transfer-encoding"] == "chunked"
        assert json.loads(conn.read_line())["result"]["created"] is True
        conn.chunks.clear()
        for i in range(5):
            put(server.url, "frame/a", str(i))
        lines = conn.read_lines(5)
        assert conn.chunks == lines  # one chunk per message, each ending with a newline
    finally:
        conn.close()


# ---------------------------------------------------------------- correctness


def _read_revisions(conn: StreamConn, until: int) -> tuple[list[int], int | None]:
    """Revisions delivered (per event) until `until` is reached, or the compact revision if canceled."""
    revs: list[int] = []
    while not revs or revs[-1] < until:
        result = json.loads(conn.read_line(TIMEOUT_S))["result"]
        if result.get("canceled"):
            return revs, int(result["compact_revision"])
        if result.get("created"):
            continue
        revs.extend(int(e["kv"]["mod_revision"]) for e in result.get("events", []))
    return revs, None


def test_every_watcher_sees_every_revision_once_in_order(server: Server) -> None:
    """Concurrent writers, watchers joining at various past revisions, and a compaction midway: each
    watcher sees exactly the revisions of its range from its start on, or a compacted error."""
    url = server.url
    base = put(url, "wc/seed")
    stop = threading.Event()
    written: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        with httpx.Client() as c:
            i = 0
            while not stop.is_set():
                rev = put(url, f"wc/k{n}-{i % 7}", str(i), c)
                with lock:
                    written.append(rev)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    conns: list[tuple[StreamConn, int]] = []
    try:
        for j in range(8):
            time.sleep(0.05)
            with lock:
                start = written[len(written) // 2] if written and j % 2 else 0
            conn = StreamConn(url)
            conn.send(create("wc/", range_end=b64("wc0"), start_revision=start))
            conns.append((conn, start))
            if j == 5:
                with lock:
                    compact_at = written[-1]
                httpx.post(f"{url}/v3/kv/compaction", json={"revision": compact_at}).raise_for_status()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    final = put(url, "wc/last")
    all_revs = sorted(set(written) | {final})
    compacted_seen = 0
    for conn, start in conns:
        try:
            revs, compacted = _read_revisions(conn, final)
        finally:
            conn.close()
        assert revs == sorted(set(revs)), "repeated or out of order"
        if compacted is not None:
            compacted_seen += 1
            assert start and start < compacted
            continue
        first = revs[0]
        assert start == 0 or first == min(r for r in all_revs if r >= start)
        assert revs == [r for r in all_revs if r >= first], "a revision is missing"
    assert base < final and compacted_seen <= len(conns)


def test_slow_consumer_never_blocks_writes_or_other_watchers(server: Server) -> None:
    url = server.url
    slow = StreamConn(url)
    fast = StreamConn(url)
    try:
        slow.send(create("slow/k"))
        fast.send(create("slow/k"))
        assert json.loads(slow.read_line())["result"]["created"]
        assert json.loads(fast.read_line())["result"]["created"]
        value = "x" * 20_000
        revs = []
        worst = 0.0
        with httpx.Client() as c:
            for _ in range(1500):  # ~40 MB of events for a reader that reads nothing meanwhile
                t0 = time.monotonic()
                revs.append(put(url, "slow/k", value, c))
                worst = max(worst, time.monotonic() - t0)
                while fast.pending or not fast.quiet(0.001):
                    fast.read_line()
        assert worst < 2.0, f"a put took {worst:.2f} s while a watcher stalled"
        got, _ = _read_revisions(slow, revs[-1])  # the stalled one catches up: all, in order, once
        assert got == revs
    finally:
        slow.close()
        fast.close()


# ---------------------------------------------------------------- SSE


_LINES: dict[int, Iterator[str]] = {}


def sse_events(resp: httpx.Response, n: int) -> list[dict[str, str]]:
    """The next n SSE events (comments skipped) as {"event","id","data"} dicts."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    lines = _LINES.setdefault(id(resp), resp.iter_lines())
    for line in lines:
        if not line:
            if "data" in current:  # a block without data (e.g. only `retry:`) dispatches nothing
                out.append(current)
                if len(out) == n:
                    return out
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")
    raise AssertionError(f"stream ended after {out}")


def test_sse_resume_with_last_event_id_misses_nothing(server: Server) -> None:
    url = server.url
    with httpx.Client(timeout=TIMEOUT_S) as c:
        with c.stream("GET", f"{url}/watch/sse", params={"key": "sse/", "prefix": "true"}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            created = sse_events(resp, 1)[0]
            assert created["event"] == "created"
            r1 = put(url, "sse/a", "1")
            ev = sse_events(resp, 1)[0]
            assert ev["id"] == str(r1) and "event" not in ev
            assert json.loads(ev["data"])["events"][0]["kv"]["value"] == b64("1")
        # disconnected: writes happen meanwhile
        missed = [put(url, "sse/a", "2"), put(url, "sse/b", "3"), put(url, "other", "x"),
                  put(url, "sse/a", "4")]
        headers = {"Last-Event-ID": str(r1)}
        with c.stream("GET", f"{url}/watch/sse", params={"key": "sse/", "prefix": "true"},
                      headers=headers) as resp:
            events = sse_events(resp, 4)
            assert events[0]["event"] == "created" and events[0]["id"] == str(r1)
            assert [int(e["id"]) for e in events[1:]] == [missed[0], missed[1], missed[3]]


def test_sse_progress_event_and_compacted_resume(server: Server) -> None:
    url = server.url
    old = put(url, "sse2/a", "1")
    with httpx.Client(timeout=TIMEOUT_S) as c:
        with c.stream("GET", f"{url}/watch/sse",
                      params={"key": "sse2/a", "progress_interval": "0.2"}) as resp:
            events = sse_events(resp, 2)
            assert events[1]["event"] == "progress"
            assert int(events[1]["id"]) >= old
        for i in range(3):
            latest = put(url, "sse2/a", str(i))
        c.post(f"{url}/v3/kv/compaction", json={"revision": latest}).raise_for_status()
        with c.stream("GET", f"{url}/watch/sse", params={"key": "sse2/a"},
                      headers={"Last-Event-ID": str(old)}) as resp:
            created, compacted = sse_events(resp, 2)
            assert compacted["event"] == "compacted"
            assert json.loads(compacted["data"])["compact_revision"] == str(latest)
            assert list(_LINES[id(resp)]) in ([], [""])  # and then the stream ends


def test_sse_cors_and_preflight(server: Server) -> None:
    url = server.url
    pre = httpx.options(f"{url}/watch/sse", headers={"Origin": "http://allowed.example",
                                                      "Access-Control-Request-Method": "GET",
                                                      "Access-Control-Request-Headers": "last-event-id"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "http://allowed.example"
    assert "GET" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "last-event-id"
    denied = httpx.options(f"{url}/watch/sse", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in denied.headers
    with httpx.stream("GET", f"{url}/watch/sse", params={"key": "c"}, timeout=TIMEOUT_S,
                      headers={"Origin": "http://other.example"}) as resp:
        assert resp.headers["access-control-allow-origin"] == "http://other.example"
    bad = httpx.get(f"{url}/watch/sse", params={"key": "b", "range_end": "a"})
    assert bad.status_code == 400 and bad.json()["error"] == "mvcc: watcher range is empty"


def test_streams_end_with_a_last_word_on_shutdown(tmp_path: Path) -> None:
    srv = start_etcdpy(tmp_path)
    try:
        conn = StreamConn(srv.url)
        conn.send(create("sd/a"))
        assert json.loads(conn.read_line())["result"]["created"]
        with httpx.stream("GET", f"{srv.url}/watch/sse", params={"key": "sd/a"}, timeout=TIMEOUT_S) as resp:
            assert sse_events(resp, 1)[0]["event"] == "created"
            srv.proc.send_signal(signal.SIGTERM)
            last = sse_events(resp, 1)[0]
            assert last["event"] == "canceled"
            assert json.loads(last["data"])["reason"] == "server shutting down"
        with pytest.raises(StreamClosed):
            conn.read_line(TIMEOUT_S)  # the etcd stream is ended cleanly (final chunk)
        assert conn.ended
        conn.close()
        srv.proc.wait(TIMEOUT_S)  # and the process exits (uvicorn re-raises SIGTERM: code -15)
    finally:
        srv.kill()
