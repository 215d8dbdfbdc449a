"""Fixtures for process-level cluster tests: every cluster is closed (its processes killed by pid) when
the test ends, pass or fail; a failed test prints the tail of each member's log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Cluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()

ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def cluster_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterFactory]:
    """``cluster_factory(size=3, seed=..., snapshot_count=...)`` starts a cluster, waits for a leader."""
    clusters: list[Cluster] = []

    def make(size: int = 3, **kwargs: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", size, **kwargs)
        clusters.append(cluster)
        return cluster.start(size)

    try:
        yield make
    finally:
        failed = request.node.stash.get(_FAILED, True)
        for cluster in clusters:
            if failed:
                print(f"\n==== member logs (seed {cluster.seed}) ====\n{cluster.logs()}")
            cluster.close()
