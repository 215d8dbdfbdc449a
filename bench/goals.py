"""The performance goals from the issue, as checks over per-server median figures.

A check returns True (met), False (missed) or None (cannot tell: etcdpy did not run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Figures = dict[str, Any]  # throughput, p50, p99, errors, ... (medians across rounds)


@dataclass(frozen=True)
class Goal:
    text: str
    check: Callable[[Figures, Figures], bool]


def _ratio(py: Figures, etcd: Figures, key: str) -> float:
    return float(py[key]) / float(etcd[key]) if etcd[key] else 0.0


# (scenario or workload name, cluster size) -> goal: issue 19's goals
GOALS: dict[tuple[str, int], Goal] = {
    ("put-64", 1): Goal("single node put @64: throughput >= 1.5x etcd and p99 <= etcd's",
                        lambda e, p: _ratio(p, e, "throughput") >= 1.5 and p["p99"] <= e["p99"]),
    ("range-64", 1): Goal("linearizable range @64: throughput >= 3x etcd",
                          lambda e, p: _ratio(p, e, "throughput") >= 3.0),
    ("range-s-64", 1): Goal("serializable range @64: throughput >= 3x etcd",
                            lambda e, p: _ratio(p, e, "throughput") >= 3.0),
    ("put-latency-1", 1): Goal("put latency @1 conn: p50 <= 0.8x etcd's",
                               lambda e, p: p["p50"] <= 0.8 * e["p50"]),
    ("put-256", 1): Goal("errors @256 conns = 0", lambda e, p: p["errors"] == 0),
    ("put-256", 3): Goal("3-member put @256: throughput >= 1.5x etcd",
                         lambda e, p: _ratio(p, e, "throughput") >= 1.5),
    ("txn-mixed", 1): Goal("txn-mixed @64: throughput >= 1.5x etcd",
                           lambda e, p: _ratio(p, e, "throughput") >= 1.5),
    ("watch-10k", 1): Goal("10,000 watchers @1,000 puts/s: p99 event latency <= etcd's, 0 errors",
                           lambda e, p: p["p99"] <= e["p99"] and p["errors"] == 0),
    ("lease-keepalive", 1): Goal("lease keep-alive: throughput >= 1.5x etcd",
                                 lambda e, p: _ratio(p, e, "throughput") >= 1.5),
}

# Load mode: memory flat in key count (compare two runs, e.g. --keys 1000000 and --keys 3000000) and
# restart-to-serving against etcd's in the same run.
LOAD_RESTART_RATIO = 0.2
LOAD_GOAL_TEXT = "restart-to-serving <= 0.2x etcd's"


def goal_for(scenario: str, cluster: int) -> Goal | None:
    return GOALS.get((scenario, cluster))


def verdict(goal: Goal, etcd: Figures | None, py: Figures | None) -> bool | None:
    if etcd is None or py is None:
        return None
    return bool(goal.check(etcd, py))


def verdict_text(v: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "n/a"}[v]
