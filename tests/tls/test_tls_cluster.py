"""A 3-member cluster with TLS on the client and peer links (client-certificate auth on both): Raft
traffic, leader forwarding and the peer listener's refusals, on real processes.

The whole cluster suite runs over TLS with ETCDPY_CLUSTER_TLS=1 (tests/cluster/harness.py); this module
keeps the TLS-specific checks in every run.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import pytest

from tests.cluster.harness import Cluster, get, put, rpc, wait_for
from tests.tls.test_tls_client import raw_answer
from tests.tls_certs import make_tls


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    seed = int(os.environ.get("CLUSTER_SEED", random.randrange(2**32)))
    c = Cluster(tmp_path / "cluster", 3, seed=seed, tls=make_tls(tmp_path / "certs"))
    try:
        c.start(3)
        yield c
    except BaseException:
        print(f"\n==== member logs (seed {seed}) ====\n{c.logs()}")
        raise
    finally:
        c.close()


def test_writes_replicate_over_peer_tls_and_survive_a_leader_kill(cluster: Cluster) -> None:
    members = rpc(cluster.http, cluster.url("n1"), "/v3/cluster/member/list", {})["members"]
    assert all(u.startswith("https://") for m in members for u in m["peerURLs"])
    for i, name in enumerate(cluster.members):
        put(cluster.http, cluster.url(name), f"tls/{i}", name)
    data = cluster.wait_converged(prefix="tls/")
    assert {k: v[0] for k, v in data.items()} == {"tls/0": "n1", "tls/1": "n2", "tls/2": "n3"}

    old = cluster.leader()
    cluster.kill(old)
    new = cluster.wait_leader(exclude=[old])
    put(cluster.http, cluster.url(new), "tls/after", "kill")
    for name in cluster.followers(new):
        assert get(cluster.http, cluster.url(name), "tls/after") == "kill"
    cluster.start_member(old)
    cluster.wait_converged(prefix="tls/")


def test_lease_keepalive_on_a_follower_is_forwarded_to_the_leader_over_tls(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = cluster.followers(leader)[0]
    lease = rpc(cluster.http, cluster.url(leader), "/v3/lease/grant", {"TTL": 30})["ID"]
    answer = rpc(cluster.http, cluster.url(follower), "/v3/lease/keepalive", {"ID": lease})
    assert int(answer["result"]["TTL"]) == 30
    ttl = rpc(cluster.http, cluster.url(follower), "/v3/lease/timetolive", {"ID": lease})
    assert 0 < int(ttl["TTL"]) <= 30


def test_a_peer_url_refuses_a_caller_without_a_peer_certificate(cluster: Cluster) -> None:
    assert cluster.tls is not None
    member = cluster.members["n1"]
    peer = f"https://127.0.0.1:{member.peer_port}"
    with cluster.tls.client(None) as anonymous, pytest.raises(httpx.HTTPError):
        anonymous.get(f"{peer}/raft/members")
    assert raw_answer(peer.replace("https", "http"), b"GET /raft/members HTTP/1.1\r\n\r\n") == b""
    # The same request with a certificate of the cluster's CA is served.
    with cluster.tls.client("n2") as client:
        resp = client.get(f"{peer}/raft/members")
    assert resp.status_code == 200
    assert len(msgpack.unpackb(resp.content)["members"]) == 3
    # Raft between the members kept working all along.
    wait_for("a write", lambda: put(cluster.http, cluster.url("n1"), "peer/after", "x"), timeout=10)
