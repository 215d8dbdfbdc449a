"""The cluster version is the lowest member version, agreed through Raft; a member below the cluster
version refuses to join or to start (etcd's downgrade protection). Members announce other versions with
--experimental-advertise-version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import Cluster, wait_for

NEWER = "3.5.0"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "c", 0)
    try:
        yield c
    finally:
        c.close()


def start(c: Cluster, versions: dict[str, str | None]) -> None:
    """A new cluster whose members announce the given versions (None: etcdpy's own)."""
    members = [c._new_member(name) for name in versions]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.initial_cluster, m.state = initial, "new"
        version = versions[m.name]
        m.extra = ["--experimental-advertise-version", version] if version else []
        c._spawn(m)
    for m in members:
        c.wait_serving(m.name)
        m.id = int(c.status(m.name)["header"]["member_id"])
    c.wait_leader()


def versions(c: Cluster, name: str) -> dict[str, str]:
    data: dict[str, str] = httpx.get(f"{c.url(name)}/version", timeout=2).json()
    return data


def cluster_version_is(c: Cluster, name: str, expected: str) -> bool:
    return versions(c, name)["etcdcluster"] == expected


def exited(c: Cluster, name: str) -> int | None:
    proc = c.members[name].proc
    return proc.poll() if proc is not None else None


def test_cluster_version_is_the_lowest_member_version(cluster: Cluster) -> None:
    start(cluster, {"n1": NEWER, "n2": None})
    for name in ("n1", "n2"):
        wait_for(f"{name} to agree on 3.4.0", lambda n=name: cluster_version_is(cluster, n, "3.4.0"), 15)
    assert versions(cluster, "n1")["etcdserver"] == NEWER
    assert versions(cluster, "n2")["etcdserver"] == "3.4.23"
    metrics = httpx.get(f"{cluster.url('n1')}/metrics").text
    assert 'etcd_cluster_version{cluster_version="3.4"} 1.0' in metrics
    # A peer that goes away is reported as etcd's rafthttp reports it.
    cluster.stop("n2")
    log = cluster.members["n1"].log_path
    warning = "became inactive (message send to peer failed)"
    wait_for("n1 to warn about n2", lambda: warning in log.read_text(), 15)


def test_lower_version_refuses_to_join_or_restart(cluster: Cluster) -> None:
    start(cluster, {"n1": NEWER})
    wait_for("the cluster version 3.5.0", lambda: cluster_version_is(cluster, "n1", "3.5.0"), 15)

    joiner = cluster.add_member("n2", via="n1", learner=False)  # announces etcdpy's 3.4.23
    code = wait_for("n2 to refuse to join", lambda: exited(cluster, "n2"), 30)
    assert code == 1
    assert "incompatible with current running cluster" in joiner.log_path.read_text()

    # The same member data, restarted as a 3.4 member: the recorded cluster version forbids it.
    n1 = cluster.members["n1"]
    cluster.stop("n1")
    n1.extra = []
    cluster._spawn(n1)
    code = wait_for("n1 to refuse to start", lambda: exited(cluster, "n1"), 30)
    assert code == 1
    assert ("cluster cannot be downgraded (current version: 3.4.23 is lower than determined cluster "
            "version: 3.5).") in n1.log_path.read_text()
