"""The linearizability checker itself: small histories with a known verdict, and properties.

Generated histories come from a real register: each operation takes effect at one instant inside its
[call, return] interval, so the history is linearizable by construction; changing one observation to a
value that was never written makes it not linearizable.
"""

from __future__ import annotations

import math
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cluster.linearizability import History, Op, check, check_key, prune

INF = math.inf


def op(i: int, kind: str, arg: object, call: float, ret: float, out: object = None, client: int = 0,
       key: str = "k") -> Op:
    return Op(i, client, key, kind, arg, call, ret, out)  # type: ignore[arg-type]


def verdict(*ops: Op) -> bool | None:
    return check(list(ops)).ok


def test_empty_and_sequential() -> None:
    assert verdict() is True
    assert verdict(
        op(0, "get", None, 0, 1, None),
        op(1, "put", "a", 2, 3),
        op(2, "get", None, 4, 5, "a"),
        op(3, "cas", ("a", "b"), 6, 7, (True, None)),
        op(4, "cas", ("a", "c"), 8, 9, (False, "b")),
        op(5, "get", None, 10, 11, "b"),
    ) is True


def test_stale_read_after_acknowledged_write() -> None:
    assert verdict(op(0, "put", "a", 0, 1), op(1, "get", None, 2, 3, None)) is False


def test_read_of_the_future() -> None:
    # The read returned before the write was even invoked.
    assert verdict(op(0, "get", None, 0, 1, "a"), op(1, "put", "a", 2, 3)) is False


def test_concurrent_read_may_see_either() -> None:
    for seen in (None, "a"):
        assert verdict(op(0, "put", "a", 0, 10), op(1, "get", None, 1, 2, seen)) is True


def test_reads_must_not_go_back_in_time() -> None:
    # Both reads overlap the write, but once one read saw "a", a later read cannot see the old value.
    assert verdict(
        op(0, "put", "a", 0, 10),
        op(1, "get", None, 1, 2, "a"),
        op(2, "get", None, 3, 4, None),
    ) is False


def test_two_successful_cas_from_the_same_value() -> None:
    base = [op(0, "put", "x", 0, 1)]
    assert verdict(*base, op(1, "cas", ("x", "a"), 2, 5, (True, None)),
                   op(2, "cas", ("x", "b"), 2, 5, (True, None), client=1)) is False
    # One succeeds, the other fails seeing the first one's value: fine.
    assert verdict(*base, op(1, "cas", ("x", "a"), 2, 5, (True, None)),
                   op(2, "cas", ("x", "b"), 2, 5, (False, "a"), client=1)) is True


def test_failed_cas_reports_the_value_it_saw() -> None:
    assert verdict(op(0, "put", "a", 0, 1), op(1, "cas", ("b", "c"), 2, 3, (False, "zzz"))) is False
    assert verdict(op(0, "put", "a", 0, 1), op(1, "cas", ("a", "c"), 2, 3, (False, "a"))) is False
    assert verdict(op(1, "cas", ("a", "c"), 2, 3, (False, None))) is True


def test_unknown_write_may_take_effect_late_or_never() -> None:
    # An unknown put, observed long after its caller gave up: it took effect late.
    assert verdict(op(0, "put", "a", 0, INF), op(1, "get", None, 5, 6, None),
                   op(2, "get", None, 7, 8, "a")) is True
    # ... but once observed, it cannot be un-done.
    assert verdict(op(0, "put", "a", 0, INF), op(1, "get", None, 5, 6, "a"),
                   op(2, "get", None, 7, 8, None)) is False
    # Never observed: dropped before the search.
    ops = [op(0, "put", "a", 0, INF), op(1, "get", None, 5, 6, None)]
    assert [o.id for o in prune(ops)] == [1]
    assert verdict(*ops) is True
    # It cannot take effect before it was invoked.
    assert verdict(op(1, "get", None, 0, 1, "a"), op(0, "put", "a", 2, INF)) is False


def test_unknown_cas() -> None:
    base = [op(0, "put", "x", 0, 1)]
    assert verdict(*base, op(1, "cas", ("x", "y"), 2, INF), op(2, "get", None, 5, 6, "y")) is True
    # An unknown cas from a value the register did not hold cannot produce its new value.
    assert verdict(*base, op(1, "cas", ("q", "y"), 2, INF), op(2, "get", None, 5, 6, "y")) is False
    # The unknown put of "x" is observed only by the unknown cas that needs it: both must be kept.
    chain = [op(0, "put", "x", 0, INF), op(1, "cas", ("x", "y"), 2, INF), op(2, "get", None, 5, 6, "y")]
    assert len(prune(chain)) == 3
    assert verdict(*chain) is True


def test_keys_are_checked_independently() -> None:
    result = check([
        op(0, "put", "a", 0, 1, key="k1"),
        op(1, "get", None, 2, 3, None, key="k1"),
        op(2, "put", "a", 0, 1, key="k2"),
        op(3, "get", None, 2, 3, "a", key="k2"),
    ])
    assert result.ok is False
    assert [(r.key, r.ok) for r in result.keys] == [("k1", False), ("k2", True)]
    assert "NOT linearizable" in result.report() and "#1" in result.report()


def test_history_recorder() -> None:
    h = History()
    a = h.invoke(0, "k", "put", "v")
    b = h.invoke(1, "k", "get")
    c = h.invoke(2, "k", "put", "w")
    d = h.invoke(3, "k", "get")
    e = h.invoke(4, "k", "cas", ("v", "z"))
    h.ok(a)
    h.ok(b, "v")
    h.fail(c)  # certainly not applied: not in the history
    h.unknown(d)  # an unknown read tells nothing: not in the history
    ops = {o.id: o for o in h.finish()}  # e is still pending: unknown
    assert set(ops) == {a, b, e}
    assert ops[e].unknown and not ops[a].unknown and ops[b].out == "v"
    assert check(ops.values()).ok is True


def _register_history(rng: random.Random, n_ops: int, n_clients: int,
                      unknown_rate: float) -> list[Op]:
    """Operations with real effect points inside their intervals, on one register."""
    state: str | None = None
    ops: list[Op] = []
    t = 0.0
    free_at = [0.0] * n_clients
    written: list[str] = []
    for i in range(n_ops):
        client = rng.randrange(n_clients)
        t = max(t + rng.random(), free_at[client] + 0.001)  # effect points in generation order
        call = max(t - rng.random() * 3, free_at[client])
        point = t
        kind = rng.choice(["put", "get", "cas"])
        unknown = kind != "get" and rng.random() < unknown_rate
        ret = INF if unknown else point + rng.random() * 3
        free_at[client] = ret if not unknown else point
        if kind == "put":
            value = f"v{i}"
            state = value
            written.append(value)
            ops.append(Op(i, client, "k", "put", value, call, ret, None))
        elif kind == "get":
            ops.append(Op(i, client, "k", "get", None, call, ret, state))
        else:
            expected = rng.choice([*written[-3:], None]) if written else None
            new = f"v{i}"
            succeeded = state == expected and expected is not None
            seen = None if succeeded else state
            if succeeded:
                state = new
                written.append(new)
            elif unknown:
                # An unknown cas that did not apply must not be modelled as "succeeded later":
                # give it an expected value that can never match.
                expected = f"never{i}"
            ops.append(Op(i, client, "k", "cas", (expected, new), call, ret,
                          None if unknown else (succeeded, seen)))
    return ops


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(1, 60), n_clients=st.integers(1, 5),
       unknown_rate=st.sampled_from([0.0, 0.1, 0.3]))
def test_histories_of_a_real_register_are_linearizable(seed: int, n_ops: int, n_clients: int,
                                                        unknown_rate: float) -> None:
    ops = _register_history(random.Random(seed), n_ops, n_clients, unknown_rate)
    result = check_key("k", ops)
    assert result.ok is True, result.detail


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(2, 60), n_clients=st.integers(1, 5))
def test_a_read_of_a_value_never_written_is_caught(seed: int, n_ops: int, n_clients: int) -> None:
    rng = random.Random(seed)
    ops = _register_history(rng, n_ops, n_clients, 0.1)
    reads = [i for i, o in enumerate(ops) if o.kind == "get"]
    if not reads:
        ops.append(Op(len(ops), 0, "k", "get", None, 1e6, 1e6 + 1, None))
        reads = [len(ops) - 1]
    i = rng.choice(reads)
    o = ops[i]
    ops[i] = Op(o.id, o.client, o.key, o.kind, o.arg, o.call, o.ret, "phantom")
    assert check_key("k", ops).ok is False


def test_large_concurrent_history_is_checked_quickly() -> None:
    ops = _register_history(random.Random(7), 3000, 8, 0.05)
    started = time.monotonic()
    result = check_key("k", ops)
    assert result.ok is True
    assert time.monotonic() - started < 20
