r"""The etcdctl script the parity test runs with etcdctl and etcdpyctl, section by section.

Each step is one etcdctl command line (without ``--endpoints``). ``{name}`` in an argument is a value
captured from an earlier step's output (``capture``: name → regex with one group, hex or — if the
pattern says ``\d`` — decimal), e.g. a lease id; it is passed on as hex, as etcdctl takes ids.
``scrub`` lists regex substitutions for output that legitimately differs run to run (durations,
remaining TTLs, db sizes). ``stream_lines`` marks a long-running command (watch, lock, elect): it is
read until it printed that many lines, then stopped.

Sections run in order on one server per run, so the pending-on-etcdpy sections come last and a section
that writes keys never follows one that etcdpy skips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ["simple", "json", "fields"]
ALL_FORMATS = ["simple", "json", "fields", "table"]


@dataclass
class Step:
    args: list[str]
    stdin: str = ""
    capture: dict[str, str] = field(default_factory=dict)
    scrub: list[tuple[str, str]] = field(default_factory=list)
    stream_lines: int | None = None
    # Member lists are ordered by member id, and a new member's id is random: compare them as sets.
    unordered: bool = False


@dataclass
class Section:
    name: str
    steps: list[Step]


def each(args: list[str], formats: list[str] = FORMATS, **kw: Any) -> list[Step]:
    return [Step([*args, "-w", fmt], **kw) for fmt in formats]


TXN_OK = 'value("k1") = "v1"\n\nput k2 v2\nget k1\ndel k9\n\nput k3 v3\n\n'
TXN_ALL_COMPARES = ('mod("k1") > "0"\nversion("k1") = "1"\ncreate("k1") < "1000"\nvalue("k1") != "zz"\n\n'
                    'put --prev-kv k1 "a b"\nget --prefix k\ndel --prefix k2\n\n\n')
TXN_FAIL = 'value("k1") = "nope"\n\n\nget k1\n\n'

KV = Section("kv", [
    Step(["put", "foo", "bar"]),
    Step(["put", "foo", "baz", "--prev-kv"]),
    *each(["get", "foo"], ALL_FORMATS),
    *each(["put", "foo", "qux", "--prev-kv"]),
    Step(["put", "a", "1"]), Step(["put", "a/b", "2"]), Step(["put", "a/c", "hello world"]),
    Step(["put", "uni", "héllo \"quoted\" <tag> & \t tab"]),
    *each(["get", "uni"]),
    *each(["get", "a", "--prefix"]),
    *each(["get", "a", "--prefix", "--limit=1"]),
    Step(["get", "a", "--prefix", "--keys-only"]),
    Step(["get", "a", "--prefix", "--print-value-only"]),
    Step(["get", "a", "--from-key", "--sort-by=MODIFY", "--order=DESCEND"]),
    Step(["get", "--prefix", "a", "--sort-by", "VERSION", "-w", "json"]),
    Step(["get", "a", "a/c"]),
    Step(["get", "a", "--prefix=true", "--consistency=s"]),
    Step(["get", "a", "--prefix=false"]),
    Step(["get", "a", "--hex"]),
    Step(["get", "foo", "--write-out=json"]),
    Step(["get", "foo", "--rev=2", "-w", "json"]),
    Step(["get", "foo", "--rev=100"]),
    Step(["get", ""]),
    Step(["get"]),
    Step(["get", "a", "--order=SIDEWAYS"]),
    Step(["get", "a", "--prefix", "--from-key"]),
    Step(["get", "a", "b", "--prefix"]),
    Step(["put"]),
    Step(["put", "k"]),
    Step(["put", "stdin-key"], stdin="from stdin\n"),
    Step(["get", "stdin-key", "-w", "json"]),
    Step(["put", "k", "v", "--lease=zz"]),
    Step(["put", "missing", "--ignore-value"]),
    Step(["put", "k1", "v1"]),
    Step(["txn"], stdin=TXN_OK),
    Step(["txn", "-w", "json"], stdin=TXN_OK),
    Step(["txn", "-w", "fields"], stdin=TXN_OK),
    Step(["txn"], stdin=TXN_ALL_COMPARES),
    Step(["txn", "-w", "json"], stdin=TXN_FAIL),
    Step(["txn"], stdin=TXN_FAIL),
    Step(["txn", "-i"], stdin='value("k1") = "a b"\n\nput k1 "x y"\n\nget k1\n\n'),
    Step(["txn"], stdin="\n\n\n"),
    Step(["txn", "-w", "json"], stdin="\n\n\n"),
    Step(["txn"], stdin='value("k1") = "v1"\n'),
    Step(["txn"], stdin="bad syntax\n"),
    Step(["txn"], stdin="\nput k1 1\nput k1 2\n\n\n"),
    Step(["txn", "-w", "table"], stdin="\n\n\n"),
    *each(["del", "a", "--prefix", "--prev-kv"]),
    Step(["put", "a/b", "2"]),
    *each(["del", "a/b"]),
    Step(["del", "a", "--from-key"]),
    Step(["del"]),
    Step(["get", "foo", "-w", "table"]),
    Step(["compaction", "3"]),
    Step(["compaction", "3", "-w", "json"]),
    Step(["compaction", "4", "--physical"]),
    Step(["get", "foo", "--rev=2"]),
    Step(["compaction"]),
])

WATCH = Section("watch", [
    Step(["watch", "--rev=5", "foo"], stream_lines=9),
    Step(["watch", "--prefix", "k", "--rev=20", "--prev-kv", "-w", "json"], stream_lines=1),
    Step(["watch", "k", "--prefix", "--rev=20", "-w", "fields"], stream_lines=11),
    Step(["watch", "-i"], stdin="watch --rev=5 foo\n", stream_lines=9),
    Step(["watch"]),
])

LEASE_ID = r"lease ([0-9a-f]{16}) granted"
REMAINING = [(r"remaining\(\d+s\)", "remaining(N)"), (r'"ttl":\d+', '"ttl":N'), (r'"TTL" : \d+', '"TTL" : N')]

LEASE = Section("lease", [
    Step(["lease", "grant", "1000"], capture={"lease": LEASE_ID}),
    *each(["lease", "list"]),
    Step(["put", "lk", "v", "--lease={lease}"]),
    Step(["put", "lk2", "v"]),  # one key only: etcd lists a lease's keys in map (random) order
    *each(["lease", "timetolive", "{lease}", "--keys"], scrub=REMAINING),
    *each(["lease", "timetolive", "{lease}"], scrub=REMAINING),
    *each(["lease", "keep-alive", "--once", "{lease}"]),
    Step(["get", "lk", "-w", "json"]),
    Step(["lease", "revoke", "{lease}"]),
    Step(["lease", "revoke", "{lease}"]),
    *each(["lease", "timetolive", "1234"]),
    Step(["lease", "keep-alive", "--once", "1234"]),
    Step(["lease", "grant", "x"]),
    Step(["lease", "grant"]),
    Step(["lease", "revoke", "xyz"]),
    Step(["lease", "grant", "500"], capture={"lease2": LEASE_ID}),
    Step(["lease", "revoke", "{lease2}", "-w", "json"]),
    Step(["lease", "grant", "500"], capture={"lease3": LEASE_ID}),
    Step(["lease", "revoke", "{lease3}", "-w", "fields"]),
    Step(["lease", "list", "-w", "json"]),
])

TOOK = [(r"took = [0-9.]+[µnm]?s", "took = T"), (r'"took":"[0-9.]+[µnm]?s"', '"took":"T"'),
        (r'"Took" : [0-9.]+[µnm]?s', '"Took" : T'), (r"\| +[0-9.]+[µnm]?s \|", "| T |")]
# db size and raft indexes are implementation details; the columns and their formatting are compared.
STATUS = [(r'"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":\d+', r'"\1":N'),
          (r'"(DBSize|RaftIndex|RaftAppliedIndex)" : \d+', r'"\1" : N'),
          (r"\d+(\.\d)? [kM]?B", "N kB"),
          (r"(true|false), (true|false), (\d+), \d+, \d+, ", r"\1, \2, \3, N, N, "),
          (r"\|( \d+ \|){3}( \|)", r"| N | N | N |\2")]
MEMBER_ID = r"Member +([0-9a-f]+) added"

CLUSTER = Section("cluster", [
    *each(["member", "list"], ALL_FORMATS),
    *each(["endpoint", "status"], ALL_FORMATS, scrub=STATUS),
    Step(["endpoint", "status", "--cluster"], scrub=STATUS),
    *each(["endpoint", "health"], ALL_FORMATS, scrub=TOOK),
    Step(["endpoint", "health", "--cluster"], scrub=TOOK),
    # A down endpoint (nothing listens on port 1): reported after the deadline, the live one first.
    *each(["--endpoints=127.0.0.1:1,{endpoint}", "--command-timeout=1s", "endpoint", "health"], scrub=TOOK),
    Step(["--endpoints=127.0.0.1:1,{endpoint}", "--command-timeout=1s", "get", "foo"]),
    Step(["--endpoints=127.0.0.1:1,{endpoint}", "--command-timeout=1s", "endpoint", "status"], scrub=STATUS),
    Step(["move-leader", "{member}"]),
    Step(["move-leader", "1234"]),
    Step(["move-leader", "zz"]),
    Step(["member", "add", "learner1", "--peer-urls=http://127.0.0.1:1", "--learner"],
         capture={"learner": MEMBER_ID}, unordered=True),
    *each(["member", "list"], ALL_FORMATS, unordered=True),
    # Not -w json: etcd drops isLearner from the member update answer, etcdpy keeps it (server-side).
    Step(["member", "update", "{learner}", "--peer-urls=http://127.0.0.1:2"]),
    Step(["member", "promote", "{learner}"]),
    Step(["member", "remove", "{learner}", "-w", "table"]),
    Step(["member", "add", "learner2", "--peer-urls=http://127.0.0.1:3", "--learner", "-w", "json"],
         capture={"learner2": r'"member":\{"ID":(\d+)'}, unordered=True),
    Step(["member", "remove", "{learner2}"]),
    Step(["member", "add"]),
    Step(["member", "add", "x", "http://127.0.0.1:9"]),
    Step(["member", "add", "x"]),
    Step(["member", "remove", "1234"]),
    Step(["member", "remove"]),
    Step(["member", "remove", "zz"]),
    Step(["member", "update", "1234", "--peer-urls=http://127.0.0.1:4"]),
])

MAINTENANCE = Section("maintenance", [
    Step(["alarm", "list"]),
    Step(["alarm", "list", "-w", "json"]),
    Step(["alarm", "disarm"]),
    Step(["alarm", "disarm", "-w", "json"]),
    Step(["defrag"]),
    Step(["defrag", "--cluster"]),
    Step(["snapshot", "save", "snap.db"]),
    Step(["snapshot", "save"]),
    Step(["snapshot", "status", "missing.db"]),
])

# `snapshot status` reads the file a server saved: etcd's is a bolt database, etcdpy's its own format
# (docs/snapshot-format.md), so sizes and key counts differ by design. etcdctl and etcdpyctl are
# compared on etcd's file; tests/ctl/test_extensions.py checks etcdpyctl on etcdpy's.
SNAPSHOT_FILE = Section("snapshot-file", [  # changes no revision: the later sections line up
    Step(["snapshot", "save", "snap.db"]),
    # The hash covers the members and lease buckets, whose ids differ between two servers.
    *each(["snapshot", "status", "snap.db"], ALL_FORMATS,
          scrub=[(r"^[0-9a-f]{1,8},", "HASH,"), (r'"[Hh]ash"( : |:)\d+', r'"hash"\1N'),
                 (r"\| [0-9a-f]{1,8} \|", "| HASH |")]),
])

AUTH = Section("auth", [
    Step(["user", "add", "root:rootpw"]),
    Step(["user", "add", "alice:pw", "-w", "json"]),
    Step(["user", "add", "bob", "--interactive=false"], stdin="bobpw\n"),
    Step(["user", "add", "root:x"]),
    Step(["user", "add"]),
    Step(["role", "add", "root"]),
    Step(["role", "add", "reader", "-w", "json"]),
    Step(["role", "add", "writer", "-w", "fields"]),
    Step(["user", "grant-role", "root", "root"]),
    Step(["user", "grant-role", "alice", "reader", "-w", "json"]),
    *each(["user", "list"]),
    *each(["role", "list"]),
    Step(["role", "grant-permission", "reader", "read", "foo"]),
    Step(["role", "grant-permission", "reader", "--prefix=true", "readwrite", "pfx/"]),
    Step(["role", "grant-permission", "reader", "write", "a", "z"]),
    Step(["role", "grant-permission", "reader", "read", "--from-key", "b"]),
    Step(["role", "grant-permission", "reader", "bogus", "b"]),
    *each(["role", "get", "reader"]),
    *each(["user", "get", "alice"]),
    Step(["user", "get", "alice", "--detail"]),
    Step(["user", "get", "nobody"]),
    Step(["role", "revoke-permission", "reader", "foo"]),
    Step(["role", "revoke-permission", "reader", "a", "z"]),
    Step(["role", "revoke-permission", "reader", "b", "--from-key"]),
    Step(["role", "revoke-permission", "reader", "nope"]),
    Step(["user", "revoke-role", "root", "reader"]),
    Step(["user", "revoke-role", "alice", "reader"]),
    Step(["user", "passwd", "bob", "--interactive=false"], stdin="newpw\n"),
    Step(["auth", "enable"]),
    Step(["get", "foo"]),
    Step(["--user=root:rootpw", "get", "foo", "-w", "json"]),
    Step(["--user", "root:bad", "get", "foo"]),
    Step(["--user=bob", "--password=newpw", "get", "foo"]),
    Step(["--user=root", "--password=rootpw", "auth", "disable"]),
    Step(["user", "delete", "bob"]),
    Step(["role", "delete", "writer"]),
    Step(["user", "delete", "bob"]),
])

LOCK_KEY = [(r"/[0-9a-f]{1,16}\n", "/<LEASE>\n")]

CONCURRENCY = Section("concurrency", [
    Step(["lock", "mylock"], stream_lines=2, scrub=LOCK_KEY),
    Step(["elect", "myelection", "proposal-1"], stream_lines=2, scrub=LOCK_KEY),
    Step(["lock"]),
    Step(["elect", "only-name"]),
])

SECTIONS = [KV, WATCH, LEASE, CLUSTER, MAINTENANCE, SNAPSHOT_FILE, AUTH, CONCURRENCY]
