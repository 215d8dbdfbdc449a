"""Every conformance case, sent to real etcd and to the candidate; answers must be identical."""

from __future__ import annotations

import pytest

from tests.conformance.cases import ALL_CASES
from tests.conformance.harness import Case, Target, check_reference, diff_report


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_gateway_matches_etcd(case: Case, reference: Target, candidate: Target) -> None:
    ref = reference.run(case)
    wrong = check_reference(case, ref)
    # A case whose reference answer is not what it was written for tests nothing; fail it loudly.
    assert not wrong, f"case {case.id} is broken against real etcd:\n" + "\n".join(wrong)
    got = candidate.run(case)
    if ref != got:
        pytest.fail(diff_report(case, ref, got, reference.name, candidate.name), pytrace=False)


def test_case_count() -> None:
    # Issue 3 asks for at least 60 distinct cases.
    assert len(ALL_CASES) >= 60
