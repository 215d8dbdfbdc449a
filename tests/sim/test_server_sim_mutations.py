"""The whole-server simulation catches bugs above Raft: each mutation (tests/sim/mutations.py) must make
some of a handful of random seeds fail, and the clean code must pass the same seeds (test_server_sim)."""

from __future__ import annotations

import os

import pytest

from tests.sim.mutations import MUTATIONS
from tests.sim.runner import run_seed

SEEDS = int(os.environ.get("SERVER_SIM_MUTATION_SEEDS", 8))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_is_caught(name: str) -> None:
    caught = []
    for seed in range(SEEDS):
        with MUTATIONS[name]():
            result = run_seed(seed)
        if result.problems:
            caught.append(result)
            break
    assert caught, f"mutation {name} survived {SEEDS} seeds"
    print(f"{name}: caught by seed {caught[0].seed}: {caught[0].problems[0][:300]}")
