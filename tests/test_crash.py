"""Durability under SIGKILL: every acknowledged write survives a crash with the revision it was given.

`test_acknowledged_writes_survive_sigkill` runs rounds of: writer threads put fresh keys, run txns that
put several fresh keys, and delete earlier groups of keys, recording each request before it is sent and
its acknowledged header revision; the server is SIGKILLed at a random moment while they write, then
restarted on the same data dir and checked:

- every acknowledged put/txn is present with exactly the acknowledged mod_revision (now, and when read
  at that revision; absent one revision earlier), every acknowledged delete is absent from its revision
  on and was present just before it;
- writes that were in flight at the kill (never acknowledged) are all-or-nothing and carry the value
  that was sent (no torn txn, no garbage); whatever outcome is observed then must stay;
- acknowledged revisions are unique, strictly increasing per writer, and ordered in real time (a write
  acknowledged before another was sent has the smaller revision);
- the current revision accounts for exactly the writes that took effect: no acknowledged revision is
  lost and no phantom revision appears;
- the restarted server accepts writes, at the next revision.

The run is seeded (ETCDPY_CRASH_SEED to repeat one); every assertion message carries the seed. Writers
are real threads, so which requests are in flight at the kill differs between runs even with one seed.
"""

from __future__ import annotations

import base64
import os
import random
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Server, start_etcdpy

ROUNDS = 5
WRITERS = 4
MAX_TXN_OPS = 128  # the server's default --max-txn-ops: the size of one batched verification read
PREFIX = "crash/"
CLIENT_TIMEOUT_S = 10.0


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass
class Group:
    """Keys written together by one put or one txn; deleted together by one deleterange."""

    prefix: str
    values: dict[str, str]
    owner: int
    put_rev: int | None = None  # known once acknowledged, or observed after a restart
    # "pending": the put was sent but not acknowledged; "live"; "delete-pending": a delete was sent
    # but not acknowledged; "deleted"; "absent": an unacknowledged put that did not take effect.
    state: str = "pending"
    delete_rev: int | None = None  # None for a deletion whose revision was never acknowledged


@dataclass
class Ack:
    kind: str
    rev: int
    sent: float
    acked: float
    writer: int


@dataclass
class History:
    seed: int
    groups: list[Group] = field(default_factory=list, repr=False)
    acks: list[Ack] = field(default_factory=list, repr=False)
    errors: list[str] = field(default_factory=list, repr=False)
    unknown_deletes: int = 0  # deletes that took effect but were never acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, msg: str) -> str:
        return f"[seed {self.seed}] {msg}"


class Writer(threading.Thread):
    def __init__(self, url: str, hist: History, writer: int, rnd: int, rng: random.Random,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.hist, self.writer, self.rnd, self.rng, self.stop = url, hist, writer, rnd, rng, stop
        self.seq = 0

    def run(self) -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            while not self.stop.is_set():
                try:
                    if not self.step(client):
                        return
                except httpx.HTTPError:
                    return  # the server is gone: the request in flight stays unacknowledged

    def _post(self, client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        resp = client.post(f"{self.url}{path}", json=body)
        if resp.status_code != 200:
            with self.hist.lock:
                self.hist.errors.append(f"{path} {body} -> {resp.status_code} {resp.text}")
            return None
        out: dict[str, Any] = resp.json()
        return out

    def _ack(self, kind: str, rev: int, sent: float) -> None:
        with self.hist.lock:
            self.hist.acks.append(Ack(kind, rev, sent, time.monotonic(), self.writer))

    def step(self, client: httpx.Client) -> bool:
        roll = self.rng.random()
        mine = [g for g in self.hist.groups if g.owner == self.writer and g.state == "live"]
        if roll < 0.25 and mine:
            return self.delete(client, self.rng.choice(mine))
        return self.put(client, 1 if roll < 0.6 else self.rng.randint(2, 4))

    def put(self, client: httpx.Client, n: int) -> bool:
        self.seq += 1
        prefix = f"{PREFIX}{self.rnd}/{self.writer}/{self.seq:06d}/"
        values = {f"{prefix}{i}": f"v{self.rnd}.{self.writer}.{self.seq}.{i}.{self.rng.random()}"
                  for i in range(n)}
        group = Group(prefix, values, self.writer)
        with self.hist.lock:
            self.hist.groups.append(group)
        sent = time.monotonic()
        if n == 1:
            [(key, value)] = values.items()
            out = self._post(client, "/v3/kv/put", {"key": b64(key), "value": b64(value)})
        else:
            first = next(iter(values))
            out = self._post(client, "/v3/kv/txn", {
                "compare": [{"key": b64(first), "target": "CREATE", "result": "EQUAL",
                             "create_revision": "0"}],
                "success": [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in values.items()],
            })
            if out is not None and not out.get("succeeded"):
                with self.hist.lock:
                    self.hist.errors.append(f"txn creating fresh keys {prefix} did not succeed: {out}")
                return False
        if out is None:
            return False
        rev = int(out["header"]["revision"])
        group.put_rev, group.state = rev, "live"
        self._ack("put" if n == 1 else "txn", rev, sent)
        return True

    def delete(self, client: httpx.Client, group: Group) -> bool:
        group.state = "delete-pending"
        sent = time.monotonic()
        out = self._post(client, "/v3/kv/deleterange",
                         {"key": b64(group.prefix), "range_end": b64(prefix_end(group.prefix))})
        if out is None:
            return False
        if int(out.get("deleted", "0")) != len(group.values):
            with self.hist.lock:
                self.hist.errors.append(f"deleterange {group.prefix} of {len(group.values)} live keys: {out}")
            return False
        rev = int(out["header"]["revision"])
        group.delete_rev, group.state = rev, "deleted"
        self._ack("delete", rev, sent)
        return True


def batched_ranges(client: httpx.Client, url: str,
                   reads: list[tuple[str, int]]) -> list[list[dict[str, Any]]]:
    """The kvs of `range key at revision` for each (key, revision), read with read-only txns."""
    out: list[list[dict[str, Any]]] = []
    for i in range(0, len(reads), MAX_TXN_OPS):
        chunk = reads[i:i + MAX_TXN_OPS]
        resp = client.post(f"{url}/v3/kv/txn", json={
            "success": [{"request_range": {"key": b64(k), "revision": str(r)}} for k, r in chunk],
        })
        assert resp.status_code == 200, resp.text
        responses = resp.json()["responses"]
        assert len(responses) == len(chunk), resp.text
        out.extend(r["response_range"].get("kvs", []) for r in responses)
    return out


def read_prefix(client: httpx.Client, url: str) -> tuple[int, dict[str, dict[str, Any]]]:
    resp = client.post(f"{url}/v3/kv/range", json={"key": b64(PREFIX), "range_end": b64(prefix_end(PREFIX))})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return int(body["header"]["revision"]), {unb64(kv["key"]): kv for kv in body.get("kvs", [])}


def resolve_in_flight(hist: History, live: dict[str, dict[str, Any]]) -> None:
    """Decide what became of the requests the kill interrupted; they must be all-or-nothing."""
    for g in hist.groups:
        present = [k for k in g.values if k in live]
        if g.state == "pending":
            if not present:
                g.state = "absent"
                continue
            assert len(present) == len(g.values), hist.fail(f"torn write: only {present} of {list(g.values)}")
            revs = {int(live[k]["mod_revision"]) for k in present}
            assert len(revs) == 1, hist.fail(f"one unacknowledged txn landed at several revisions: {revs}")
            g.put_rev, g.state = revs.pop(), "live"
        elif g.state == "delete-pending":
            if present:
                assert len(present) == len(g.values), hist.fail(f"torn delete of {g.prefix}: {present} left")
                g.state = "live"
            else:
                g.state = "deleted"
                hist.unknown_deletes += 1


def check_store(client: httpx.Client, url: str, hist: History, groups: list[Group]) -> int:
    """Check the current keyspace against the history, and `groups` at their revisions."""
    current, live = read_prefix(client, url)
    resolve_in_flight(hist, live)

    expected: dict[str, tuple[str, int]] = {}
    for g in hist.groups:
        if g.state == "live":
            assert g.put_rev is not None
            expected.update((k, (v, g.put_rev)) for k, v in g.values.items())
    missing = sorted(set(expected) - set(live))
    assert not missing, hist.fail(f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}")
    extra = sorted(set(live) - set(expected))
    assert not extra, hist.fail(f"{len(extra)} keys present that were deleted or never written: {extra[:5]}")
    for key, (value, rev) in expected.items():
        kv = live[key]
        got = (unb64(kv.get("value", "")), int(kv["mod_revision"]), int(kv["create_revision"]), kv["version"])
        assert got == (value, rev, rev, "1"), hist.fail(f"{key}: got {got}, want {(value, rev, rev, '1')}")

    # Unique revisions: each write that took effect created exactly one revision of its own.
    put_revs = [g.put_rev for g in hist.groups if g.put_rev is not None]
    del_revs = [g.delete_rev for g in hist.groups if g.delete_rev is not None]
    known = put_revs + del_revs
    assert len(set(known)) == len(known), hist.fail("two writes share a revision")
    assert max(known, default=1) <= current, hist.fail(f"revision {max(known)} above current {current}")
    # No acknowledged revision missing, no phantom one: revisions 2..current are exactly the known
    # writes plus the unacknowledged deletes that took effect (whose revisions nobody saw).
    assert current - 1 == len(known) + hist.unknown_deletes, hist.fail(
        f"current revision {current}, but {len(known)} known writes and {hist.unknown_deletes} "
        f"unacknowledged deletes took effect")

    # History: each group at its put revision (and just before), and around its delete revision.
    reads: list[tuple[str, int]] = []
    wants: list[tuple[str, int, str | None]] = []  # key, revision read at, value expected (None: absent)
    for g in groups:
        if g.put_rev is None:
            continue
        for k, v in g.values.items():
            reads += [(k, g.put_rev), (k, g.put_rev - 1)]
            wants += [(k, g.put_rev, v), (k, g.put_rev - 1, None)]
            if g.delete_rev is not None:
                reads += [(k, g.delete_rev), (k, g.delete_rev - 1)]
                wants += [(k, g.delete_rev, None), (k, g.delete_rev - 1, v)]
    for (key, at, value), kvs in zip(wants, batched_ranges(client, url, reads), strict=True):
        if value is None:
            assert kvs == [], hist.fail(f"{key} present at revision {at}: {kvs}")
        else:
            assert len(kvs) == 1, hist.fail(f"{key} absent at revision {at}")
            g_rev = int(kvs[0]["mod_revision"])
            got = unb64(kvs[0].get("value", ""))
            assert got == value and g_rev <= at, hist.fail(f"{key} at {at}: {kvs[0]}, want value {value!r}")
    return current


def check_ack_order(hist: History) -> None:
    """Acknowledged revisions increase per writer and respect real time across writers."""
    by_writer: dict[int, list[Ack]] = {}
    for a in hist.acks:
        by_writer.setdefault(a.writer, []).append(a)
    for w, acks in by_writer.items():
        revs = [a.rev for a in sorted(acks, key=lambda a: a.sent)]
        assert all(x < y for x, y in zip(revs, revs[1:], strict=False)), hist.fail(
            f"writer {w}: revisions not strictly increasing: {revs}")
    by_ack = sorted(hist.acks, key=lambda a: a.acked)
    best = 0
    i = 0
    for b in sorted(hist.acks, key=lambda a: a.sent):
        while i < len(by_ack) and by_ack[i].acked < b.sent:
            best = max(best, by_ack[i].rev)
            i += 1
        assert b.rev > best, hist.fail(
            f"{b.kind} sent after revision {best} was acknowledged got revision {b.rev}")


def probe_write(client: httpx.Client, url: str, hist: History, rnd: int, current: int) -> None:
    """The restarted server accepts a write, at the revision after everything recovered."""
    key = f"{PREFIX}{rnd}/probe/"
    sent = time.monotonic()
    resp = client.post(f"{url}/v3/kv/put", json={"key": b64(key + "0"), "value": b64(f"probe {rnd}")})
    assert resp.status_code == 200, hist.fail(f"write after restart refused: {resp.status_code} {resp.text}")
    rev = int(resp.json()["header"]["revision"])
    assert rev == current + 1, hist.fail(f"write after restart got revision {rev}, want {current + 1}")
    hist.groups.append(Group(key, {key + "0": f"probe {rnd}"}, owner=-1, put_rev=rev, state="live"))
    hist.acks.append(Ack("probe", rev, sent, time.monotonic(), -1))


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("ETCDPY_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    print(f"crash test seed {seed}")
    rng = random.Random(seed)
    hist = History(seed)
    server = start_etcdpy(tmp_path)
    deadline = time.monotonic() + 50
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            for rnd in range(ROUNDS):
                assert time.monotonic() < deadline, hist.fail(f"out of time before round {rnd}")
                stop = threading.Event()
                writers = [Writer(server.url, hist, w, rnd, random.Random(rng.random()), stop)
                           for w in range(WRITERS)]
                first_new = len(hist.groups)
                for t in writers:
                    t.start()
                # Let the writers run for a random while, then kill the server under them.
                stop.wait(rng.uniform(0.2, 1.5))
                server.kill()
                stop.set()
                for t in writers:
                    t.join(timeout=CLIENT_TIMEOUT_S + 5)
                    assert not t.is_alive(), hist.fail("a writer hung after the kill")
                assert not hist.errors, hist.fail(f"requests failed while the server ran: {hist.errors[:3]}")
                acked = sum(1 for a in hist.acks if a.writer >= 0)
                assert acked > 0, hist.fail(f"round {rnd}: no write was acknowledged before the kill")

                server = server.restart()
                # This round's groups in full, plus a sample of earlier ones (all of them at the end).
                older = hist.groups[:first_new]
                sample = older if rnd == ROUNDS - 1 else rng.sample(older, min(len(older), 200))
                current = check_store(client, server.url, hist, sample + hist.groups[first_new:])
                check_ack_order(hist)
                probe_write(client, server.url, hist, rnd, current)
            print(f"seed {seed}: {len(hist.acks)} acknowledged writes, {hist.unknown_deletes} "
                  f"unacknowledged deletes applied, final revision {current + 1}")
    finally:
        server.kill()


# --------------------------------------------------------------------------- torn WAL tail

_RECORD_HEADER = struct.Struct(">IIBI")  # length, crc32, type, header crc32: storage/wal.py's framing
_REC_ENTRY = 1


def wal_records(path: Path) -> list[tuple[int, int, int]]:
    """(offset, total size, type) of each record in a WAL segment (up to the zeros written ahead)."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos + _RECORD_HEADER.size <= len(data):
        length, _, rtype, _ = _RECORD_HEADER.unpack_from(data, pos)
        if rtype == 0:
            break
        out.append((pos, _RECORD_HEADER.size + length, rtype))
        pos += _RECORD_HEADER.size + length
    return out


def last_segment(server: Server) -> Path:
    segments = sorted((server.data_dir / "member" / "wal").glob("*.wal"))
    assert segments, f"no WAL segment under {server.data_dir}/member/wal"
    return segments[-1]


def put_keys(client: httpx.Client, url: str, n: int) -> dict[str, tuple[str, int]]:
    written = {}
    for i in range(n):
        key, value = f"torn/{i:03d}", f"value {i}"
        resp = client.post(f"{url}/v3/kv/put", json={"key": b64(key), "value": b64(value)})
        assert resp.status_code == 200, resp.text
        written[key] = (value, int(resp.json()["header"]["revision"]))
    return written


def assert_intact(client: httpx.Client, url: str, written: dict[str, tuple[str, int]]) -> None:
    resp = client.post(f"{url}/v3/kv/range", json={"key": b64("torn/"), "range_end": b64("torn0")})
    assert resp.status_code == 200, resp.text
    kvs = resp.json().get("kvs", [])
    live = {unb64(kv["key"]): (unb64(kv["value"]), int(kv["mod_revision"])) for kv in kvs}
    for key, want in written.items():
        assert live.get(key) == want, f"{key}: {live.get(key)} after restart, want {want}"


def write_and_read_back(client: httpx.Client, url: str) -> None:
    before = client.post(f"{url}/v3/kv/range", json={"key": b64("x")}).json()["header"]["revision"]
    resp = client.post(f"{url}/v3/kv/put", json={"key": b64("after/torn"), "value": b64("new")})
    assert resp.status_code == 200, f"write after a torn WAL tail: {resp.status_code} {resp.text}"
    rev = int(resp.json()["header"]["revision"])
    assert rev == int(before) + 1
    got = client.post(f"{url}/v3/kv/range", json={"key": b64("after/torn")}).json()
    assert [(unb64(kv["value"]), int(kv["mod_revision"])) for kv in got.get("kvs", [])] == [("new", rev)]


@pytest.mark.parametrize("cut", [1, 20])
def test_torn_wal_tail_few_bytes(tmp_path: Path, cut: int) -> None:
    """A few bytes cut off the last segment (a write torn by a crash): it starts, earlier writes intact."""
    server = start_etcdpy(tmp_path)
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            written = put_keys(client, server.url, 20)
            server.kill()
            segment = last_segment(server)
            os.truncate(segment, segment.stat().st_size - cut)
            server = server.restart()
            # The torn record is the last one; every write acknowledged before the last one is intact.
            last = max(written, key=lambda k: written[k][1])
            assert_intact(client, server.url, {k: v for k, v in written.items() if k != last})
            write_and_read_back(client, server.url)
            # The repaired log is clean: a further crash and restart keeps the write made after it.
            server.kill()
            server = server.restart()
            assert_intact(client, server.url, {k: v for k, v in written.items() if k != last})
    finally:
        server.kill()


def test_torn_unacknowledged_entry(tmp_path: Path) -> None:
    """A log entry torn mid-record, as a kill during its append leaves it: the server starts without it.

    The entry is written by hand after a clean stop (a copy of the last entry with its payload cut
    short) where the records end, the file cut there: the state a power loss can leave when an append
    grew the file past the zeros written ahead and only part of it landed. The entry was never synced,
    so never applied or acknowledged.
    """
    server = start_etcdpy(tmp_path)
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            written = put_keys(client, server.url, 10)
            server.stop()
            segment = last_segment(server)
            data = segment.read_bytes()
            records = wal_records(segment)
            entries = [(off, size) for off, size, rtype in records if rtype == _REC_ENTRY]
            off, size = entries[-1]
            end = records[-1][0] + records[-1][1]
            # Same record, index bumped past the last one, cut short halfway through the payload.
            record = bytearray(data[off:off + size])
            index = struct.unpack_from(">Q", record, _RECORD_HEADER.size)[0]
            struct.pack_into(">Q", record, _RECORD_HEADER.size, index + 1)
            with open(segment, "r+b") as f:
                f.truncate(end)
                f.seek(end)
                f.write(bytes(record[: size // 2]))
            server = server.restart()
            assert_intact(client, server.url, written)
            write_and_read_back(client, server.url)
    finally:
        server.kill()


def test_wal_behind_the_applied_state_refuses_to_start(tmp_path: Path) -> None:
    """The WAL loses its last two entries although the store had applied them (a disk that lost synced
    data, or a WAL restored from an older copy).

    New log entries would reuse indexes the store has already applied and be skipped, so writes would
    be acknowledged without taking effect: etcdpy must refuse to start on such a data dir, say why, and
    leave the data as it was.
    """
    server = start_etcdpy(tmp_path)
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            put_keys(client, server.url, 10)
    finally:
        server.kill()
    segment = last_segment(server)
    entries = [(o, s) for o, s, t in wal_records(segment) if t == _REC_ENTRY]
    off, size = entries[-2]  # into the entry before the last: the store is two entries ahead
    os.truncate(segment, off + size - 3)
    before = sorted((p.relative_to(server.data_dir), p.stat().st_size)
                    for p in (server.data_dir / "member" / "wal").iterdir())
    done = subprocess.run(server.argv, cwd=server.cwd, env=server.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "the log lost committed entries" in done.stderr
    after = sorted((p.relative_to(server.data_dir), p.stat().st_size)
                   for p in (server.data_dir / "member" / "wal").iterdir())
    assert after[:-1] == before[:-1]  # only the repaired torn tail may differ


def data_dir_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_flipped_bytes_mid_segment_refuse_to_start_and_touch_nothing(tmp_path: Path) -> None:
    """16 bytes flipped in the middle of the WAL (a bad disk, not a crash): etcd refuses to start with
    `walpb: crc mismatch` and changes nothing; it must not cut the log at the damage and serve on."""
    server = start_etcdpy(tmp_path)
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            put_keys(client, server.url, 200)
    finally:
        server.kill()
    segment = last_segment(server)
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    segment.write_bytes(bytes(data))
    before = data_dir_files(server.data_dir)
    done = subprocess.run(server.argv, cwd=server.cwd, env=server.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "walpb: crc mismatch" in line]
    assert len(lines) == 1, done.stderr[-2000:]
    assert data_dir_files(server.data_dir) == before
