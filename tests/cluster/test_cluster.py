"""Process-level tests of real etcdpy clusters: replication, crashes, pauses, partitions, snapshots,
rolling restarts and membership changes, each with its acknowledged writes checked on every member.

Each test starts its own cluster of real ``python -m app`` processes (tests.cluster.harness) with short
Raft timings (heartbeat 50 ms, election timeout 500 ms) and peer traffic through fault-injecting proxies.
A test's randomness comes from one seed (``CLUSTER_SEED`` to repeat one); it is printed with the member
logs when a test fails.
"""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from websockets.sync.client import connect

from tests.cluster.conftest import ClusterFactory
from tests.cluster.harness import Cluster, RpcError, b64, dump, get, put, rpc, unb64, wait_for
from tests.cluster.linearizability import History, check
from tests.cluster.workload import Writer


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("CLUSTER_SEED", random.randrange(2**32)))


# ---------------------------------------------------------------------- replication


def test_writes_on_each_member_are_visible_on_every_member(cluster_factory: ClusterFactory,
                                                           seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    names = list(cluster.members)
    revisions = []
    for round_ in range(5):
        for writer in names:
            key, value = f"repl/{writer}/{round_}", f"from {writer} round {round_}"
            revisions.append(put(cluster.http, cluster.url(writer), key, value))
            # A linearizable read anywhere, right after the acknowledgement, must see the write.
            for reader in names:
                seen = get(cluster.http, cluster.url(reader), key)
                assert seen == value, f"{reader} read {seen!r} for {key} just written on {writer}"
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    data = cluster.wait_converged(prefix="repl/")
    assert len(data) == 15
    # Every member answers with the same revision for the same key.
    for name in names:
        assert dump(cluster.http, cluster.url(name), prefix="repl/", serializable=False) == data


# ---------------------------------------------------------------------- crashes


def _restart_isolated_and_check_wal(cluster: Cluster, name: str, writer: Writer, killed_at: float) -> None:
    """Restart ``name`` cut off from its peers: what it serves comes from its own WAL and database."""
    cluster.isolate(name)
    cluster.start_member(name, wait="serving")
    own = writer.acked_by(name, before=killed_at)
    assert own, f"{name} acknowledged nothing before it was killed"
    data = dump(cluster.http, cluster.url(name), prefix=writer.prefix)
    missing = {k: a for k, a in own.items() if k not in data or data[k][2] != a.revision}
    assert not missing, f"{name} restarted without writes it had acknowledged: {list(missing.items())[:5]}"
    cluster.heal()


def test_kill_leader(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    with Writer(cluster, "kl/", targets=cluster.live, seed=seed) as writer:
        writer.wait_acks(60)
        leader = cluster.leader()
        others = [n for n in cluster.members if n != leader]
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader = cluster.wait_leader(others, exclude=[leader], timeout=10 * cluster.election_s + 5)
        elected_after = time.monotonic() - killed_at
        writer.wait_acks(60)
        _restart_isolated_and_check_wal(cluster, leader, writer, killed_at)
        cluster.wait_healthy(leader)
        writer.wait_acks(30)
    cluster.wait_converged()
    writer.verify(list(cluster.members))
    print(f"seed {seed}: new leader {new_leader} after {elected_after:.2f} s; {len(writer.acked)} acked, "
          f"{len(writer.unknown)} unknown, {writer.failed} refused")


def test_kill_follower(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    with Writer(cluster, "kf/", targets=cluster.live, seed=seed) as writer:
        writer.wait_acks(60)
        leader = cluster.leader()
        follower = random.Random(seed).choice(cluster.followers(leader))
        killed_at = time.monotonic()
        cluster.kill(follower)
        writer.wait_acks(100)  # the remaining majority keeps acknowledging writes
        assert cluster.wait_leader([n for n in cluster.members if n != follower]) == leader
        _restart_isolated_and_check_wal(cluster, follower, writer, killed_at)
        cluster.wait_healthy(follower)
        writer.wait_acks(30)
    cluster.wait_converged()
    writer.verify(list(cluster.members))


# ---------------------------------------------------------------------- partitions and pauses


def test_minority_partition(cluster_factory: ClusterFactory, seed: int) -> None:
    """5 members: the leader and one follower are cut off from the other three."""
    rng = random.Random(seed)
    cluster = cluster_factory(5, seed=seed)
    history = History()  # for a check that the checker flags the minority's stale serializable reads
    op = history.invoke(0, "part/k", "put", "before")
    put(cluster.http, cluster.url("n1"), "part/k", "before")
    history.ok(op)
    old_leader = cluster.leader()
    minority = [old_leader, rng.choice(cluster.followers(old_leader))]
    majority = [n for n in cluster.members if n not in minority]
    cluster.partition(minority, majority, mode=rng.choice(["drop", "blackhole"]))

    new_leader = cluster.wait_leader(majority, timeout=10 * cluster.election_s + 5)
    for i, name in enumerate(majority):
        put(cluster.http, cluster.url(name), f"part/m{i}", name)
    op = history.invoke(0, "part/k", "put", "after")
    put(cluster.http, cluster.url(majority[0]), "part/k", "after")
    history.ok(op)

    # The minority can neither write nor serve a linearizable read, before or after the old leader
    # notices it lost its quorum; its serializable reads may be stale but never invent data.
    for name in minority:
        with pytest.raises(RpcError):
            put(cluster.http, cluster.url(name), f"part/lost-{name}", "x", timeout=1.5)
        with pytest.raises(RpcError):
            seen = get(cluster.http, cluster.url(name), "part/k", timeout=1.5)
            pytest.fail(f"{name} in the minority served a linearizable read: {seen!r}")
        op = history.invoke(1, "part/k", "get")
        stale = get(cluster.http, cluster.url(name), "part/k", serializable=True)
        history.ok(op, stale)
        assert stale == "before", f"{name} cut off before the write cannot have it: {stale!r}"
    # Serializable reads are allowed to be stale, but such a history is not linearizable, and the
    # checker used by the nemesis test must say so.
    assert check(history.finish()).ok is False
    # The old leader steps down (check-quorum) within a few election timeouts.
    wait_for(f"{old_leader} to step down",
             lambda: cluster.leader_view([old_leader])[old_leader] != old_leader, 10 * cluster.election_s + 5)

    cluster.heal()
    assert cluster.wait_leader() in majority
    data = cluster.wait_converged(prefix="part/")
    assert data["part/k"][0] == "after"
    assert {f"part/m{i}" for i in range(3)} <= set(data)
    # The writes sent to the minority were never committed: the majority's newer log replaced them.
    assert not [k for k in data if k.startswith("part/lost-")], data
    for name in cluster.members:
        assert get(cluster.http, cluster.url(name), "part/k") == "after"
    print(f"seed {seed}: minority {minority}, new leader {new_leader}")


def test_sigstop_leader(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    with Writer(cluster, "stop/", targets=cluster.live, seed=seed) as writer:
        writer.wait_acks(40)
        old_leader = cluster.leader()
        old_term = int(cluster.status(old_leader)["raftTerm"])
        others = [n for n in cluster.members if n != old_leader]
        cluster.pause(old_leader)
        new_leader = cluster.wait_leader(others, exclude=[old_leader], timeout=10 * cluster.election_s + 5)
        writer.wait_acks(40)
        put(cluster.http, cluster.url(new_leader), "paused/during", "new")
        time.sleep(2 * cluster.election_s)  # the pause itself
        cluster.resume(old_leader)
        # At once after SIGCONT the old leader may still believe it leads; a linearizable read on it must
        # not return the value from before the pause.
        try:
            seen = get(cluster.http, cluster.url(old_leader), "paused/during", timeout=3.0)
            assert seen == "new", f"{old_leader} served a stale linearizable read after SIGCONT: {seen!r}"
        except RpcError:
            pass
        leader = cluster.wait_leader()
        assert leader != old_leader or int(cluster.status(leader)["raftTerm"]) > old_term
        assert int(cluster.status(old_leader)["raftTerm"]) > old_term
        writer.wait_acks(30)
    cluster.wait_converged()
    writer.verify(list(cluster.members))


# ---------------------------------------------------------------------- rolling restart


def test_rolling_restart_under_load(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    restarting: set[str] = set()
    with Writer(cluster, "roll/", targets=lambda: [n for n in cluster.live() if n not in restarting],
                threads=4, seed=seed) as writer:
        writer.wait_acks(30)
        order = list(cluster.members)
        random.Random(seed).shuffle(order)
        for name in order:
            restarting.add(name)
            cluster.restart(name, kill=False, wait="healthy")  # SIGTERM, then start on the same data
            restarting.discard(name)
            writer.wait_acks(30)
        writer.wait_acks(30)
    cluster.wait_converged()
    writer.verify(list(cluster.members))
    print(f"seed {seed}: order {order}; {len(writer.acked)} acked, {len(writer.unknown)} unknown, "
          f"{writer.failed} refused {writer.errors}")


# ---------------------------------------------------------------------- membership


def test_membership_add_promote_remove_transfer(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    voters = set(cluster.members)
    with Writer(cluster, "mem/", targets=lambda: sorted(voters & set(cluster.live())), seed=seed) as writer:
        writer.wait_acks(50)
        leader = cluster.leader()
        new = cluster.add_member("n4", via=leader)
        members = cluster.member_call(leader, "list", {})["members"]
        assert [m.get("isLearner", False) for m in members if int(m["ID"]) == new.id] == [True]
        cluster.wait_serving("n4")
        _wait_knows_it_is_learner(cluster, "n4")
        refused = cluster.http.post(f"{cluster.url('n4')}/v3/kv/put", json={"key": b64("k")})
        assert (refused.status_code, refused.json()) == (503, LEARNER_REFUSED)

        cluster.promote_when_in_sync(new.id, timeout=30)
        voters.add("n4")
        # The leader answered the promotion once it applied it; every member applies it soon after.
        for name in cluster.members:

            def voters_only(n: str = name) -> bool:
                members = cluster.member_call(n, "list", {})["members"]
                return len(members) == 4 and not any(m.get("isLearner") for m in members)

            wait_for(f"{name} to list 4 voters", voters_only, timeout=10)
        cluster.wait_healthy("n4")
        writer.wait_acks(30)

        # Remove an old member that is not the leader, then stop it.
        leader = cluster.leader()
        victim = next(n for n in ("n1", "n2", "n3") if n != leader)
        victim_id = cluster.members[victim].id
        voters.discard(victim)
        cluster.member_call(leader, "remove", {"ID": str(victim_id)})
        cluster.forget(victim)  # (whether it exits by itself: test_removed_member_shuts_down)
        remaining = sorted(cluster.members)

        def member_ids(name: str) -> set[int]:
            return {int(m["ID"]) for m in cluster.member_call(name, "list", {})["members"]}

        for name in remaining:

            def dropped(n: str = name) -> bool:
                return victim_id not in member_ids(n)

            wait_for(f"{name} to drop {victim}", dropped, timeout=10)
            assert len(member_ids(name)) == 3
        writer.wait_acks(30)

        # Hand leadership to the new member.
        leader = cluster.leader()
        if leader != "n4":
            rpc(cluster.http, cluster.url(leader), "/v3/maintenance/transfer-leadership",
                {"targetID": str(new.id)}, timeout=10.0)
        assert cluster.wait_leader() == "n4"
        for name in remaining:
            assert int(cluster.status(name)["leader"]) == new.id
        writer.wait_acks(30)
    cluster.wait_converged()
    writer.verify(sorted(cluster.members))


LEARNER_REFUSED = {"error": "etcdserver: rpc not supported for learner",
                   "message": "etcdserver: rpc not supported for learner", "code": 14}
LEARNER_STREAM_REFUSED = {"error": {"grpc_code": 14, "http_code": 503,
                                    "message": "etcdserver: rpc not supported for learner",
                                    "http_status": "Service Unavailable"}}


def _wait_knows_it_is_learner(cluster: Cluster, name: str) -> None:
    """Until the member has applied the entry that added it (before that etcd does not refuse either)."""
    wait_for(f"{name} to know it is a learner", lambda: cluster.status(name).get("isLearner") is True,
             timeout=30)


def test_learner_serves_only_status_and_serializable_reads(cluster_factory: ClusterFactory,
                                                           seed: int) -> None:
    """etcd 3.4 (checked against /usr/bin/etcd with `member add --learner`): a learner refuses every
    RPC but Status and serializable Range with 503, streams with grpc-gateway's stream error body."""
    cluster = cluster_factory(1, seed=seed)
    voter = cluster.leader()
    put(cluster.http, cluster.url(voter), "learn/k", "v")
    learner = cluster.add_member("n2", via=voter)
    cluster.wait_serving("n2")
    _wait_knows_it_is_learner(cluster, "n2")
    url = cluster.url("n2")
    key = b64("learn/k")

    # Served: serializable range (once the learner has caught up), status.
    wait_for("the learner to replicate the key", lambda: get(cluster.http, url, "learn/k", serializable=True)
             == "v", timeout=30)
    status = rpc(cluster.http, url, "/v3/maintenance/status", {})
    assert status["isLearner"] is True

    refused = [
        ("/v3/kv/put", {"key": key, "value": b64("x")}),
        ("/v3/kv/put", {}),  # refused before it is validated
        ("/v3/kv/range", {"key": key}),
        ("/v3/kv/range", {"key": key, "serializable": False}),
        ("/v3/kv/deleterange", {"key": key}),
        ("/v3/kv/txn", {}),
        ("/v3/kv/txn", {"success": [{"request_range": {"key": key, "serializable": True}}]}),
        ("/v3/kv/txn", {"success": [{"request_put": {"key": key, "value": b64("x")}}]}),
        ("/v3/kv/compaction", {"revision": "1"}),
        ("/v3/lease/grant", {"TTL": "10"}),
        ("/v3/lease/revoke", {"ID": "1"}),
        ("/v3/kv/lease/revoke", {"ID": "1"}),
        ("/v3/lease/timetolive", {"ID": "1"}),
        ("/v3/lease/leases", {}),
        ("/v3/cluster/member/list", {}),
        ("/v3/cluster/member/add", {"peerURLs": ["http://127.0.0.1:1"]}),
        ("/v3/cluster/member/promote", {"ID": str(learner.id)}),
        ("/v3/maintenance/transfer-leadership", {"targetID": str(learner.id)}),
    ]
    for path, body in refused:
        resp = cluster.http.post(f"{url}{path}", json=body)
        assert (resp.status_code, resp.json()) == (503, LEARNER_REFUSED), (path, body)
    for path, body in [("/v3/watch", {"create_request": {"key": key}}), ("/v3/lease/keepalive", {"ID": "1"})]:
        resp = cluster.http.post(f"{url}{path}", json=body)
        assert (resp.status_code, resp.json()) == (503, LEARNER_STREAM_REFUSED), path
    # etcdpy's own watch transports refuse the same way: SSE as a unary error, WebSocket as etcd's
    # WebSocket proxy relays the refused stream.
    sse = cluster.http.get(f"{url}/watch/sse", params={"key": "learn/k"})
    assert (sse.status_code, sse.json()) == (503, LEARNER_REFUSED)
    with connect(f"ws://{url.removeprefix('http://')}/v3/watch", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5)) == LEARNER_STREAM_REFUSED  # then the server closes
    # A body the gateway cannot decode gets its decode error first, as from etcd.
    bad = cluster.http.post(f"{url}/v3/kv/put", content=b'{"key": 5}')
    assert (bad.status_code, bad.json()["code"]) == (400, 3)
    served = rpc(cluster.http, url, "/v3/kv/range", {"key": key, "serializable": True})
    assert [unb64(kv["value"]) for kv in served["kvs"]] == ["v"]

    # Promoted, it serves everything.
    cluster.promote_when_in_sync(learner.id, timeout=30)
    wait_for("the promoted member to take writes", lambda: put(cluster.http, url, "learn/k", "w") > 0,
             timeout=30)
    assert get(cluster.http, url, "learn/k") == "w"


def test_removed_member_shuts_down(cluster_factory: ClusterFactory, seed: int) -> None:
    """A removed member exits, also when the leader's link to it is slow (its sender is busy with a
    previous request when the removal commits and is applied)."""
    cluster = cluster_factory(3, seed=seed)
    leader = cluster.leader()
    victim = random.Random(seed).choice(cluster.followers(leader))
    cluster.net.set_link(leader, victim, delay=0.3)
    cluster.member_call(leader, "remove", {"ID": str(cluster.members[victim].id)})
    proc = cluster.members[victim].proc
    assert proc is not None
    wait_for(f"the removed {victim} to exit", lambda: proc.poll() is not None, timeout=5)


def test_transfer_leadership_must_go_to_the_leader(cluster_factory: ClusterFactory, seed: int) -> None:
    cluster = cluster_factory(3, seed=seed)
    leader = cluster.leader()
    follower, other = cluster.followers(leader)
    with pytest.raises(RpcError) as refused:
        rpc(cluster.http, cluster.url(follower), "/v3/maintenance/transfer-leadership",
            {"targetID": str(cluster.members[other].id)})
    assert refused.value.message == "etcdserver: not leader"
    rpc(cluster.http, cluster.url(leader), "/v3/maintenance/transfer-leadership",
        {"targetID": str(cluster.members[other].id)}, timeout=10.0)
    assert cluster.wait_leader() == other
    with cluster.client() as client:
        put(client, cluster.url(leader), "moved", "yes")
        assert get(client, cluster.url(other), "moved") == "yes"
