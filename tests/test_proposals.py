"""PendingProposals (app/server/proposals.py): each waiter is taken at most once, by its result, by the
timeout sweep, or at a stop; a failing waiter does not keep the others from their results."""

from __future__ import annotations

import asyncio
from typing import Any

from etcdpy.app.server.proposals import PendingProposals, settle_all, settle_future, settle_one


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_waiter_is_taken_once() -> None:
    pending = PendingProposals(7.0, Clock())
    got: list[Any] = []
    pending.add(1, got.append)
    assert len(pending) == 1
    settle = pending.take(1)
    assert settle is not None
    settle("result")
    assert got == ["result"]
    assert pending.take(1) is None
    assert len(pending) == 0


def test_only_proposals_past_their_deadline_expire() -> None:
    clock = Clock()
    pending = PendingProposals(7.0, clock)
    got: list[tuple[int, Any]] = []
    pending.add(1, lambda r: got.append((1, r)))
    clock.now += 3.0
    pending.add(2, lambda r: got.append((2, r)))
    clock.now += 3.999
    assert pending.take_expired() == []
    clock.now += 0.001
    expired = pending.take_expired()
    assert len(expired) == 1
    expired[0]("late")
    assert got == [(1, "late")]
    assert len(pending) == 1
    clock.now += 3.0
    assert len(pending.take_expired()) == 1
    assert len(pending) == 0


def test_discard_and_take_all() -> None:
    pending = PendingProposals(7.0, Clock())
    for rid in range(3):
        pending.add(rid, lambda r: None)
    pending.discard(1)
    pending.discard(99)  # a waiter already taken: nothing to do
    assert len(pending.take_all()) == 2
    assert len(pending) == 0


def test_a_failing_waiter_does_not_stop_the_others() -> None:
    got: list[Any] = []
    failures: list[str] = []

    def broken(_: Any) -> None:
        raise RuntimeError("bug")
    settle_all([got.append, broken, got.append], "same", lambda: failures.append("logged"))
    assert got == ["same", "same"]
    assert failures == ["logged"]
    settle_one(broken, 1, lambda: failures.append("logged again"))
    assert failures == ["logged", "logged again"]


def test_settle_future_leaves_a_cancelled_future_alone() -> None:
    loop = asyncio.new_event_loop()
    try:
        live, gone = loop.create_future(), loop.create_future()
        gone.cancel()
        settle_future(live)("ok")
        settle_future(gone)("ignored")
        assert live.result() == "ok"
        assert gone.cancelled()
    finally:
        loop.close()
