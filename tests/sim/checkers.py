"""What the whole-server simulation checks, from the recorded history and what the members applied.

The members' applied revisions give the truth: etcd's revisions order every write, so the state at any
revision is recomputed from the events of revisions up to it. On that truth:

- **agreement**: every member that applied revision R applied the same events; revisions have no gaps;
  each put's version, create and mod revisions follow from the state before it (well-formed history);
- **no phantom writes**: every value in the history was written by a client op invoked before it applied;
- **acknowledged writes**: an acknowledged put, delete, txn or lease revoke is at its revision exactly as
  answered (prev_kv, deleted count, the txn branch taken and its range answers, from the state at R-1);
- **linearizability**: acknowledged writes have distinct revisions; every linearizable read returns
  exactly the state at its header revision; and revisions respect real time (an op that completed before
  another was invoked has a smaller revision, or not larger for a read), which with the above makes the
  revision order a linearization of the whole history (multi-key txns included); writes with an unknown
  outcome that did take effect (found by their unique value) are held to the same order;
- **watches**: every stream delivers exactly the events of its range from its start revision, once and
  in order (a prefix of them if it ended early; all of them if open to the end);
- **leases**: no lease is revoked by expiry before its TTL ran out since its grant or its last
  acknowledged keepalive (less one election timeout: a deposed leader may still answer a keepalive);
  every lease is gone once no one kept it alive; no key is left attached to a lease that is gone;
- **convergence**: at the end every live member holds the same keys as the truth, the same MVCC hash at
  each revision both still hold, the same leases and the same membership.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from etcdpy.storage.kv_types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EventType,
    KeyValue,
    PutRequest,
    RangeRequest,
)
from tests.sim.cluster import Trace
from tests.sim.workload import History, Op, WatchRecord

PUT, DELETE = int(EventType.PUT), int(EventType.DELETE)
EvT = tuple[int, KeyValue]


@dataclass
class MemberFinal:
    name: str
    revision: int
    compact_revision: int
    kvs: list[KeyValue]
    hashes: dict[int, str]  # revision -> hash of the keyspace at it
    leases: list[int]
    members: list[int]


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    return key >= start and (end == b"\0" or key < end)


def kv_hash(kvs: Iterable[KeyValue]) -> str:
    h = hashlib.sha256()
    for kv in kvs:
        h.update(repr(tuple(kv)).encode())
    return h.hexdigest()[:16]


def _fmt(evs: list[EvT]) -> str:
    return ", ".join(f"{'PUT' if t == PUT else 'DEL'} {kv.key!r}={kv.value!r}@{kv.mod_revision}"
                     for t, kv in evs)


class Truth:
    def __init__(self, trace: Trace, problems: list[str]) -> None:
        self.revs: dict[int, list[EvT]] = {}
        self.first_applied: dict[int, float] = {}
        for rev in sorted(trace.applied):
            records = trace.applied[rev]
            name0, evs0, _ = records[0]
            norm0 = [(int(e.type), e.kv) for e in evs0]
            for name, evs, _ in records[1:]:
                norm = [(int(e.type), e.kv) for e in evs]
                if norm != norm0:
                    problems.append(f"members disagree on revision {rev}: {name0} applied [{_fmt(norm0)}], "
                                    f"{name} applied [{_fmt(norm)}]")
                    break
            self.revs[rev] = norm0
            self.first_applied[rev] = min(t for _, _, t in records)
        self.last = max(self.revs, default=1)
        missing = [r for r in range(2, self.last + 1) if r not in self.revs]
        if missing:
            problems.append(f"no member applied revisions {missing[:10]} (of {len(missing)})")
        self.hist: dict[bytes, list[tuple[int, KeyValue | None]]] = {}
        self.revs_of: dict[bytes, list[int]] = {}
        for rev in sorted(self.revs):
            for typ, kv in self.revs[rev]:
                prev = self.get(kv.key, rev - 1)
                if typ == PUT:
                    want = (prev.create_revision if prev else rev, rev, (prev.version + 1) if prev else 1)
                    if (kv.create_revision, kv.mod_revision, kv.version) != want:
                        problems.append(f"revision {rev}: put {kv!r} after {prev!r} is not well-formed")
                elif prev is None:
                    problems.append(f"revision {rev}: delete of {kv.key!r}, which did not exist")
                self.hist.setdefault(kv.key, []).append((rev, kv if typ == PUT else None))
                self.revs_of.setdefault(kv.key, []).append(rev)
        self.keys = sorted(self.hist)

    def get(self, key: bytes, rev: int) -> KeyValue | None:
        revs = self.revs_of.get(key)
        if not revs:
            return None
        i = bisect.bisect_right(revs, rev)
        return self.hist[key][i - 1][1] if i else None

    def range(self, key: bytes, end: bytes, rev: int) -> list[KeyValue]:
        out = []
        for k in self.keys:
            if in_range(k, key, end):
                kv = self.get(k, rev)
                if kv is not None:
                    out.append(kv)
        return out


def _compare(cmp: Compare, kv: KeyValue | None) -> bool:
    if kv is None:
        if cmp.target == CompareTarget.VALUE:
            return False
        kv = KeyValue(b"", 0, 0, 0, b"", 0)
    left: Any = {CompareTarget.VERSION: kv.version, CompareTarget.MOD: kv.mod_revision,
                 CompareTarget.VALUE: kv.value}[cmp.target]
    right: Any = cmp.operand
    if cmp.result == CompareResult.EQUAL:
        return bool(left == right)
    if cmp.result == CompareResult.GREATER:
        return bool(left > right)
    return bool(left < right)


class Checker:
    def __init__(self, history: History, trace: Trace, finals: list[MemberFinal], election_s: float) -> None:
        self.history = history
        self.trace = trace
        self.finals = finals
        self.election_s = election_s
        self.problems: list[str] = list(trace.problems)
        self.truth = Truth(trace, self.problems)

    def fail(self, op: Op | None, text: str) -> None:
        where = (f"op #{op.seq} {op.kind} on {op.member} [{op.invoke:.3f}..{op.complete:.3f}] {op.req!r}: "
                 if op else "")
        self.problems.append(where + text)

    def run(self) -> list[str]:
        order = self.check_ops()
        self.check_real_time(order)
        self.check_watches()
        self.check_leases()
        self.check_convergence()
        return self.problems

    # ------------------------------------------------------------------ ops against the truth

    def _expected_put(self, req: PutRequest, rev: int) -> tuple[KeyValue | None, KeyValue]:
        prev = self.truth.get(req.key, rev - 1)
        kv = KeyValue(req.key, prev.create_revision if prev else rev, rev, prev.version + 1 if prev else 1,
                      req.value, req.lease)
        return prev, kv

    def check_ops(self) -> list[tuple[float, float, int, bool, Op]]:
        """Check each op's answer; returns (invoke, complete, revision, is_write, op) for the real-time
        order check."""
        truth = self.truth
        order: list[tuple[float, float, int, bool, Op]] = []
        write_revs: dict[int, Op] = {}
        by_value: dict[bytes, int] = {}
        for rev, evs in truth.revs.items():
            for typ, kv in evs:
                if typ == PUT:
                    by_value[kv.value] = rev
        ops = self.history.ops
        for value, rev in by_value.items():
            seq = int(value[1:])
            op = ops[seq] if seq < len(ops) else None
            if op is None or op.kind not in ("put", "txn"):
                self.fail(None, f"revision {rev} holds value {value!r} that no client wrote")
            elif op.invoke > truth.first_applied[rev]:
                self.fail(op, f"applied at revision {rev} before it was invoked")
            elif op.status != "ok":
                order.append((op.invoke, math.inf, rev, True, op))
        for op in ops:
            if op.status != "ok":
                continue
            res = op.result
            if op.kind == "put":
                rev = res.revision
                prev, kv = self._expected_put(op.req, rev)
                if (PUT, kv) not in truth.revs.get(rev, []):
                    self.fail(op, f"acknowledged at revision {rev} but revision {rev} is "
                              f"[{_fmt(truth.revs.get(rev, []))}] (lost or misapplied; expected {kv!r})")
                if op.req.prev_kv and res.prev_kv != prev:
                    self.fail(op, f"prev_kv {res.prev_kv!r}, but before revision {rev} it was {prev!r}")
                self._unique(write_revs, rev, op)
                order.append((op.invoke, op.complete, rev, True, op))
            elif op.kind == "delete":
                rev = res.revision
                req: DeleteRangeRequest = op.req
                if res.deleted:
                    before = truth.range(req.key, req.range_end, rev - 1)
                    got = sorted((t, kv.key) for t, kv in truth.revs.get(rev, []))
                    if got != [(DELETE, kv.key) for kv in before] or res.deleted != len(before):
                        self.fail(op, f"deleted {res.deleted} at revision {rev}, but the keys were "
                                  f"{[kv.key for kv in before]} and revision {rev} is "
                                  f"[{_fmt(truth.revs.get(rev, []))}]")
                    if req.prev_kv and list(res.prev_kvs) != before:
                        self.fail(op, f"prev_kvs {res.prev_kvs!r}, expected {before!r}")
                    self._unique(write_revs, rev, op)
                    order.append((op.invoke, op.complete, rev, True, op))
                else:
                    if truth.range(req.key, req.range_end, rev):
                        self.fail(op, f"deleted nothing at revision {rev}, where keys existed")
                    order.append((op.invoke, op.complete, rev, False, op))
            elif op.kind == "txn":
                self._check_txn(op, write_revs, order)
            elif op.kind in ("range", "srange"):
                rev = res.revision
                want = truth.range(op.req.key, op.req.range_end, rev)
                if list(res.kvs) != want or res.count != len(want):
                    self.fail(op, f"read at revision {rev} returned {[tuple(kv) for kv in res.kvs]}, "
                              f"but the state there is {[tuple(kv) for kv in want]}")
                if op.kind == "range":
                    order.append((op.invoke, op.complete, rev, False, op))
            elif op.kind == "revoke":
                rev = int(res["header"]["revision"])
                # The revoke either made revision R (deleting the keys attached just before) or deleted
                # nothing and was applied at R; either way no key is attached at R, and R is ordered as
                # a read (a later write must come after it, an earlier one not after it).
                if any(kv.lease == op.req["ID"] for kv in truth.range(b"", b"\0", rev)):
                    self.fail(op, f"lease revoked at revision {rev} but keys stay attached there")
                order.append((op.invoke, op.complete, rev, False, op))
        return order

    def _check_txn(self, op: Op, write_revs: dict[int, Op],
                   order: list[tuple[float, float, int, bool, Op]]) -> None:
        truth, res = self.truth, op.result
        rev = res.revision
        before = rev - 1
        (cmp,) = op.req.compare
        succeeded = _compare(cmp, truth.get(cmp.key, before))
        if res.succeeded != succeeded:
            self.fail(op, f"took the {'success' if res.succeeded else 'failure'} branch, but the compare "
                      f"on {truth.get(cmp.key, before)!r} before revision {rev} says otherwise")
            return
        branch = op.req.success if succeeded else op.req.failure
        expected: list[EvT] = []
        for sub, answer in zip(branch, res.responses, strict=True):
            if isinstance(sub, PutRequest):
                expected.append((PUT, self._expected_put(sub, rev)[1]))
            elif isinstance(sub, DeleteRangeRequest):
                gone = truth.get(sub.key, before)
                if gone is not None:
                    expected.append((DELETE, gone))
                if answer.deleted != (1 if gone is not None else 0):
                    self.fail(op, f"txn delete of {sub.key!r} answered {answer.deleted}")
            elif isinstance(sub, RangeRequest):
                want = truth.range(sub.key, sub.range_end, before)
                if list(answer.kvs) != want:
                    self.fail(op, f"txn range of {sub.key!r} returned {answer.kvs!r}, state before "
                              f"revision {rev} is {want!r}")
        got = sorted((t, kv.key, kv.value if t == PUT else b"", kv.version if t == PUT else 0,
                      kv.create_revision if t == PUT else 0) for t, kv in truth.revs.get(rev, []))
        want_evs = sorted((t, kv.key, kv.value if t == PUT else b"", kv.version if t == PUT else 0,
                           kv.create_revision if t == PUT else 0) for t, kv in expected)
        if got != want_evs:
            self.fail(op, f"acknowledged at revision {rev}, which is [{_fmt(truth.revs.get(rev, []))}], "
                      f"expected [{_fmt(expected)}]")
        self._unique(write_revs, rev, op)
        order.append((op.invoke, op.complete, rev, True, op))

    def _unique(self, write_revs: dict[int, Op], rev: int, op: Op) -> None:
        other = write_revs.setdefault(rev, op)
        if other is not op:
            self.fail(op, f"acknowledged at revision {rev}, as was op #{other.seq}")

    def check_real_time(self, order: list[tuple[float, float, int, bool, Op]]) -> None:
        """Sweep by invocation time, keeping the largest revision of the ops completed before it."""
        completions = sorted(((c, rev, op) for _, c, rev, _, op in order if c != math.inf),
                             key=lambda t: (t[0], t[2].seq))
        i, best, best_op = 0, 0, None
        for invoke, _, rev, is_write, op in sorted(order, key=lambda t: (t[0], t[4].seq)):
            while i < len(completions) and completions[i][0] < invoke:
                if completions[i][1] > best:
                    best, best_op = completions[i][1], completions[i][2]
                i += 1
            if rev < best or (is_write and rev == best):
                assert best_op is not None
                self.fail(op, f"has revision {rev}, but op #{best_op.seq} ({best_op.kind}, revision {best}) "
                          f"completed at {best_op.complete:.3f}, before it was invoked: not linearizable")

    # ------------------------------------------------------------------ watches

    def check_watches(self) -> None:
        truth = self.truth
        live = {f.name for f in self.finals}
        # etcd 3.4 drops a tombstone at exactly the compaction revision from history (keyIndex.keep), so a
        # watcher starting there, which reads it from history, cannot see that delete; etcdpy does the same.
        compacted = {op.req.revision for op in self.history.ops if op.kind == "compact"}
        for n, rec in enumerate(self.history.watches):
            full = [(rev, t, kv) for rev in sorted(truth.revs) if rev >= rec.start
                    for t, kv in truth.revs[rev] if in_range(kv.key, rec.key, rec.end)]
            variants = [full]
            if rec.start in compacted:
                variants.append([e for e in full if not (e[1] == DELETE and e[0] == rec.start)])
            where = (f"watch #{n} on {rec.member} of {rec.key!r}..{rec.end!r} from revision {rec.start} "
                     f"(opened {rec.opened:.3f}, {rec.ended or 'open to the end'})")
            errors = [self._watch_error(rec, expected, live) for expected in variants]
            if all(errors):
                self.problems.append(f"{where}: {errors[-1]}")
            if rec.compacted and rec.compacted <= rec.start:
                self.problems.append(f"{where}: ended compacted at {rec.compacted}, not past its start")

    @staticmethod
    def _watch_error(rec: WatchRecord, expected: list[tuple[int, int, KeyValue]], live: set[str]) -> str:
        """What is wrong with the stream's events if `expected` is what it owed ("" if nothing)."""
        got = [(rev, int(ev.type), ev.kv) for rev, ev in rec.events]
        for i, ev in enumerate(got):
            want = expected[i] if i < len(expected) else None
            if want is None or ev[:2] != want[:2] or ev[2].key != want[2].key or \
                    (ev[1] == PUT and ev[2] != want[2]):
                return (f"event {i} is {ev[0]}/{ev[2]!r}, expected {want[0] if want else None}/"
                        f"{want[2] if want else None!r} (skipped, repeated or out of order)")
        if not rec.ended and rec.member in live and len(got) != len(expected):
            missing = expected[len(got)][0] if len(got) < len(expected) else "-"
            return f"delivered {len(got)} events of {len(expected)} by the end; first missing {missing}"
        return ""

    # ------------------------------------------------------------------ leases

    def check_leases(self) -> None:
        ops = self.history.ops
        grants = {int(op.result["ID"]): op for op in ops if op.kind == "grant" and op.status == "ok"}
        for lease_id, grant in grants.items():
            ttl = grant.req["TTL"]
            revoked_at = self.trace.revokes.get(lease_id)
            if revoked_at is None:
                continue
            if any(op.kind == "revoke" and op.req["ID"] == lease_id and op.invoke <= revoked_at
                   for op in ops):
                continue
            renewed = max([grant.invoke] + [op.invoke for op in ops if op.kind == "keepalive"
                                            and op.status == "ok" and op.req["ID"] == lease_id
                                            and op.complete <= revoked_at])
            if revoked_at < renewed + ttl - self.election_s:
                self.problems.append(f"lease {lease_id:x} (TTL {ttl}s) expired at {revoked_at:.3f}, but it "
                                     f"was granted or kept alive at {renewed:.3f}: expired early")
        for f in self.finals:
            left = [lid for lid in f.leases if lid in grants]
            if left:
                self.problems.append(f"{f.name}: leases {[hex(x) for x in left]} never expired")
            orphans = [kv.key for kv in f.kvs if kv.lease and kv.lease not in f.leases]
            if orphans:
                self.problems.append(f"{f.name}: keys {orphans} stay attached to leases that are gone")

    # ------------------------------------------------------------------ the end state

    def check_convergence(self) -> None:
        truth = self.truth
        want = truth.range(b"", b"\0", truth.last)
        for f in self.finals:
            if f.revision != truth.last:
                self.problems.append(f"{f.name} ends at revision {f.revision}, the cluster at {truth.last}")
            if f.kvs != want:
                self.problems.append(f"{f.name} holds {[tuple(kv) for kv in f.kvs]}, the history says "
                                     f"{[tuple(kv) for kv in want]}")
        if self.finals:
            first = self.finals[0]
            for f in self.finals[1:]:
                for rev, h in f.hashes.items():
                    if first.hashes.get(rev, h) != h:
                        self.problems.append(f"MVCC hash at revision {rev}: {first.name} "
                                             f"{first.hashes[rev]}, {f.name} {h}")
                if f.members != first.members:
                    self.problems.append(f"membership: {first.name} {first.members}, {f.name} {f.members}")
                if sorted(f.leases) != sorted(first.leases):
                    self.problems.append(f"leases: {first.name} {first.leases}, {f.name} {f.leases}")
