"""Everything a front worker does not answer itself goes to the member's own HTTP server, spliced: the
watch streams (NDJSON, SSE, WebSocket), a keep-alive connection that turns into a watch after a put,
and the blocking lock call, whose client leaving must take its place in the queue away as in etcd.
One etcdpy with `--client-workers 1` serves the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.front import procs
from tests.front.raw_http import Conn, b64, post, request
from tests.servers import Server, start_etcdpy
from tests.stream_client import StreamConn


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_etcdpy(tmp_path_factory.mktemp("front-splice"), extra=["--client-workers", "1"])
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def kv_put(client: httpx.Client, url: str, key: str, value: str) -> int:
    resp = client.post(f"{url}/v3/kv/put", json={"key": b64(key), "value": b64(value)})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["header"]["revision"])


def worker_of(server: Server) -> int:
    (worker,) = procs.children(server.proc.pid)
    assert procs.is_worker_of(worker, server.proc.pid)
    return worker


def no_splices(server: Server) -> None:
    procs.wait_for(lambda: procs.spliced_connections(server.proc.pid) == 0, "earlier tests' splices ended")


def test_watch_stream(server: Server, client: httpx.Client) -> None:
    no_splices(server)
    watch = StreamConn(server.url)
    try:
        watch.send({"create_request": {"key": b64("s/ndjson")}})
        assert watch.read_json()["result"]["created"] is True
        assert procs.spliced_connections(server.proc.pid) == 1
        rev = kv_put(client, server.url, "s/ndjson", "v1")
        event = watch.read_json()["result"]
        assert event["header"]["revision"] == str(rev)
        assert [(e["kv"]["key"], e["kv"]["value"]) for e in event["events"]] == [(b64("s/ndjson"), b64("v1"))]
    finally:
        watch.close()


def test_sse_watch(server: Server, client: httpx.Client) -> None:
    with Conn(server.url) as conn:
        conn.send(request("GET", "/watch/sse?key=s/sse&progress_interval=0", length=False,
                          headers=[("Accept", "text/event-stream")]))
        status_line, headers = conn.read_head()
        assert status_line == b"HTTP/1.1 200 OK"
        assert dict(headers)[b"content-type"].startswith(b"text/event-stream")
        events = SseEvents(conn)
        assert events.next()[0] == "created"
        rev = kv_put(client, server.url, "s/sse", "v1")
        kind, eid, data = events.next()
        assert (kind, eid) == ("message", str(rev))
        assert [(e["kv"]["key"], e["kv"]["value"]) for e in data["events"]] == [(b64("s/sse"), b64("v1"))]


class SseEvents:
    """Server-sent events off a chunked response, one (event, id, data) at a time."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.text = ""

    def next(self) -> tuple[str, str, dict[str, Any]]:
        while True:
            while "\n\n" not in self.text:
                chunk = self.conn.read_chunk()
                assert chunk is not None, "the stream ended"
                self.text += chunk.decode()
            block, self.text = self.text.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line and not line.startswith(":"):  # a comment is a keep-alive
                    name, _, value = line.partition(": ")
                    fields[name] = value
            if "data" in fields:
                return fields.get("event", "message"), fields.get("id", ""), json.loads(fields["data"])


def test_websocket_watch(server: Server, client: httpx.Client) -> None:
    with connect(server.url.replace("http://", "ws://") + "/v3/watch") as ws:
        ws.send(json.dumps({"create_request": {"key": b64("s/ws")}}))
        assert json.loads(ws.recv(timeout=10))["result"]["created"] is True
        rev = kv_put(client, server.url, "s/ws", "v1")
        event = json.loads(ws.recv(timeout=10))["result"]
        assert event["header"]["revision"] == str(rev)
        assert [e["kv"]["value"] for e in event["events"]] == [b64("v1")]


def test_put_then_watch_on_one_connection(server: Server, client: httpx.Client) -> None:
    """A keep-alive connection the worker answered a put on becomes a watch stream: the worker hands
    it, from the watch request on, to the member."""
    no_splices(server)
    with Conn(server.url) as conn:
        conn.send(post("/v3/kv/put", {"key": b64("s/mixed"), "value": b64("before")}))
        put = conn.read_response()
        assert put.status == 200
        assert procs.spliced_connections(server.proc.pid) == 0  # answered by the worker itself
        port, worker = int(server.url.rsplit(":", 1)[1]), worker_of(server)
        assert procs.holder([server.proc.pid, worker], port, conn.local_port) == [worker]
        create = json.dumps({"create_request": {
            "key": b64("s/mixed"), "start_revision": json.loads(put.body)["header"]["revision"]}}).encode()
        # A chunked body left open: the watch reads each request as it comes, as etcd's gateway does.
        conn.send(request("POST", "/v3/watch", headers=[("Transfer-Encoding", "chunked")], length=False)
                  + b"%x\r\n%s\r\n" % (len(create), create))
        assert conn.read_head()[0] == b"HTTP/1.1 200 OK"
        lines = StreamLines(conn)
        assert lines.next()["result"]["created"] is True
        first = lines.next()["result"]["events"]  # from the put's revision: the put itself
        assert [e["kv"]["value"] for e in first] == [b64("before")]
        assert procs.spliced_connections(server.proc.pid) == 1
        kv_put(client, server.url, "s/mixed", "after")
        assert [e["kv"]["value"] for e in lines.next()["result"]["events"]] == [b64("after")]


class StreamLines:
    """The NDJSON lines of a chunked watch response."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.text = b""

    def next(self) -> dict[str, Any]:
        while b"\n" not in self.text:
            chunk = self.conn.read_chunk()
            assert chunk is not None, "the stream ended"
            self.text += chunk
        line, self.text = self.text.split(b"\n", 1)
        value: dict[str, Any] = json.loads(line)
        return value


def test_clients_leaving_before_their_answer(server: Server, client: httpx.Client) -> None:
    """Clients that send a put and leave at once: the worker cancels each at the member, drops the late
    answers, and neither process is hurt."""
    worker = worker_of(server)
    for i in range(30):
        with Conn(server.url) as conn:
            conn.send(post("/v3/kv/put", {"key": b64(f"s/gone/{i}"), "value": b64("x")}))
    assert kv_put(client, server.url, "s/gone/after", "y") > 0
    assert worker_of(server) == worker  # the same worker process, not a restarted one


def lock_keys(client: httpx.Client, url: str, name: str) -> list[str]:
    resp = client.post(f"{url}/v3/kv/range", json={"key": b64(name + "/"), "range_end": b64(name + "0")})
    return [kv["key"] for kv in resp.json().get("kvs", [])]


def lease(client: httpx.Client, url: str) -> int:
    return int(client.post(f"{url}/v3/lease/grant", json={"TTL": 60}).json()["ID"])


def test_a_lock_waiter_that_leaves_gives_up_its_place(server: Server, client: httpx.Client) -> None:
    """etcd's Mutex deletes its key when the wait is cancelled: a client that leaves while queued for a
    lock is not handed the lock later."""
    url = server.url
    holder, leaver, later = lease(client, url), lease(client, url), lease(client, url)
    # Its own client: lock calls are spliced, and this module's other tests count open splices.
    with httpx.Client(timeout=10) as locker:
        held = locker.post(f"{url}/v3/lock/lock", json={"name": b64("s/lk"), "lease": holder})
        assert held.status_code == 200
        holder_key = held.json()["key"]
        with Conn(url) as waiting:
            waiting.send(post("/v3/lock/lock", {"name": b64("s/lk"), "lease": leaver}))
            procs.wait_for(lambda: len(lock_keys(client, url, "s/lk")) == 2, "the second client queued")
        procs.wait_for(lambda: lock_keys(client, url, "s/lk") == [holder_key], "the leaver's key deleted")
        assert client.post(f"{url}/v3/lock/unlock", json={"key": holder_key}).status_code == 200
        # The next client gets the lock at once (with a deadline: a wrong queue fails, not hangs).
        got = locker.post(f"{url}/v3/lock/lock", json={"name": b64("s/lk"), "lease": later},
                          headers={"Grpc-Timeout": "5S"})
    assert got.status_code == 200, got.text
    assert got.json()["key"] == b64(f"s/lk/{later:x}")
    assert kv_put(client, url, "s/after-lock", "ok") > 0
