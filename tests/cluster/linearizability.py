"""A Porcupine-style linearizability checker for per-key registers with compare-and-set.

A history is a list of `Op`: each has the real time it was invoked (`call`) and the time its answer
arrived (`ret`); an operation whose outcome is unknown (a client timeout, a lost connection, a
server-side timeout) has ``ret = inf`` and ``out = None``: it may take effect at any moment after its
call, or never. Operations that certainly failed (nothing was proposed) are left out by the recorder,
and so are failed reads.

The model is a register per key whose value is a string or absent (None):

- ``put(v)`` sets it;
- ``get() -> v`` observes it;
- ``cas(expected, new) -> (succeeded, seen)`` sets it to ``new`` if it equals ``expected`` (never when
  the key is absent, as etcd's value comparison on a missing key is false); a failed
  cas reports the value it saw (``seen``, from the txn's failure branch), which must be the value then;
- an unknown put/cas is applied deterministically where it is placed (an unknown cas succeeds iff the
  register holds ``expected``); "it never happened" is covered by placing it after everything else.

Keys are independent (P-compositionality), so each key is checked alone. The search is Wing & Gong's,
with Lowe's memoisation of (set of linearized operations, register value) as in Porcupine: walk the
history in time order; at a call, try to linearize that operation now (if the model allows it and the
resulting configuration is new), lifting it out of the list; at a return of an operation not yet
linearized, backtrack.

Before searching, unknown writes whose value nobody ever observed are dropped: writes carry unique
values, so such a write can always be placed at the end, where it changes nothing. This keeps the search
small even when faults leave many writes unknown.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["put", "get", "cas"]
Value = str | None


@dataclass(frozen=True)
class Op:
    id: int
    client: int
    key: str
    kind: Kind
    arg: Any  # put: value; cas: (expected, new); get: None
    call: float
    ret: float = math.inf  # inf: outcome unknown
    out: Any = None  # get: value or None; cas: (succeeded, seen); put: None

    @property
    def unknown(self) -> bool:
        return self.ret == math.inf

    def describe(self, base: float = 0.0) -> str:
        if self.kind == "put":
            what = f"put({self.arg!r})"
        elif self.kind == "cas":
            what = f"cas({self.arg[0]!r} -> {self.arg[1]!r})"
        else:
            what = "get()"
        result = "?" if self.unknown else (repr(self.out) if self.kind != "put" else "ok")
        end = "inf" if self.unknown else f"{self.ret - base:.4f}"
        return f"#{self.id} client {self.client} [{self.call - base:.4f}, {end}] {what} -> {result}"


def step(state: Value, op: Op) -> tuple[bool, Value]:
    """The register model: whether ``op`` may take effect in ``state``, and the state after it."""
    if op.kind == "put":
        return True, op.arg
    if op.kind == "get":
        return op.out == state, state
    expected, new = op.arg
    matches = state is not None and state == expected  # etcd: a value compare on a missing key fails
    if op.unknown:
        return True, (new if matches else state)
    succeeded, seen = op.out
    if succeeded:
        return matches, new
    return not matches and seen == state, state


@dataclass
class KeyResult:
    key: str
    ok: bool | None  # None: the search ran out of time
    ops: int
    explored: int
    detail: str = ""


@dataclass
class Result:
    ok: bool | None
    keys: list[KeyResult] = field(default_factory=list)

    def report(self) -> str:
        lines = []
        for kr in self.keys:
            verdicts = {True: "linearizable", False: "NOT linearizable", None: "undecided (time budget)"}
            verdict = verdicts[kr.ok]
            lines.append(f"key {kr.key!r}: {kr.ops} ops, {kr.explored} configurations explored: {verdict}")
            if kr.detail:
                lines.append(kr.detail)
        return "\n".join(lines)


def _observed(ops: list[Op]) -> set[Value]:
    seen: set[Value] = set()
    for op in ops:
        if op.unknown:
            continue
        if op.kind == "get":
            seen.add(op.out)
        elif op.kind == "cas":
            succeeded, value = op.out
            seen.add(op.arg[0] if succeeded else value)
    return seen


def prune(ops: list[Op]) -> list[Op]:
    """Drop unknown writes whose (unique) value was never observed: placing them last is always valid.

    A kept unknown cas needs the register to hold its expected value, so that value counts as observed
    too: iterate to a fixed point.
    """
    seen = _observed(ops)
    unknown_cas = [op for op in ops if op.unknown and op.kind == "cas"]
    while True:
        more = {op.arg[0] for op in unknown_cas if op.arg[1] in seen} - seen
        if not more:
            break
        seen |= more
    kept = []
    for op in ops:
        if op.unknown and op.kind == "put" and op.arg not in seen:
            continue
        if op.unknown and op.kind == "cas" and op.arg[1] not in seen:
            continue
        kept.append(op)
    return kept


class _Entry:
    __slots__ = ("op", "is_call", "time", "match", "prev", "next")

    def __init__(self, op: Op | None, is_call: bool, t: float) -> None:
        self.op = op
        self.is_call = is_call
        self.time = t
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _build(ops: list[Op]) -> _Entry:
    events: list[tuple[float, int, _Entry]] = []
    for op in ops:
        call = _Entry(op, True, op.call)
        ret = _Entry(op, False, op.ret)
        call.match = ret
        # At equal times a call sorts before a return: the two operations count as concurrent.
        events.append((op.call, 0, call))
        events.append((op.ret, 1, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(None, False, -math.inf)
    prev = head
    for _, _, entry in events:
        prev.next = entry
        entry.prev = prev
        prev = entry
    return head


def _lift(entry: _Entry) -> None:
    assert entry.prev is not None and entry.match is not None
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    assert match.prev is not None
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    match = entry.match
    assert match is not None and match.prev is not None
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    assert entry.prev is not None
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def check_key(key: str, ops: list[Op], init: Value = None, budget_s: float = 60.0) -> KeyResult:
    ops = sorted(prune(ops), key=lambda o: o.call)
    index = {op.id: i for i, op in enumerate(ops)}
    head = _build(ops)
    state: Value = init
    linearized = 0
    cache: set[tuple[int, Value]] = set()
    calls: list[tuple[_Entry, Value]] = []
    entry = head.next
    explored = steps = 0
    best_depth, best_stuck = -1, None
    deadline = time.monotonic() + budget_s
    while head.next is not None:
        assert entry is not None
        steps += 1
        if steps & 0xFFFF == 0 and time.monotonic() > deadline:
            return KeyResult(key, None, len(ops), explored, "")
        if entry.is_call:
            op = entry.op
            assert op is not None
            ok, new_state = step(state, op)
            if ok:
                bit = 1 << index[op.id]
                config = (linearized | bit, new_state)
                if config not in cache:
                    cache.add(config)
                    explored += 1
                    calls.append((entry, state))
                    state = new_state
                    linearized |= bit
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The operation returning here was not linearized before its answer: backtrack.
            if len(calls) > best_depth:
                best_depth, best_stuck = len(calls), entry.op
            if not calls:
                return KeyResult(key, False, len(ops), explored, _explain(ops, best_stuck, best_depth))
            top, state = calls.pop()
            assert top.op is not None
            linearized &= ~(1 << index[top.op.id])
            _unlift(top)
            entry = top.next
    return KeyResult(key, True, len(ops), explored)


def _explain(ops: list[Op], stuck: Op | None, depth: int) -> str:
    if stuck is None:
        return ""
    base = min(op.call for op in ops)
    near = [op for op in ops if op.call <= stuck.ret and op.ret >= stuck.call - 1.0]
    lines = [f"  deepest search linearized {depth} ops; could not linearize before it returned:",
             f"    {stuck.describe(base)}",
             "  operations overlapping it or just before (times from the first call):"]
    lines += [f"    {op.describe(base)}" for op in near[-40:]]
    return "\n".join(lines)


def check(ops: Iterable[Op], budget_s: float = 120.0) -> Result:
    """Check a whole history, key by key."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    results = []
    deadline = time.monotonic() + budget_s
    for key in sorted(by_key):
        remaining = max(1.0, deadline - time.monotonic())
        results.append(check_key(key, by_key[key], budget_s=remaining))
    verdicts = [r.ok for r in results]
    ok: bool | None = False if False in verdicts else (None if None in verdicts else True)
    return Result(ok, results)


class History:
    """A thread-safe recorder: `invoke` before sending, then `ok`, `fail` or `unknown` with the answer.

    Times are `time.monotonic()`; values written should be unique per history (the checker relies on it
    to drop unobserved unknown writes). Failed operations and reads whose outcome is unknown are not kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, tuple[int, str, Kind, Any, float]] = {}
        self.ops: list[Op] = []
        self.counts: dict[str, int] = defaultdict(int)

    def invoke(self, client: int, key: str, kind: Kind, arg: Any = None) -> int:
        with self._lock:
            op_id = next(self._ids)
            self._pending[op_id] = (client, key, kind, arg, time.monotonic())
            return op_id

    def ok(self, op_id: int, out: Any = None) -> None:
        now = time.monotonic()
        with self._lock:
            client, key, kind, arg, call = self._pending.pop(op_id)
            self.ops.append(Op(op_id, client, key, kind, arg, call, now, out))
            self.counts[f"{kind} ok"] += 1

    def fail(self, op_id: int) -> None:
        with self._lock:
            _, _, kind, _, _ = self._pending.pop(op_id)
            self.counts[f"{kind} failed"] += 1

    def unknown(self, op_id: int) -> None:
        with self._lock:
            client, key, kind, arg, call = self._pending.pop(op_id)
            self.counts[f"{kind} unknown"] += 1
            if kind != "get":
                self.ops.append(Op(op_id, client, key, kind, arg, call))

    def finish(self) -> list[Op]:
        """Everything still pending counts as unknown; returns the history."""
        with self._lock:
            pending = list(self._pending)
        for op_id in pending:
            self.unknown(op_id)
        return list(self.ops)
