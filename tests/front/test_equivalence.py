"""Front workers change who parses a client's HTTP, never what the client gets back.

One scenario of raw requests (unary RPCs the workers answer; paths, methods and requests they splice;
pipelining, split writes, `Connection: close`, bodies around the size limits; auth with and without a
token) runs against an etcdpy with `--client-workers 1`, then against one with `--client-workers 0`
on the same ports (so member and cluster ids are the same), and every answer must be byte for byte the
same but for the `date` header. /proc shows that the first server's worker really served the
connections and that the requests it should answer itself were not spliced.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.front import procs
from tests.front.raw_http import Conn, Response, b64, chunked, exchange, post, request
from tests.servers import Server, free_port, start_etcdpy

MAX_REQUEST_BYTES = 1024 * 1024  # so a body under the workers' 2 MiB can still be too large for etcd
ROOT_PASSWORD = "front-root"
_TOKEN = re.compile(rb'"token":"[^"]*"')


PUT_A = post("/v3/kv/put", {"key": b64("a"), "value": b64("1")})
RANGE_A = post("/v3/kv/range", {"key": b64("a")})


class Recorder:
    """Runs the scenario against one server and keeps every answer under a label."""

    def __init__(self, server: Server, workers: int) -> None:
        self.url = server.url
        self.port = int(server.url.rsplit(":", 1)[1])
        self.member = server.proc.pid
        self.workers = workers
        self.answers: list[tuple[str, Response]] = []

    def keep(self, label: str, *responses: Response) -> None:
        for i, response in enumerate(responses):
            self.answers.append((f"{label} #{i}" if len(responses) > 1 else label, response))

    def one(self, label: str, data: bytes, count: int = 1) -> None:
        self.keep(label, *exchange(self.url, data, count))

    def fact(self, label: str, value: object) -> None:
        self.answers.append((label, Response(repr(value).encode(), [], b"")))

    def served_by(self, conn: Conn) -> list[int]:
        """The processes holding the server side of `conn`: the worker with workers, else the member."""
        return procs.holder([self.member, *procs.children(self.member)], self.port, conn.local_port)


def scenario(rec: Recorder) -> None:
    workers = procs.children(rec.member)
    assert len(workers) == rec.workers and all(procs.is_worker_of(pid, rec.member) for pid in workers)
    if rec.workers:
        procs.wait_for(lambda: procs.spliced_connections(rec.member) == 0, "the probe's splice ended")

    # One keep-alive connection: the unary RPCs, then a path outside the table turns it into a splice.
    with Conn(rec.url) as conn:
        for label, data in [
            ("put", PUT_A),
            ("range", RANGE_A),
            ("put b", post("/v3/kv/put", {"key": b64("b"), "value": b64("2")})),
            ("count", post("/v3/kv/range", {"key": b64("a"), "range_end": b64("c"), "count_only": True})),
            ("deleterange", post("/v3/kv/deleterange", {"key": b64("b"), "prev_kv": True})),
            ("txn", post("/v3/kv/txn", {
                "compare": [{"key": b64("a"), "target": "VALUE", "result": "EQUAL", "value": b64("1")}],
                "success": [{"request_put": {"key": b64("c"), "value": b64("3")}}],
                "failure": [{"request_range": {"key": b64("a")}}]})),
            ("lease grant", post("/v3/lease/grant", {"ID": 4660, "TTL": 60})),
            ("lease list", post("/v3/lease/leases", {})),
            # The keep-alive stream ends with its body: a whole body is answered as one exchange.
            ("lease keepalive", post("/v3/lease/keepalive", {"ID": 4660})),
            ("lease keepalive padded", request("POST", "/v3/lease/keepalive", b' \r\n{"ID":4660}\n')),
            ("lease keepalive unknown", post("/v3/lease/keepalive", {"ID": 99})),
            ("lease keepalive x2", request("POST", "/v3/lease/keepalive", b'{"ID":4660} {"ID":4660}')),
            ("lease keepalive bad", request("POST", "/v3/lease/keepalive", b'{"ID":"x"}')),
            ("bad base64", post("/v3/kv/put", {"key": "!!", "value": b64("x")})),
            ("bad json", request("POST", "/v3/kv/range", b'{"key":')),
            ("query string", request("POST", "/v3/kv/range?x=1", json.dumps({"key": b64("a")}).encode())),
            ("too large, under 2 MiB",
             post("/v3/kv/put", {"key": b64("big"), "value": b64(b"v" * 1_200_000)})),
        ]:
            conn.send(data)
            rec.keep(label, conn.read_response())
        # A worker answered all of these itself: nothing was spliced to the member. (Asked only now:
        # right after connecting, the kernel may not yet have handed the connection to anyone.)
        assert rec.served_by(conn) == (workers or [rec.member])
        assert procs.spliced_connections(rec.member) == 0
        conn.send(post("/v3/kv/nope", {}))
        rec.keep("404 on the same connection", conn.read_response())
        if rec.workers:
            assert procs.spliced_connections(rec.member) == 1
        conn.send(RANGE_A)
        rec.keep("range after the switch", conn.read_response())

    rec.one("health", request("GET", "/health"))
    rec.one("version", request("GET", "/version"))
    rec.one("metrics", request("GET", "/metrics"))
    rec.one("405", request("GET", "/v3/kv/range"))
    rec.one("301", request("POST", "/v3/kv//range", b"{}"))
    rec.one("v3beta", post("/v3beta/kv/range", {"key": b64("a")}))
    rec.one("preflight", request("OPTIONS", "/v3/kv/put", headers=[
        ("Origin", "http://example.com"), ("Access-Control-Request-Method", "POST")]))
    rec.one("with origin", post("/v3/kv/range", {"key": b64("a")}, ("Origin", "http://example.com")))
    rec.one("chunked", request("POST", "/v3/kv/range", chunked(json.dumps({"key": b64("a")}).encode()),
                               [("Transfer-Encoding", "chunked")], length=False))
    rec.one("expect", post("/v3/kv/range", {"key": b64("a")}, ("Expect", "100-continue")))
    rec.one("HTTP/1.0", RANGE_A.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    rec.one("over 2 MiB", post("/v3/kv/put", {"key": b64("huge"), "value": b64(b"v" * 1_700_000)}))
    rec.one("pipelined", PUT_A + RANGE_A, 2)
    rec.one("pipelined across a splice", PUT_A + request("GET", "/version") + RANGE_A, 3)

    for label, value in [("close", "close"), ("close in a list", "keep-alive, close")]:
        with Conn(rec.url) as conn:
            conn.send(post("/v3/kv/range", {"key": b64("a")}, ("Connection", value)) + RANGE_A)
            rec.keep(label, conn.read_response())
            rec.fact(f"{label}: closed", conn.closed_by_server())

    for label, data in [("malformed header", RANGE_A.replace(b"Host:", b"Bad Host:", 1)),
                        ("LF line endings", RANGE_A.replace(b"\r\n", b"\n"))]:
        with Conn(rec.url) as conn:
            conn.send(data)
            rec.keep(label, conn.read_response())
            rec.fact(f"{label}: closed", conn.closed_by_server())

    # A request in many small writes: TCP_NODELAY and a pause between pieces make each its own segment,
    # so the server sees the head and the body in pieces (the pause paces, it synchronises nothing).
    with Conn(rec.url) as conn:
        data = post("/v3/kv/put", {"key": b64("split"), "value": b64("pieces")})
        for at in range(0, len(data), 9):
            conn.send(data[at:at + 9])
            time.sleep(0.001)
        rec.keep("split writes", conn.read_response())

    auth(rec)


def auth(rec: Recorder) -> None:
    """Auth on: a put with a valid token (answered by a worker, and spliced), without one, with a bad one."""
    with Conn(rec.url) as conn:
        for label, data in [
            ("user add", post("/v3/auth/user/add", {"name": "root", "password": ROOT_PASSWORD})),
            ("grant root", post("/v3/auth/user/grant", {"user": "root", "role": "root"})),
            ("auth enable", post("/v3/auth/enable", {})),
            ("authenticate", post("/v3/auth/authenticate", {"name": "root", "password": ROOT_PASSWORD})),
        ]:
            conn.send(data)
            rec.keep(label, conn.read_response())
    token = json.loads(rec.answers[-1][1].body)["token"]
    put_t = post("/v3/kv/put", {"key": b64("t"), "value": b64("1")}, ("Authorization", token))
    with Conn(rec.url) as conn:
        for label, data in [
            ("put with token", put_t),
            ("range with token", post("/v3/kv/range", {"key": b64("t")}, ("Authorization", token))),
            ("put without token", post("/v3/kv/put", {"key": b64("t"), "value": b64("2")})),
            ("put with a bad token", post("/v3/kv/put", {"key": b64("t")}, ("Authorization", "bogus.1"))),
            ("spliced put with token",
             put_t.replace(b"Content-Type", b"Origin: http://x\r\nContent-Type", 1)),
        ]:
            conn.send(data)
            rec.keep(label, conn.read_response())


def comparable(label: str, response: Response) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    headers = response.without(b"date")
    body = _TOKEN.sub(b'"token":"<token>"', response.body)
    if label == "metrics":
        # Values change by the second; which metrics exist must not.
        headers = response.without(b"date", b"content-length")
        body = b"\n".join(sorted(line for line in body.splitlines() if line.startswith(b"# TYPE")))
    return response.status_line, headers, body


EXPECTED_STATUS = {
    "put": 200, "range": 200, "txn": 200, "lease grant": 200, "bad base64": 400, "bad json": 400,
    "too large, under 2 MiB": 400, "404 on the same connection": 404, "range after the switch": 200,
    "health": 200, "version": 200, "metrics": 200, "405": 405, "301": 301, "preflight": 200,
    "chunked": 200, "over 2 MiB": 429, "close": 200, "malformed header": 400, "LF line endings": 400,
    "split writes": 200, "put with token": 200, "put without token": 400, "put with a bad token": 401,
    "spliced put with token": 200, "pipelined across a splice #2": 200,
}


def test_same_answers_with_and_without_workers(tmp_path: Path) -> None:
    ports = (free_port(), free_port())
    while ports[1] == ports[0]:
        ports = (ports[0], free_port())
    extra = ["--max-request-bytes", str(MAX_REQUEST_BYTES)]
    runs: dict[int, Recorder] = {}
    for workers in (1, 0):
        server = start_etcdpy(tmp_path / f"workers-{workers}",
                              extra=[*extra, "--client-workers", str(workers)], ports=ports)
        try:
            runs[workers] = rec = Recorder(server, workers)
            scenario(rec)
        finally:
            server.stop()
    with_workers, direct = runs[1].answers, runs[0].answers
    assert [label for label, _ in with_workers] == [label for label, _ in direct]
    for label, response in with_workers + direct:
        assert response.header(b"date") is not None or not response.status_line.startswith(b"HTTP"), label
    diffs = [f"{label}:\n  workers: {comparable(label, a)}\n  direct:  {comparable(label, b)}"
             for (label, a), (_, b) in zip(with_workers, direct, strict=True)
             if comparable(label, a) != comparable(label, b)]
    assert not diffs, "\n".join(diffs)

    # Equal is not enough: the answers are the right ones.
    answers = dict(with_workers)
    assert {label: answers[label].status for label in EXPECTED_STATUS} == EXPECTED_STATUS
    assert answers["bad base64"].body == (b'{"error":"illegal base64 data at input byte 0",'
                                          b'"message":"illegal base64 data at input byte 0","code":3}')
    assert json.loads(answers["too large, under 2 MiB"].body)["message"] == "etcdserver: request is too large"
    assert json.loads(answers["over 2 MiB"].body)["message"].startswith(
        "grpc: received message larger than max")
    assert json.loads(answers["put without token"].body)["message"] == "etcdserver: user name is empty"
    assert json.loads(answers["range with token"].body)["kvs"][0]["value"] == b64("1")
    assert answers["close"].header(b"connection") == b"close"
    assert answers["close: closed"].status_line == b"True"
    assert answers["close in a list: closed"].status_line == b"True"
    assert [answers[f"pipelined #{i}"].status for i in range(2)] == [200, 200]
    assert json.loads(answers["pipelined #1"].body)["kvs"][0]["value"] == b64("1")
    assert answers["pipelined across a splice #1"].body.startswith(b'{"etcdserver":')
