"""Seeded randomized simulations of 3, 5 and 7 node clusters under faults.

Each case runs a chaos phase (drops, delays, duplicates, reordering, symmetric and one-way
partitions, crashes losing unsynced writes, restarts, new leaders crashed or cut off; in some
runs membership changes and leadership transfers), then heals and demands liveness. Safety
invariants are checked after every step inside the simulator (see simulator.py).
RAFT_SIM_SEEDS=k multiplies the number of seeds. test_mutations.py shows these random runs
catch broken Raft rules.

Reproduce a failure: SEED=<seed> N=<n> pytest tests/raft/test_simulation.py -k repro
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.raft.simulator import SimOptions, Simulator

MULT = max(1, int(os.environ.get("RAFT_SIM_SEEDS", "1")))
CHUNK = 25
# Seeds per node count in CI: 200 x 3-node, 150 x 5-node, 100 x 7-node = 450 runs (~20 s on an idle
# 2-core machine).
SEEDS_PER_SIZE = {3: 200 * MULT, 5: 150 * MULT, 7: 100 * MULT}


def options_for(seed: int, n: int) -> SimOptions:
    """Vary the configuration with the seed so the runs cover all features."""
    o = SimOptions(n=n, conf_changes=seed % 3 == 0, transfers=seed % 2 == 0)
    if seed % 4 == 1:
        o.pre_vote = False
        o.check_quorum = False
    elif seed % 4 == 2:
        o.pre_vote = False
    if seed % 5 == 0:
        # Tiny messages and a tiny window: exercises flow control and probing.
        o.max_size_per_msg = 40
        o.max_inflight = 2
    if seed % 3 == 2:
        # Leader killer: most new leaders are crashed or cut off right after election, dead nodes come
        # back fast, and entries travel one per message (a new leader's earlier-term entries reach a
        # follower one at a time). This is how Figure 8's histories, and stale leaders, come about.
        o.leader_faults, o.restart, o.max_size_per_msg = 0.7, 0.1, 1
    if seed % 7 == 3:
        o.compact_every = 5
    if seed % 11 == 4:
        # A hostile network: heavy loss, duplication and long delays (more reordering).
        o.drop, o.dup, o.max_delay, o.partition = 0.2, 0.1, 8, 0.03
    return o


def run_case(seed: int, n: int, **overrides: object) -> Simulator:
    opts = options_for(seed, n)
    for k, v in overrides.items():
        setattr(opts, k, v)
    sim = Simulator(seed, opts)
    sim.run()
    return sim


def _chunks() -> list[tuple[int, int, int]]:
    out = []
    for n, count in SEEDS_PER_SIZE.items():
        for start in range(0, count, CHUNK):
            out.append((n, start, min(start + CHUNK, count)))
    return out


@pytest.mark.parametrize("n,lo,hi", _chunks(), ids=lambda v: str(v))
def test_simulation_chunk(n: int, lo: int, hi: int) -> None:
    for seed in range(lo, hi):
        run_case(seed, n)


# Seeds that failed during development (each with the options it failed under). They stay
# as permanent regression cases. (The simulator has changed since most of them were found, so they
# no longer replay the history that failed; they remain as extra runs.)
REGRESSIONS: list[tuple[int, int, dict[str, object]]] = [
    # A restarted node replaying bootstrap conf changes was taken for a removed member.
    (7, 3, {"conf_changes": False, "transfers": False, "pre_vote": True, "check_quorum": True,
            "max_size_per_msg": 0, "max_inflight": 8}),
    (8, 3, {"conf_changes": False, "transfers": True, "pre_vote": True, "check_quorum": True,
            "max_size_per_msg": 0, "max_inflight": 8}),
    # A learner added after the leader's last snapshot could never restore a snapshot naming it.
    (15, 5, {"conf_changes": True, "transfers": False, "pre_vote": True, "check_quorum": True,
             "max_size_per_msg": 0, "max_inflight": 8}),
    # Restart must pass the snapshot index as Config.applied or entries are applied twice.
    (0, 5, {"conf_changes": True, "transfers": True, "pre_vote": True, "check_quorum": True,
            "max_size_per_msg": 0, "max_inflight": 8}),
    # Proposals lost to a leader change after healing: clients must retry with the new leader.
    (1121, 5, {}),
    # A pending learner (conf change not yet applied) was stopped as a "non-member".
    (1005, 3, {}),
    (1029, 3, {}),
    (1065, 3, {}),
    (1125, 5, {}),
    # A leader that had not yet applied the conf change adding a learner got it stopped.
    (5481, 5, {}),
    # A proposal forwarded by node X and bounced back to X after it became leader (frm == X) had its
    # entries adopted without copying; a duplicate then renumbered entries already in the log.
    (128, 3, {}),
    # A voter demoted to learner after raising its term (no pre-vote/check-quorum) ignored the
    # lower-term leader forever, and never campaigned to make it step down.
    (201693, 5, {}),
    # A one-voter leader commits what it appends at once; it sent the entries (and a commit index
    # covering them) to its learners before its own sync, then crashed and lost them.
    (132, 1, {"conf_changes": True}),
    (357, 1, {"conf_changes": True}),
]


@pytest.mark.parametrize("seed,n,overrides", REGRESSIONS, ids=[f"{s}-{n}" for s, n, _ in REGRESSIONS])
def test_regression(seed: int, n: int, overrides: dict[str, object]) -> None:
    run_case(seed, n, **overrides)


def test_one_voter_with_learners() -> None:
    """A single voter is a quorum on its own, with learners added (and promoted) as it runs."""
    for seed in range(0, 150, 3):
        run_case(seed, 1, conf_changes=True)


def test_repro() -> None:
    """Run one case: SEED and N from the environment (defaults: 0 and 3)."""
    seed = int(os.environ.get("SEED", "0"))
    n = int(os.environ.get("N", "3"))
    run_case(seed, n)


def test_simulation_is_deterministic() -> None:
    a = run_case(42, 5)
    b = run_case(42, 5)
    assert a.applied == b.applied
    assert a.leaders == b.leaders
    assert a.now == b.now


def test_simulation_exercises_faults_and_features() -> None:
    """Guard against a simulator that silently stopped injecting faults or exercising features."""
    total: Counter[str] = Counter()
    for seed in range(0, 30):
        sim = run_case(seed, 5, conf_changes=True, transfers=True)
        assert sim.leaders, "no leader was ever elected"
        total += sim.stats
    for kind in ("crash", "restart", "lost_writes", "drop", "dup", "partition", "one_way", "snapshot",
                 "conf_change", "joint", "transfer", "leader", "read"):
        assert total[kind] > 0, f"no {kind!r} events in 30 runs: {dict(total)}"
