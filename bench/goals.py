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


# (scenario name, cluster size) -> goal
GOALS: dict[tuple[str, int], Goal] = {
    ("put-64", 1): Goal("single node put @64: throughput >= 1.0x etcd and p99 <= etcd's",
                        lambda e, p: _ratio(p, e, "throughput") >= 1.0 and p["p99"] <= e["p99"]),
    ("range-64", 1): Goal("linearizable range @64: throughput >= 1.2x etcd",
                          lambda e, p: _ratio(p, e, "throughput") >= 1.2),
    ("put-latency-1", 1): Goal("put latency @1 conn: p50 <= 1.2x etcd's",
                               lambda e, p: p["p50"] <= 1.2 * e["p50"]),
    ("put-256", 1): Goal("errors @256 conns = 0", lambda e, p: p["errors"] == 0),
    ("put-256", 3): Goal("3-member put @256: throughput >= 1.0x etcd",
                         lambda e, p: _ratio(p, e, "throughput") >= 1.0),
}

LOAD_RSS_LIMIT = 300 * 10**6
LOAD_RESTART_LIMIT_S = 2.0
LOAD_GOAL_TEXT = "1M keys x 100 B: RSS <= 300 MB and restart-to-serving <= 2 s"


def goal_for(scenario: str, cluster: int) -> Goal | None:
    return GOALS.get((scenario, cluster))


def verdict(goal: Goal, etcd: Figures | None, py: Figures | None) -> bool | None:
    if etcd is None or py is None:
        return None
    return bool(goal.check(etcd, py))


def verdict_text(v: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "n/a"}[v]
