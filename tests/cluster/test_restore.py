"""Backup and restore of a whole cluster: one snapshot saved from a member of cluster A, restored into
every member of a new 3-member cluster B, gives a working cluster with A's keys, revisions and leases
under a new cluster id and B's membership."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from etcdpy.app import backup
from tests.cluster.conftest import ClusterFactory
from tests.cluster.harness import Cluster, Member, b64, rpc, wait_for

LEASE = 4242


def _state(client: httpx.Client, url: str) -> dict[str, Any]:
    kvs = rpc(client, url, "/v3/kv/range", {"key": "AA==", "range_end": "AA=="})
    leases = rpc(client, url, "/v3/lease/leases", {})
    ttl = rpc(client, url, "/v3/lease/timetolive", {"ID": LEASE, "keys": True})
    return {"revision": kvs["header"]["revision"], "kvs": kvs.get("kvs", []),
            "leases": sorted(lease["ID"] for lease in leases.get("leases", [])),
            "lease_keys": ttl.get("keys", []), "granted": ttl.get("grantedTTL")}


def test_restore_round_trip_into_new_three_member_cluster(cluster_factory: ClusterFactory,
                                                          tmp_path: Path) -> None:
    a = cluster_factory(3)
    client = a.http
    leader = a.url(a.leader())
    rpc(client, leader, "/v3/lease/grant", {"ID": LEASE, "TTL": 600})
    for i in range(20):
        rpc(client, leader, "/v3/kv/put", {"key": b64(f"k{i % 7}"), "value": b64(f"v{i}")})
    rpc(client, leader, "/v3/kv/put", {"key": b64("leased"), "value": b64("x"), "lease": LEASE})
    rpc(client, leader, "/v3/kv/deleterange", {"key": b64("k6")})
    before = _state(client, leader)
    cluster_a = rpc(client, leader, "/v3/maintenance/status", {})["header"]["cluster_id"]

    snap = str(tmp_path / "backup.snap")
    backup.save(a.url(a.followers()[0]), snap)  # any member: a follower's copy is as good
    status = backup.status(snap)
    assert status.revision == int(before["revision"])

    b = Cluster(tmp_path / "restored", 3, token="restored-cluster")
    try:
        def restore_all(members: dict[str, Member], initial: str) -> None:
            for m in members.values():
                backup.restore(snap, name=m.name, initial_cluster=initial,
                               initial_advertise_peer_urls=[m.peer_url], initial_cluster_token=b.token,
                               data_dir=str(m.data_dir))

        b.start(3, prepare=restore_all)
        for name in b.members:
            after = _state(b.http, b.url(name))
            assert after == before, name
        leader_b = b.url(b.leader())
        header = rpc(b.http, leader_b, "/v3/maintenance/status", {})["header"]
        assert header["cluster_id"] != cluster_a
        listed = rpc(b.http, leader_b, "/v3/cluster/member/list", {})["members"]
        assert sorted(m["name"] for m in listed) == ["n1", "n2", "n3"]
        assert sorted(int(m["ID"]) for m in listed) == sorted(m.id for m in b.members.values())

        # The restored cluster takes writes, and every member ends with the same content (hashkv).
        put = rpc(b.http, leader_b, "/v3/kv/put", {"key": b64("new"), "value": b64("1")})
        assert int(put["header"]["revision"]) == int(before["revision"]) + 1

        def same_hash() -> set[int] | None:
            hashes = {rpc(b.http, b.url(n), "/v3/maintenance/hashkv", {"revision": put["header"]["revision"]})
                      ["hash"] for n in b.members}
            return hashes if len(hashes) == 1 else None

        wait_for("equal hashkv on every restored member", same_hash, timeout=10)
    finally:
        b.close()
