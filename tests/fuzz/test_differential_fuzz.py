"""Generative differential fuzzing: hypothesis sessions of KV and lease requests, valid and mutated,
sent in lockstep to real etcd 3.4 and to etcdpy; every answer and the resulting state must match.

    pytest tests/fuzz                          # CI budget (FUZZ_EXAMPLES, default 400 sessions)
    FUZZ_EXAMPLES=5000 pytest tests/fuzz       # a long run

A failure shows both answers for every step, and the shrunk session is written as a regressions.json
entry to .fuzz-failures/last.json (the last failing call hypothesis makes is the shrunk one): add it
to tests/fuzz/regressions.json, which test_regressions replays on every run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conformance.harness import Case, Target
from tests.fuzz.lockstep import case_to_json, compare, load_cases
from tests.fuzz.strategies import session

HERE = Path(__file__).parent
REGRESSIONS = load_cases(HERE / "regressions.json")
FAILURES = Path(os.environ.get("FUZZ_FAILURES_DIR", HERE.parent.parent / ".fuzz-failures"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))


def _keep(steps: list, report: str) -> None:
    FAILURES.mkdir(exist_ok=True)
    entry = case_to_json("fuzz-CHANGEME", steps, "found by the differential fuzzer")
    (FAILURES / "last.json").write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
    (FAILURES / "last-report.txt").write_text(report + "\n")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The fixture's servers are module-wide on purpose (see conftest.py); session bodies can be large.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(steps=session())
def test_etcdpy_answers_generated_sessions_like_etcd(steps: list, fuzz_pair: tuple[Target, Target]) -> None:
    reference, candidate = fuzz_pair
    report = compare(Case("generated", tuple(steps)), reference, candidate)
    if report is not None:
        _keep(steps, report)
        pytest.fail(report, pytrace=False)


@pytest.mark.parametrize("case", REGRESSIONS, ids=[c.id for c in REGRESSIONS])
def test_regressions(case: Case, fuzz_pair: tuple[Target, Target]) -> None:
    report = compare(case, *fuzz_pair)
    if report is not None:
        pytest.fail(report, pytrace=False)
