"""Auth across members: a token works on every member, and a revoke applied through one member is
honoured by every other at once (the applier re-checks each write against the auth state at its
index; reads are checked against the member's own, already applied, state)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.cluster.conftest import ClusterFactory


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def call(client: httpx.Client, url: str, path: str, body: dict[str, Any],
         token: str | None = None) -> httpx.Response:
    headers = {"Authorization": token} if token else {}
    return client.post(url + path, json=body, headers=headers, timeout=10)


def test_tokens_and_revokes_reach_every_member(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(3)
    a, b, c = (cluster.url(n) for n in cluster.members)
    http = cluster.http
    for path, body in (("/v3/auth/user/add", {"name": "root", "password": "toor"}),
                       ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                       ("/v3/auth/user/add", {"name": "u1", "password": "p1"}),
                       ("/v3/auth/role/add", {"name": "r1"}),
                       ("/v3/auth/role/grant", {"name": "r1", "perm": {
                           "permType": "READWRITE", "key": b64("k"), "range_end": b64("l")}}),
                       ("/v3/auth/user/grant", {"user": "u1", "role": "r1"}),
                       ("/v3/auth/enable", {})):
        assert call(http, a, path, body).status_code == 200, path
    resp = call(http, a, "/v3/auth/authenticate", {"name": "u1", "password": "p1"})
    token = resp.json()["token"]
    root = call(http, b, "/v3/auth/authenticate", {"name": "root", "password": "toor"}).json()["token"]
    # The token member a issued works on b and c at once: every member applies the authenticate entry,
    # and a member that has not yet waits for it, as etcd does.
    for url in (b, c):
        assert call(http, url, "/v3/kv/put", {"key": b64("k1"), "value": b64(url)}, token).status_code == 200
    denied = call(http, c, "/v3/kv/put", {"key": b64("x"), "value": b64("x")}, token)
    assert (denied.status_code, denied.json()["message"]) == (403, "etcdserver: permission denied")
    # Revoked through b: a and c refuse the very next write and read. A member stamps a write with the
    # auth revision it has applied; one that has not applied the revoke yet (its commit reaches it a
    # moment after b answers) stamps the older revision, and the write is refused when applied with
    # etcd's "revision of auth store is old" (etcd 3.4 answers the same in that race; its client then
    # retries). The retry, or the first try on a member already up to date, is denied outright.
    revoke = {"role": "r1", "key": b64("k"), "range_end": b64("l")}
    assert call(http, b, "/v3/auth/role/revoke", revoke, root).status_code == 200
    for url in (a, c):
        put = call(http, url, "/v3/kv/put", {"key": b64("k2"), "value": b64("late")}, token)
        refused = (put.status_code, put.json()["message"])
        if refused == (400, "etcdserver: revision of auth store is old"):
            put = call(http, url, "/v3/kv/put", {"key": b64("k2"), "value": b64("late")}, token)
            refused = (put.status_code, put.json()["message"])
        assert refused == (403, "etcdserver: permission denied")
        read = call(http, url, "/v3/kv/range", {"key": b64("k1")}, token)
        assert read.status_code == 403  # a linearizable read waits for the revoke to be applied
    # Nothing was written by the refused puts, on any member.
    for url in (a, b, c):
        kvs = call(http, url, "/v3/kv/range", {"key": b64("k"), "range_end": b64("l")}, root).json()
        assert [base64.b64decode(kv["key"]) for kv in kvs.get("kvs", [])] == [b"k1"]
