"""Every auth scenario (tests/auth/cases.py) against real etcd 3.4 and etcdpy: identical answers.

Compared per step: the HTTP status and the body as exact text after rewriting ids, raft term,
revisions (relative to the scenario's start) and token values; the scenarios cover every auth call,
its error answers, and the permission checks of the KV, lease and cluster calls.
"""

from __future__ import annotations

import pytest

from tests.auth import cases
from tests.auth.scenario import Runner, run_both


@pytest.mark.parametrize("scenario", cases.ALL, ids=[f.__name__ for f in cases.ALL])
def test_auth_matches_etcd(scenario: cases.Scenario, etcd: Runner, etcdpy: Runner) -> None:
    diffs = run_both(scenario(), etcd, etcdpy)
    assert not diffs, f"{scenario.__name__}: etcdpy answers differently:\n" + "\n".join(diffs)
