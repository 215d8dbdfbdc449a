"""Auto-compaction policies with a fake clock: etcd's periodic and revision semantics, and the loop
keeping history bounded."""

from __future__ import annotations

import asyncio

import pytest

from etcdpy.app.config import ConfigError
from etcdpy.app.server.compactor import (
    PeriodicPolicy,
    RevisionPolicy,
    make_policy,
    parse_retention,
    run_compactor,
)


def test_retention_parsing_follows_etcd() -> None:
    assert parse_retention("periodic", "1") == 3600.0  # a bare integer is hours
    assert parse_retention("periodic", "30m") == 1800.0
    assert parse_retention("revision", "1000") == 1000
    assert make_policy("periodic", "0") is None
    assert isinstance(make_policy("revision", "10"), RevisionPolicy)
    with pytest.raises(ConfigError, match="CompactionRetention"):
        parse_retention("periodic", "abc")
    with pytest.raises(ConfigError, match="auto-compaction-mode"):
        parse_retention("weekly", "1")


def test_periodic_waits_one_period_then_compacts_at_the_revision_from_a_period_ago() -> None:
    policy = PeriodicPolicy(600.0)  # 10 minutes: samples every minute, compacts every 10 minutes
    assert policy.interval == 60.0
    policy.start(0.0, 1)
    decisions = []
    for minute in range(1, 31):
        rev = 1 + minute * 100  # 100 revisions a minute
        decisions.append((minute, policy.tick(minute * 60.0, rev, leader=True)))
        if decisions[-1][1] is not None:
            policy.done(minute * 60.0, ok=True)
    made = [(m, r) for m, r in decisions if r is not None]
    # First compaction after one period, then every period; always about one period of history kept.
    assert [m for m, _ in made] == [10, 20, 30]
    for minute, rev in made:
        current = 1 + minute * 100
        assert 1000 <= current - rev <= 1100


def test_periodic_long_retention_compacts_hourly_and_followers_only_sample() -> None:
    policy = PeriodicPolicy(5 * 3600.0)
    assert policy.interval == 360.0  # a tenth of an hour
    policy.start(0.0, 1)
    made = []
    t = 0.0
    for step in range(1, 10 * 10 + 1):  # ten hours
        t = step * policy.interval
        leader = step > 5  # a follower at first: it records revisions but never compacts
        rev = policy.tick(t, step * 10, leader)
        if rev is not None:
            made.append((t / 3600.0, rev))
            policy.done(t, ok=True)
    assert [round(h, 1) for h, _ in made] == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    for hours, rev in made[1:]:  # the first compacts at the oldest sample, taken at the start
        current = round(hours * 100)
        assert 500 <= current - rev <= 510  # five hours (100 revisions an hour) of history kept


def test_periodic_retries_after_a_failure() -> None:
    policy = PeriodicPolicy(600.0)
    policy.start(0.0, 1)
    for minute in range(1, 10):
        assert policy.tick(minute * 60.0, minute, True) is None
    assert policy.tick(600.0, 10, True) is not None
    policy.done(600.0, ok=False)
    assert policy.tick(660.0, 11, True) is not None  # not marked done: tried again a minute later


def test_revision_policy_keeps_the_last_n_revisions() -> None:
    policy = RevisionPolicy(100)
    assert policy.tick(0.0, 50, True) is None  # not enough history yet
    assert policy.tick(0.0, 500, False) is None  # never on a follower
    assert policy.tick(0.0, 500, True) == 400
    policy.done(0.0, True, 400)
    assert policy.tick(0.0, 500, True) is None  # nothing new since the last compaction
    assert policy.tick(0.0, 650, True) == 550


def test_loop_keeps_history_bounded_with_a_fake_clock() -> None:
    """Writes keep coming; with revision retention 100 the compacted revision trails by about 100."""
    clock = [0.0]
    state = {"rev": 1, "compacted": 0, "calls": 0}

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds
        state["rev"] += 37  # writes during the interval
        state["calls"] += 1
        if state["calls"] > 50:
            raise asyncio.CancelledError

    async def compact(rev: int) -> bool:
        assert rev > state["compacted"]
        state["compacted"] = rev
        return True

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run_compactor(RevisionPolicy(100), lambda: clock[0], lambda: state["rev"], lambda: True,
                                  compact, sleep=fake_sleep))
    assert state["rev"] - state["compacted"] <= 100 + 37
    assert clock[0] == pytest.approx(51 * 300.0)  # the 51st sleep ends the run
