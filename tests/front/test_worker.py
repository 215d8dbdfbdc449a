"""A front worker against a fake member (tests/front/fake_member.py): which requests it answers through
its channel and with which bytes, which it splices (exactly the client's bytes, from the request on),
and how it behaves when a client or the member goes away."""

from __future__ import annotations

import re
import select
import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from etcdpy.app.front import frames
from etcdpy.app.gateway import codec
from tests.front.fake_member import FakeMember, recv_exactly
from tests.front.raw_http import Conn, request

BODY = b'{"key":"YQ==","value":"Yg=="}'
DATE = re.compile(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
OK_HEADERS = [[b"content-type", b"application/json"], [b"content-length", b"2"]]
OK_HEADERS_NO_LENGTH = [[b"content-type", b"application/json"]]


@pytest.fixture
def member() -> Iterator[FakeMember]:
    fake = FakeMember()
    try:
        yield fake
    finally:
        fake.close()
    # Closing the member's end of the channel is how a worker learns its member is gone.
    assert fake.proc.returncode == 0


def put(*headers: tuple[str, str], path: str = "/v3/kv/put", body: bytes = BODY) -> bytes:
    return request("POST", path, body, list(headers))


def test_forwards_a_unary_request_as_one_frame(member: FakeMember) -> None:
    with Conn(member.url) as conn:
        conn.send(put(("Content-Type", "application/json"), ("Authorization", "tok en"),
                      path="/v3/kv/put?x=1"))
        frame = member.next_frame()
        assert frame == [frames.REQUEST, frame[1], "POST", "/v3/kv/put", b"x=1",
                         [[b"host", b"127.0.0.1"], [b"content-type", b"application/json"],
                          [b"authorization", b"tok en"], [b"content-length", str(len(BODY)).encode()]],
                         ["127.0.0.1", conn.local_port], BODY, frame[8]]
        member.answer(frame[1], 200, OK_HEADERS, b"{}")
        head = conn.read_head()
        assert head[0] == b"HTTP/1.1 200 OK"
        assert [name for name, _ in head[1]] == [b"date", b"content-type", b"content-length"]
        assert DATE.fullmatch(head[1][0][1])
        assert conn.read_exactly(2) == b"{}"
        # The connection stays open for the next request, which gets its own id.
        conn.send(put(path="/v3/kv/range"))
        second = member.next_frame()
        assert second[2:4] == ["POST", "/v3/kv/range"] and second[1] != frame[1]
        member.answer(second[1], 404, [[b"content-length", b"0"]], b"")
        response = conn.read_response()
        assert (response.status_line, response.body) == (b"HTTP/1.1 404 Not Found", b"")


def test_answers_pipelined_requests_in_order(member: FakeMember) -> None:
    with Conn(member.url) as conn:
        conn.send(put(path="/v3/kv/put", body=b"1") + put(path="/v3/kv/range", body=b"2"))
        first = member.next_frame()
        assert first[7] == b"1"
        member.answer(first[1], 200, [[b"content-length", b"1"]], b"A")
        second = member.next_frame()
        assert second[7] == b"2"
        member.answer(second[1], 200, [[b"content-length", b"1"]], b"B")
        assert [conn.read_response().body for _ in range(2)] == [b"A", b"B"]


def test_a_request_in_many_small_writes_is_one_frame(member: FakeMember) -> None:
    data = put(("X-Long", "v" * 300))
    with Conn(member.url) as conn:
        for i in range(len(data)):
            conn.send(data[i:i + 1])
        frame = member.next_frame()
        assert frame[7] == BODY and [b"x-long", b"v" * 300] in frame[5]


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "close, TE"])
def test_connection_close_closes_after_the_answer(member: FakeMember, value: str) -> None:
    with Conn(member.url) as conn:
        conn.send(put(("Connection", value)) + put())  # the second request is never read
        frame = member.next_frame()
        member.answer(frame[1], 200, OK_HEADERS, b"{}")
        response = conn.read_response()
        assert response.headers[-1] == (b"connection", b"close") and response.body == b"{}"
        assert conn.closed_by_server()


def test_a_client_gone_before_its_answer_cancels_it(member: FakeMember) -> None:
    conn = Conn(member.url)
    conn.send(put())
    frame = member.next_frame()
    conn.close()
    assert member.next_frame() == [frames.CANCEL, frame[1]]
    member.answer(frame[1], 200, OK_HEADERS, b"{}")  # a late answer for a gone client is dropped
    with Conn(member.url) as other:
        other.send(put())
        again = member.next_frame()
        member.answer(again[1], 200, OK_HEADERS, b"{}")
        assert other.read_response().body == b"{}"


# Requests the worker must not answer itself: the member's HTTP server gets their exact bytes.
SPLICED = {
    "GET": request("GET", "/health"),
    "other path": put(path="/v3/watch"),
    "path not exact": put(path="/v3/kv/put/"),
    "lower-case method": request("post", "/v3/kv/put", BODY),
    "HTTP/1.0": put().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    "chunked": request("POST", "/v3/kv/put", b"5\r\nhello\r\n0\r\n\r\n", [("Transfer-Encoding", "chunked")],
                       length=False),
    "expect": put(("Expect", "100-continue")),
    "origin": put(("Origin", "http://example.com")),
    "upgrade": put(("Upgrade", "websocket")),
    "no length": request("POST", "/v3/kv/put", length=False),
    "two lengths": put(("Content-Length", str(len(BODY)))),
    "signed length": put().replace(b"Content-Length: ", b"Content-Length: +", 1),
    "body over 2 MiB": request("POST", "/v3/kv/put", b"x" * (2 * 1024 * 1024 + 1)),
    "folded header": put(("X-A", "1\r\n 2")),
    "space in a header name": put(("X Y", "1")),
    "control byte in a header name": put(("X\x01", "1")),
    "NUL in a header value": put(("X", "a\x00b")),
    "DEL in a header value": put(("X", "a\x7fb")),
    "bare LF in the head": put(("X", "1\nContent-Length: 0")),
    "LF line endings": put().replace(b"\r\n", b"\n"),
    "empty header name": put(("", "1")),
    "control byte in the query": put(path="/v3/kv/put?a=\x01"),
    "fragment": put(path="/v3/kv/put?a#b"),
}


@pytest.mark.parametrize("raw", SPLICED.values(), ids=SPLICED.keys())
def test_splices_what_it_does_not_parse_exactly(member: FakeMember, raw: bytes) -> None:
    with Conn(member.url) as conn:
        conn.send(raw)
        spliced = member.accept_splice()
        with spliced:
            assert recv_exactly(spliced, len(raw)) == raw
            spliced.sendall(b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 1\r\n\r\nT")
            response = conn.read_response()
            assert (response.status_line, response.headers, response.body) == (
                b"HTTP/1.1 418 I'm a teapot", [(b"content-length", b"1")], b"T")
            # From now on the connection is the member's: bytes go through as they are, both ways.
            conn.send(b"anything\r\n")
            assert recv_exactly(spliced, 10) == b"anything\r\n"
            spliced.sendall(b"back")
            assert conn.read_exactly(4) == b"back"
            spliced.shutdown(socket.SHUT_RDWR)
        assert conn.closed_by_server()


# Unusual but well-formed: httptools takes these, so the worker answers them itself.
FORWARDED = {
    "tab and spaces around a value": (put(("X-A", " \t1 \t2\t ")), [b"x-a", b"1 \t2"]),
    "obs-text in a value": (put(("X-A", "caf\xe9")), [b"x-a", b"caf\xe9"]),
    "empty value": (put(("X-A", "")), [b"x-a", b""]),
    "upper-case name": (put(("X-UPPER", "V")), [b"x-upper", b"V"]),
}


@pytest.mark.parametrize(("raw", "header"), FORWARDED.values(), ids=FORWARDED.keys())
def test_forwards_what_the_member_accepts(member: FakeMember, raw: bytes, header: list[bytes]) -> None:
    with Conn(member.url) as conn:
        conn.send(raw)
        frame = member.next_frame()
        assert frame[0] == frames.REQUEST and header in frame[5] and frame[7] == BODY
        member.answer(frame[1], 200, OK_HEADERS, b"{}")
        assert conn.read_response().body == b"{}"


def test_switches_to_a_splice_after_answering(member: FakeMember) -> None:
    watch = put(path="/v3/watch")
    with Conn(member.url) as conn:
        conn.send(put() + watch)
        frame = member.next_frame()
        member.answer(frame[1], 200, OK_HEADERS, b"{}")
        assert conn.read_response().body == b"{}"
        with member.accept_splice() as spliced:
            assert recv_exactly(spliced, len(watch)) == watch  # the answered request is not resent
            conn.close()
            spliced.settimeout(5)
            assert spliced.recv(1) == b""  # the client left: the member's connection ends too


def test_exits_when_its_member_is_gone(member: FakeMember) -> None:
    member.channel.close()
    assert member.proc.wait(timeout=10) == 0


def test_a_client_that_does_not_read_is_not_answered_ahead(member: FakeMember) -> None:
    """Flow control: while a client leaves its answers unread, the worker stops taking its pipelined
    requests (and reading more of them), rather than buffering answers without bound."""
    count, size = 60, 1024 * 1024
    with Conn(member.url) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.send(put() * count)
        forwarded = 0
        try:
            while True:
                # Long enough for an unthrottled worker to send its next frame at once.
                frame = member.next_frame(timeout=1.0)
                member.answer(frame[1], 200, [[b"content-length", str(size).encode()]], b"x" * size)
                forwarded += 1
        except TimeoutError:
            pass
        # The kernel's socket buffers and the transport's write buffer hold a few answers, no more.
        assert forwarded < 16
        # Reading on, the client gets every answer, in order.
        for i in range(count):
            while forwarded <= i:
                frame = member.next_frame()
                member.answer(frame[1], 200, [[b"content-length", str(size).encode()]], b"x" * size)
                forwarded += 1
            assert len(conn.read_response().body) == size, i


def test_a_client_whose_requests_pile_up_is_not_read_ahead(member: FakeMember) -> None:
    """While one request waits for its answer, the worker reads what follows only up to a bound: a
    client pushing more is held back by TCP, not buffered by the worker."""
    # Small kernel buffers on the worker's side (an accepted socket inherits the listener's), so what
    # the worker holds itself dominates what the client can push.
    member.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    one = put(body=b"x" * 65536)
    count = 8 * 1024 * 1024 // len(one)
    data = one * count
    with Conn(member.url) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        conn.sock.setblocking(False)
        sent = 0
        while sent < len(data):
            try:
                sent += conn.sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                # Long enough for an unthrottled worker to read on.
                if not select.select([], [conn.sock], [], 1.0)[1]:
                    break
        assert sent < 4 * 1024 * 1024, sent  # the worker's 1 MiB and the kernel's buffers
        conn.sock.setblocking(True)
        pusher = threading.Thread(target=conn.sock.sendall, args=(data[sent:],))
        pusher.start()
        for _ in range(count):
            frame = member.next_frame()
            assert len(frame[7]) == 65536
            member.answer(frame[1], 200, OK_HEADERS, b"{}")
        pusher.join(timeout=10)
        assert [conn.read_response().body for _ in range(count)] == [b"{}"] * count


def test_a_splice_the_member_does_not_read_holds_the_client_back(member: FakeMember) -> None:
    """A spliced upload goes no faster than the member reads it: the worker does not buffer it."""
    member.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    size = 8 * 1024 * 1024
    data = request("POST", "/v3/watch", b"x" * size)
    with Conn(member.url) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        conn.sock.setblocking(False)
        sent = 0
        spliced: socket.socket | None = None
        while sent < len(data):
            try:
                sent += conn.sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                if spliced is None:
                    spliced = member.accept_splice()
                    spliced.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                # Long enough for an unthrottled worker to read on.
                if not select.select([], [conn.sock], [], 1.0)[1]:
                    break
        assert spliced is not None
        with spliced:
            assert sent < 4 * 1024 * 1024, sent
            conn.sock.setblocking(True)
            pusher = threading.Thread(target=conn.sock.sendall, args=(data[sent:],))
            pusher.start()
            assert recv_exactly(spliced, len(data)) == data
            pusher.join(timeout=10)


def test_decodes_the_rpcs_it_is_told_to_and_encodes_payload_answers(member: FakeMember) -> None:
    # The fake member told the worker to decode puts (--decode /v3/kv/put=PutRequest) and nothing else.
    with Conn(member.url) as conn:
        conn.send(put())
        frame = member.next_frame()
        assert frame[8] == codec.decode_request(BODY, "PutRequest")
        assert frame[8]["key"] == b"a" and frame[8]["value"] == b"b"
        # A payload answer (a dict) is encoded by the worker with etcd's codec, length added.
        payload = {"header": {"revision": "7"}, "kvs": [{"key": "YQ=="}]}
        member.answer(frame[1], 200, OK_HEADERS_NO_LENGTH, payload)
        response = conn.read_response()
        assert response.body == b'{"header":{"revision":"7"},"kvs":[{"key":"YQ=="}]}'
        assert response.header(b"content-length") == str(len(response.body)).encode()
        # A body the worker cannot decode goes undecoded: the member answers etcd's error itself.
        conn.send(put(body=b'{"key":"YQ="}'))
        bad = member.next_frame()
        assert bad[7] == b'{"key":"YQ="}' and bad[8] is None
        member.answer(bad[1], 400, [[b"content-length", b"2"]], b"{}")
        assert conn.read_response().body == b"{}"
        # An RPC it was not told to decode goes as bytes too.
        conn.send(put(path="/v3/kv/range"))
        other = member.next_frame()
        assert other[3] == "/v3/kv/range" and other[8] is None
        member.answer(other[1], 200, [[b"content-length", b"2"]], b"{}")
        assert conn.read_response().body == b"{}"


def test_sigterm_finishes_the_answers_owed_then_exits(member: FakeMember) -> None:
    with Conn(member.url) as conn:
        conn.send(put())
        frame = member.next_frame()
        # The member stops its workers while this request is still being answered: the worker
        # waits for the answer it owes, sends it, and only then exits.
        member.proc.send_signal(signal.SIGTERM)
        member.answer(frame[1], 200, OK_HEADERS, b"{}")
        assert conn.read_response().body == b"{}"
    assert member.proc.wait(timeout=10) == 0
