"""Watch and leases on a 3-member cluster with member kills.

- Every watcher on a surviving member sees every revision of its range exactly once, in order, across
  a leader kill; a watcher opened after the killed member restarts catches up over the whole history.
- Leases: keepalive through a follower is renewed by the leader; after the leader is killed, the new
  leader gives the lease a fresh TTL (etcd's behaviour) and the attached key survives the failover;
  without keepalives it then expires and its key is deleted.
"""

from __future__ import annotations

import json
import time

import httpx

from tests.cluster.conftest import ClusterFactory
from tests.cluster.harness import b64, put, rpc, wait_for
from tests.cluster.workload import Writer
from tests.stream_client import StreamConn

TIMEOUT_S = 20.0


def _revisions(conn: StreamConn, until: int) -> list[int]:
    revs: list[int] = []
    while not revs or revs[-1] < until:
        result = json.loads(conn.read_line(TIMEOUT_S))["result"]
        assert not result.get("canceled"), result
        revs.extend(int(e["kv"]["mod_revision"]) for e in result.get("events", []))
    return revs


def _watch(url: str, prefix: str, start: int = 0) -> StreamConn:
    conn = StreamConn(url, timeout=TIMEOUT_S)
    conn.send({"create_request": {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0"),
                                  "start_revision": start}})
    assert json.loads(conn.read_line(TIMEOUT_S))["result"]["created"]
    return conn


def test_watchers_see_every_revision_once_across_a_leader_kill(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(3)
    prefix = "wk/"
    first = put(cluster.http, cluster.url(cluster.leader()), prefix + "first", "0", timeout=5.0)
    watchers = {name: _watch(cluster.url(name), prefix, first) for name in cluster.members}
    with Writer(cluster, prefix, targets=cluster.live, seed=1) as writer:
        writer.wait_acks(40)
        leader = cluster.leader()
        cluster.kill(leader)
        others = [n for n in cluster.members if n != leader]
        cluster.wait_leader(others, exclude=[leader], timeout=10 * cluster.election_s + 5)
        writer.wait_acks(40)
        cluster.start_member(leader)
        cluster.wait_healthy(leader)
        writer.wait_acks(20)
    final = wait_for("a final put", lambda: _try_put(cluster, prefix + "last"), TIMEOUT_S)
    expected = list(range(first, final + 1))  # every revision since `first` is a write under the prefix
    for name, conn in watchers.items():
        if name == leader:
            conn.close()  # its member was killed under it
            continue
        try:
            assert _revisions(conn, final) == expected, name
        finally:
            conn.close()
    late = _watch(cluster.url(leader), prefix, first)  # on the restarted member, from history
    try:
        assert _revisions(late, final) == expected
    finally:
        late.close()


def _try_put(cluster: object, key: str) -> int | None:
    for name in cluster.live():  # type: ignore[attr-defined]
        try:
            return put(cluster.http, cluster.url(name), key, "x", timeout=2.0)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any member will do
            continue
    return None


def test_lease_keepalive_via_follower_and_failover(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(3)
    leader = cluster.leader()
    follower = next(n for n in cluster.members if n != leader)
    http: httpx.Client = cluster.http
    furl = cluster.url(follower)
    rpc(http, furl, "/v3/lease/grant", {"ID": 77, "TTL": 3}, timeout=5.0)
    rpc(http, furl, "/v3/kv/put", {"key": b64("lease/k"), "value": b64("v"), "lease": 77}, timeout=5.0)
    t_end = time.monotonic() + 5.0  # longer than the TTL: only the keepalives keep it
    while time.monotonic() < t_end:
        answer = rpc(http, furl, "/v3/lease/keepalive", {"ID": 77}, timeout=5.0)
        assert answer["result"]["TTL"] == "3"
        time.sleep(0.5)
    ttl = rpc(http, furl, "/v3/lease/timetolive", {"ID": 77, "keys": True}, timeout=5.0)
    assert ttl["grantedTTL"] == "3" and ttl["keys"] == [b64("lease/k")]
    rpc(http, furl, "/v3/lease/keepalive", {"ID": 77}, timeout=5.0)
    cluster.kill(leader)
    others = [n for n in cluster.members if n != leader]
    new_leader = cluster.wait_leader(others, exclude=[leader], timeout=10 * cluster.election_s + 5)
    nurl = cluster.url(new_leader)
    # The new leader restarted the TTL: the key is still there right after the failover...
    assert "kvs" in rpc(http, nurl, "/v3/kv/range", {"key": b64("lease/k")}, timeout=5.0)
    # ...and without keepalives the lease then expires on the new leader's clock.
    wait_for("the lease to expire", lambda: "kvs" not in rpc(
        http, nurl, "/v3/kv/range", {"key": b64("lease/k")}, timeout=5.0) or None, TIMEOUT_S)
    assert rpc(http, nurl, "/v3/lease/timetolive", {"ID": 77}, timeout=5.0)["TTL"] == "-1"
