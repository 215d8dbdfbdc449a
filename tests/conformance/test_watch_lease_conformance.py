"""Differential conformance of watch and lease behaviour: real etcd 3.4 vs etcdpy.

Two kinds of cases:

- stream cases drive `/v3/watch` (and keepalive) interactively over a chunked upload and compare the
  streams message by message, after the harness normalisation (ids, raft term, revisions relative to
  the per-case baseline). Each message must also arrive as exactly one HTTP chunk. These run against a
  dedicated pair of servers started with `--experimental-watch-progress-notify-interval 1s` and a small
  `--max-request-bytes` (so fragmentation can be exercised with modest values);
- unary lease cases reuse the gateway harness (`Case`/`Step`) against the session servers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conformance.conftest import candidate_is_etcd
from tests.conformance.harness import (
    Case,
    Keys,
    Registry,
    Step,
    Target,
    assert_matches,
    b64,
    normalise,
)
from tests.conformance.steps import grant, lease_id, post, put, rng
from tests.servers import Server, start_etcd, start_etcdpy
from tests.stream_client import StreamClosed, StreamConn

EXTRA_FLAGS = ["--experimental-watch-progress-notify-interval", "1s", "--max-request-bytes", "65536"]
LINE_TIMEOUT_S = 10.0
QUIET_S = 0.4


# ---------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def stream_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    ref = start_etcd(tmp_path_factory.mktemp("etcd-watch"), extra=EXTRA_FLAGS)
    try:
        tmp = tmp_path_factory.mktemp("etcdpy-watch")
        cand = (start_etcd(tmp, name="default", extra=EXTRA_FLAGS) if candidate_is_etcd()
                else start_etcdpy(tmp, extra=EXTRA_FLAGS))
        try:
            yield ref, cand
        finally:
            cand.stop()
    finally:
        ref.stop()


# ---------------------------------------------------------------- stream cases


@dataclass
class Ctx:
    """One run of a stream case against one server; records what is compared."""

    target: Target
    baseline: int = 0
    transcript: list[tuple[str, bytes]] = field(default_factory=list)
    conns: list[StreamConn] = field(default_factory=list)
    chunk_errors: list[str] = field(default_factory=list)

    def rev(self, n: int) -> int:
        return self.baseline + n

    def norm(self, data: bytes) -> bytes:
        return normalise(data, self.baseline)

    def call(self, path: str, body: object, label: str | None = None) -> dict[str, object]:
        resp = self.target.client.post(self.target.url + path, content=json.dumps(body).encode())
        self.transcript.append((label or f"POST {path}", b"%d " % resp.status_code + self.norm(resp.content)))
        out: dict[str, object] = resp.json() if resp.content else {}
        return out

    def put(self, key: str, value: str = "v", **fields: object) -> None:
        self.call("/v3/kv/put", {"key": key, "value": b64(value), **fields})

    def watch(self, *objs: object) -> StreamConn:
        conn = StreamConn(self.target.url, "/v3/watch", timeout=LINE_TIMEOUT_S)
        self.conns.append(conn)
        if objs:
            conn.send(*objs)
        return conn

    def read(self, conn: StreamConn, n: int, label: str = "stream") -> None:
        """Read n messages. Messages of different watchers for the same revision come in etcd's Go map
        order (random), so such a run of messages is compared sorted."""
        lines: list[bytes] = []
        failure = b""
        for _ in range(n):
            try:
                lines.append(self.norm(conn.read_line(LINE_TIMEOUT_S)))
            except (TimeoutError, StreamClosed) as exc:
                failure = f"<{type(exc).__name__}>".encode()
                break
        for i, line in enumerate(_sort_same_revision(lines)):
            self.transcript.append((f"{label}[{i}]", line))
        if failure:
            self.transcript.append((f"{label}[{len(lines)}]", failure))
        if conn.chunked:
            for chunk in conn.chunks:
                if chunk.count(b"\n") != 1 or not chunk.endswith(b"\n"):
                    self.chunk_errors.append(f"chunk is not exactly one message: {chunk[:120]!r}")
        conn.chunks.clear()

    def quiet(self, conn: StreamConn, label: str = "stream", seconds: float = QUIET_S) -> None:
        extra = b"" if conn.quiet(seconds) else self.norm(conn.pending[0])
        self.transcript.append((f"{label} quiet", extra))

    def status(self, conn: StreamConn, label: str = "status") -> None:
        status = conn.read_head(LINE_TIMEOUT_S)
        ctype = conn.headers.get("content-type", "")
        grpc = conn.headers.get("grpc-metadata-content-type", "")
        self.transcript.append((label, f"{status} {ctype} {grpc}".encode()))

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _event_revision(line: bytes) -> str | None:
    try:
        result = json.loads(line)["result"]
    except (ValueError, KeyError, TypeError):
        return None
    if not result.get("events"):
        return None
    rev: str | None = result["header"].get("revision")
    return rev


def _sort_same_revision(lines: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    run: list[bytes] = []
    run_rev: str | None = None
    for line in lines:
        rev = _event_revision(line)
        if rev is None or rev != run_rev:
            out.extend(sorted(run))
            run = []
        run_rev = rev
        if rev is None:
            out.append(line)
        else:
            run.append(line)
    out.extend(sorted(run))
    return out


StreamCase = Callable[[Ctx, Keys], None]
STREAM_CASES: dict[str, StreamCase] = {}


def stream_case(fn: StreamCase) -> StreamCase:
    STREAM_CASES[fn.__name__.removeprefix("case_").replace("_", "-")] = fn
    return fn


def create(key: str, **fields: object) -> dict[str, object]:
    return {"create_request": {"key": key, **fields}}


@stream_case
def case_put_and_delete(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("a")))
    c.read(w, 1)
    c.put(k("a"), "1")
    c.put(k("a"), "2")
    c.put(k("b"), "other key")
    c.call("/v3/kv/deleterange", {"key": k("a")})
    c.read(w, 3)
    c.quiet(w)


@stream_case
def case_range_and_prefix(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("b"), range_end=k("d")), create(k(), range_end=k.end))
    c.read(w, 2)
    for name in ("a", "b", "c", "d"):
        c.put(k(name), name)
    c.read(w, 6)
    c.quiet(w)


@stream_case
def case_from_key_and_empty_key(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("m"), range_end="AA=="), {"create_request": {}})
    c.read(w, 2)
    c.put(k("a"), "before")
    c.put(k("z"), "after")
    c.put("AA==", "nul key")
    c.read(w, 2)
    c.quiet(w)


@stream_case
def case_prev_kv_and_filters(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("a"), prev_kv=True), create(k("a"), filters=["NOPUT"]),
                create(k("a"), filters=[1], prev_kv=True), create(k("a"), filters=["NOPUT", "NODELETE"]))
    c.read(w, 4)
    c.put(k("a"), "1")
    c.put(k("a"), "2")
    c.call("/v3/kv/deleterange", {"key": k("a"), "prev_kv": True})
    c.read(w, 6)
    c.quiet(w)


@stream_case
def case_history_replay_in_one_message(c: Ctx, k: Keys) -> None:
    for i in range(4):
        c.put(k("h"), str(i))
    c.call("/v3/kv/deleterange", {"key": k("h")})
    w = c.watch(create(k("h"), start_revision=c.rev(2), prev_kv=True))
    c.read(w, 2)
    c.put(k("h"), "live")
    c.read(w, 1)
    c.quiet(w)


@stream_case
def case_txn_events_share_a_message(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k(), range_end=k.end))
    c.read(w, 1)
    c.call("/v3/kv/txn", {"success": [{"request_put": {"key": k("x"), "value": b64("1")}},
                                      {"request_put": {"key": k("y"), "value": b64("2")}}]})
    c.call("/v3/kv/deleterange", {"key": k(), "range_end": k.end})
    c.read(w, 2)


@stream_case
def case_ids_cancel_and_progress(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("a")), create(k("a")), create(k("a"), watch_id=7), create(k("a"), watch_id=7))
    c.read(w, 4)
    w.send({"cancel_request": {"watch_id": 1}})
    c.read(w, 1)
    w.send({"cancel_request": {"watch_id": 99}}, {"progress_request": {}})
    c.read(w, 1)  # the unknown id gets no answer; the progress answer comes next
    c.put(k("a"))
    c.read(w, 2)
    w.send(create(k("a")))  # ids continue after the highest one handed out
    c.read(w, 1)
    c.quiet(w)


@stream_case
def case_empty_range_is_refused(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("b"), range_end=k("a")), create(k("b"), range_end=k("b")), create(k("b")))
    c.read(w, 3)


@stream_case
def case_progress_notify(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("a"), progress_notify=True, watch_id=3))
    c.read(w, 1)
    c.read(w, 1, "first progress")  # after at most one interval (1 s)
    c.put(k("a"))
    c.read(w, 1, "event")


@stream_case
def case_compacted_start_revision(c: Ctx, k: Keys) -> None:
    for i in range(3):
        c.put(k("c"), str(i))
    c.call("/v3/kv/compaction", {"revision": c.rev(3), "physical": True})
    w = c.watch(create(k("c"), start_revision=c.rev(1)), create(k("c"), start_revision=c.rev(3)))
    c.read(w, 4)
    w.send({"cancel_request": {"watch_id": 0}})  # the compacted watch's id is still known
    c.read(w, 1)
    c.quiet(w)


@stream_case
def case_future_start_revision(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("f"), start_revision=c.rev(3)))
    c.read(w, 1)
    for i in range(3):
        c.put(k("f"), str(i))
    c.read(w, 1)
    c.quiet(w)


@stream_case
def case_lease_revoke_deletes_in_one_revision(c: Ctx, k: Keys) -> None:
    lease = lease_id(k)
    c.call("/v3/lease/grant", {"ID": lease, "TTL": 600})
    w = c.watch(create(k(), range_end=k.end, prev_kv=True))
    c.read(w, 1)
    c.put(k("b"), lease=lease)
    c.put(k("a"), lease=lease)
    c.call("/v3/kv/lease/revoke", {"ID": lease})
    c.read(w, 3)
    c.quiet(w)


@stream_case
def case_lease_expiry_deletes_keys(c: Ctx, k: Keys) -> None:
    lease = lease_id(k)
    c.call("/v3/lease/grant", {"ID": lease, "TTL": 2})
    w = c.watch(create(k(), range_end=k.end))
    c.read(w, 1)
    c.put(k("a"), lease=lease)
    c.put(k("b"), lease=lease)
    c.read(w, 2)
    c.read(w, 1, "expiry")  # etcd checks every 500 ms: well within the line timeout
    c.call("/v3/lease/timetolive", {"ID": lease})


@stream_case
def case_fragment(c: Ctx, k: Keys) -> None:
    value = "x" * 40_000  # 8 values: more than max-request-bytes + 512 KiB in one response
    for i in range(8):
        c.put(k(f"v{i}"), value * 3)
    w = c.watch(create(k(), range_end=k.end, start_revision=c.rev(1), fragment=True, watch_id=1),
                create(k(), range_end=k.end, start_revision=c.rev(1), watch_id=2))
    c.read(w, 2)
    # the fragmented watch's pieces and the other watch's single message: order between watches varies
    lines = []
    for _ in range(3):
        try:
            lines.append(c.norm(w.read_line(LINE_TIMEOUT_S)))
        except (TimeoutError, StreamClosed):
            break
    sizes = sorted((json.loads(x)["result"].get("watch_id"), json.loads(x)["result"].get("fragment", False),
                    len(json.loads(x)["result"]["events"])) for x in lines)
    c.transcript.append(("pieces", repr(sizes).encode()))
    c.quiet(w)


@stream_case
def case_bad_first_object(c: Ctx, k: Keys) -> None:
    w = c.watch(b'{"create_request":{"key":"!!"}}')
    c.status(w)
    c.read(w, 1)
    w2 = c.watch(b'{"create_request":')
    w2.end_body()
    c.status(w2)
    c.read(w2, 1)


@stream_case
def case_bad_later_object_keeps_streaming(c: Ctx, k: Keys) -> None:
    w = c.watch(create(k("a")))
    c.status(w)
    c.read(w, 1)
    w.send(b'{"create_request":{"key":1}}', create(k("b")))
    c.put(k("b"))
    c.put(k("a"))
    c.read(w, 1)
    c.quiet(w)


@stream_case
def case_keepalive_stream(c: Ctx, k: Keys) -> None:
    lease = lease_id(k)
    c.call("/v3/lease/grant", {"ID": lease, "TTL": 60})
    conn = StreamConn(c.target.url, "/v3/lease/keepalive")
    c.conns.append(conn)
    conn.send({"ID": lease}, {"ID": 42}, {"ID": str(lease)}, {})
    c.status(conn)
    c.read(conn, 4, "keepalive")
    conn.send(b'{"ID":')
    conn.end_body()
    c.read(conn, 1, "after a truncated object")
    empty = StreamConn(c.target.url, "/v3/lease/keepalive")
    c.conns.append(empty)
    empty.end_body()
    c.status(empty, "empty body")
    c.read(empty, 1, "empty body")


def run_stream_case(target: Target, name: str, fn: StreamCase) -> Ctx:
    ctx = Ctx(target, target.reset())
    try:
        fn(ctx, Keys(name))
    finally:
        ctx.close()
    return ctx


@pytest.fixture(scope="module")
def stream_targets(stream_servers: tuple[Server, Server]) -> Iterator[tuple[Target, Target]]:
    ref, cand = stream_servers
    with httpx.Client(timeout=30.0) as c1, httpx.Client(timeout=30.0) as c2:
        yield Target("etcd", ref.url, c1), Target("etcdpy", cand.url, c2)


@pytest.mark.parametrize("name", list(STREAM_CASES))
def test_watch_stream_matches_etcd(name: str, stream_targets: tuple[Target, Target]) -> None:
    ref_target, cand_target = stream_targets
    fn = STREAM_CASES[name]
    ref = run_stream_case(ref_target, name, fn)
    got = run_stream_case(cand_target, name, fn)
    assert not ref.chunk_errors, ref.chunk_errors
    assert not got.chunk_errors, got.chunk_errors
    if ref.transcript != got.transcript:
        lines = [f"stream case {name}:"]
        for i in range(max(len(ref.transcript), len(got.transcript))):
            a = ref.transcript[i] if i < len(ref.transcript) else ("<none>", b"")
            b = got.transcript[i] if i < len(got.transcript) else ("<none>", b"")
            mark = "same" if a == b else "DIFF"
            lines.append(f"[{mark}] {a[0]}: {a[1][:600]!r}")
            if a != b:
                lines.append(f"       etcdpy {b[0]}: {b[1][:600]!r}")
        pytest.fail("\n".join(lines), pytrace=False)


# ---------------------------------------------------------------- unary lease cases


def _lease_cases() -> list[Case]:
    reg = Registry()
    ttl = "/v3/lease/timetolive"

    def alias_ttl(k: Keys) -> list[Step]:
        lease = lease_id(k)
        return [grant(lease, 300), put(k("a"), "1", lease=lease),
                post(ttl, {"ID": lease, "keys": True}), post("/v3/kv/lease/timetolive", {"ID": lease}),
                post(ttl, {"ID": 42}), post(ttl, {"ID": 0, "keys": True}), post(ttl, {})]

    reg.add("lease-grant-and-timetolive", alias_ttl, "remaining TTL truncated; unknown → TTL -1")
    reg.add("lease-grant-minimum-ttl", lambda k: [
        post("/v3/lease/grant", {"ID": lease_id(k, 0), "TTL": 0}),
        post("/v3/lease/grant", {"ID": lease_id(k, 1), "TTL": 1}),
        post("/v3/lease/grant", {"ID": lease_id(k, 2), "TTL": -5}),
        post("/v3/lease/grant", {"ID": lease_id(k, 3), "TTL": "3"}),
        post(ttl, {"ID": lease_id(k, 0)})], "TTL below the minimum is raised to 2")
    reg.add("lease-grant-errors", lambda k: [
        grant(lease_id(k)), post("/v3/lease/grant", {"ID": lease_id(k), "TTL": 5}, expect=412),
        post("/v3/lease/grant", {"ID": lease_id(k, 1), "TTL": 9_000_000_001}, expect=400),
        post("/v3/lease/grant", {"ID": lease_id(k, 2), "TTL": 9_000_000_000}),
        post("/v3/lease/grant", {"ID": lease_id(k, 3), "TTL": "x"}, expect=400)])
    reg.add("lease-revoke", lambda k: [
        grant(lease_id(k)), put(k("b"), "1", lease=lease_id(k)), put(k("a"), "2", lease=lease_id(k)),
        put(k("c"), "3"), post("/v3/lease/revoke", {"ID": lease_id(k)}),
        post("/v3/lease/revoke", {"ID": lease_id(k)}, expect=404),
        post("/v3/kv/lease/revoke", {"ID": 0}, expect=404), post("/v3/lease/revoke", {}, expect=404),
        rng(k(), range_end=k.end)], "keys deleted in one revision; unknown or 0 → 404")
    reg.add("lease-revoke-without-keys", lambda k: [
        grant(lease_id(k)), post("/v3/kv/lease/revoke", {"ID": str(lease_id(k))}),
        put(k("a"), "1", lease=lease_id(k), expect=404)], "no revision when nothing was attached")
    reg.add("lease-leases-listing", lambda k: [
        post("/v3/lease/leases", {}), grant(lease_id(k, 0), 600), grant(lease_id(k, 1), 300),
        grant(lease_id(k, 2), 900), post("/v3/lease/leases", {}), post("/v3/kv/lease/leases", {})],
        "sorted by expiry")
    reg.add("lease-put-moves-key-between-leases", lambda k: [
        grant(lease_id(k, 0)), grant(lease_id(k, 1)), put(k("a"), "1", lease=lease_id(k, 0)),
        put(k("a"), "2", lease=lease_id(k, 1)), post(ttl, {"ID": lease_id(k, 0), "keys": True}),
        post(ttl, {"ID": lease_id(k, 1), "keys": True}), post("/v3/lease/revoke", {"ID": lease_id(k, 0)}),
        rng(k("a"))])
    reg.add("lease-keepalive-unary", lambda k: [
        grant(lease_id(k), 60),
        Step("/v3/lease/keepalive", {"ID": lease_id(k)}, compare_headers=("grpc-metadata-content-type",)),
        Step("/v3/lease/keepalive", '{"ID":42}{"ID":0}', compare_headers=("grpc-metadata-content-type",)),
        Step("/v3/lease/keepalive", "", compare_headers=("grpc-metadata-content-type",)),
        Step("/v3/lease/keepalive", '{"ID":', expect=500),
        Step("/v3/lease/keepalive", '{"ID":"!"}', expect=500),
        Step("/v3/lease/keepalive", method="GET", expect=405)], "one answer per object; errors")
    reg.add("lease-decode-errors", lambda k: [
        post("/v3/lease/grant", '{"TTL":1.5}', expect=400), post(ttl, '{"keys":"yes"}', expect=400),
        post("/v3/lease/revoke", "[1]", expect=400), post("/v3/lease/leases", "{", expect=400)])
    return reg.cases


LEASE_CASES = _lease_cases()


@pytest.mark.parametrize("case", LEASE_CASES, ids=[c.id for c in LEASE_CASES])
def test_lease_api_matches_etcd(case: Case, reference: Target, candidate: Target) -> None:
    assert_matches(case, reference, candidate)


def test_stream_cases_cover_the_issue() -> None:
    assert len(STREAM_CASES) >= 15 and len(LEASE_CASES) >= 9


__all__ = ["Path", "time"]
