"""Catch-up by snapshot, on real processes: a cluster with a small --snapshot-count whose leader has
compacted its log past everything a stopped follower holds (more than the 5000 entries a leader keeps
after a snapshot are written meanwhile). That set-up is the expensive part, so the tests of this module
share it (a module-scoped fixture, torn down with the module).
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cluster.harness import Cluster, get, put, wait_for
from tests.cluster.workload import Writer

SNAPSHOT_COUNT = 100
CATCH_UP_ENTRIES = 5000  # app.raft_node.CATCH_UP_ENTRIES: entries a leader keeps after a snapshot


@dataclass
class Compacted:
    """A cluster whose leader compacted its log past everything a stopped follower has."""

    cluster: Cluster
    leader: str
    follower: str  # stopped before the writes
    stopped_at: int  # the follower's applied index when it stopped
    writer: Writer


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[Compacted]:
    """One expensive set-up (> 5000 entries written) shared by the two snapshot tests."""
    seed = int(os.environ.get("CLUSTER_SEED", random.randrange(2**32)))
    cluster = Cluster(tmp_path_factory.mktemp("compacted"), 3, seed=seed, snapshot_count=SNAPSHOT_COUNT)
    failed_before = request.session.testsfailed
    try:
        cluster.start(3)
        leader = cluster.leader()
        follower = cluster.followers(leader)[0]
        for i in range(20):
            put(cluster.http, cluster.url(leader), f"snap/before/{i}", str(i))
        cluster.wait_converged()
        stopped_at = int(cluster.status(follower)["raftAppliedIndex"])
        cluster.stop(follower)
        # The leader's log must start after the follower's last entry: it compacts to (snapshot - 5000).
        target = stopped_at + CATCH_UP_ENTRIES + 2 * SNAPSHOT_COUNT + 10
        with Writer(cluster, "snap/w/", targets=lambda: [leader], threads=12, timeout=5.0,
                    seed=seed) as writer:
            wait_for(f"the leader's applied index to pass {target}",
                     lambda: int(cluster.status(leader)["raftAppliedIndex"]) > target, timeout=120,
                     interval=0.5)
        assert not writer.unknown and not writer.failed, writer.errors
        assert "log compacted" in cluster.members[leader].log_path.read_text()
        yield Compacted(cluster, leader, follower, stopped_at, writer)
    finally:
        if request.session.testsfailed > failed_before:
            print(f"\n==== member logs (seed {seed}) ====\n{cluster.logs()}")
        cluster.close()


def test_follower_catches_up_by_snapshot(compacted: Compacted) -> None:
    """A follower that missed more than the leader keeps in its log (the last snapshot plus 5000
    entries) gets a snapshot, and ends with the same data."""
    cluster, follower, writer = compacted.cluster, compacted.follower, compacted.writer
    cluster.start_member(follower, wait="healthy")
    data = cluster.wait_converged(timeout=60)
    log = cluster.members[follower].log_path.read_text()
    installed = [int(i) for i in re.findall(r"installed snapshot at index (\d+)", log)]
    assert installed and max(installed) > compacted.stopped_at + CATCH_UP_ENTRIES, \
        f"{follower} did not catch up by snapshot (installed: {installed}, stopped at {compacted.stopped_at})"
    assert len([k for k in data if k.startswith("snap/w/")]) == len(writer.acked)
    writer.verify(list(cluster.members))
    # It serves and replicates normally after the snapshot.
    put(cluster.http, cluster.url(follower), "snap/after", "x")
    assert get(cluster.http, cluster.url(follower), "snap/after") == "x"


def test_learner_added_after_log_compaction_catches_up_by_snapshot(compacted: Compacted) -> None:
    """The leader's log no longer starts at 1 and (fewer than --snapshot-count entries are written from
    now on): a learner with no log at all can only join by the snapshot the leader sends."""
    cluster, writer = compacted.cluster, compacted.writer
    learner = cluster.add_member("n4", via=cluster.leader())
    cluster.wait_serving("n4")
    wait_for("the learner to install a snapshot",
             lambda: re.search(r"installed snapshot at index \d+", learner.log_path.read_text()), timeout=10)
    cluster.promote_when_in_sync(learner.id, timeout=30)
    cluster.wait_healthy("n4")
    put(cluster.http, cluster.url("n4"), "snap/after-join", "y")
    data = cluster.wait_converged(timeout=60)
    assert data["snap/after-join"][0] == "y"
    writer.verify(cluster.live())
    assert len(cluster.member_call("n4", "list", {})["members"]) == 4
