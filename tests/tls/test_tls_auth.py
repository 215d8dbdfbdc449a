"""With --client-cert-auth and auth enabled, the verified client certificate's CN names the user of a
request that carries no token (etcd's AuthInfoFromTLS; answers checked with etcdctl against etcd 3.4
over gRPC: an unknown CN or a CN without the permission gets "permission denied", a token wins over
the certificate). etcd 3.4's own JSON gateway refuses such requests instead (see ARCHITECTURE.md, TLS).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.servers import Server
from tests.tls.conftest import Start
from tests.tls.test_tls_client import client_flags
from tests.tls_certs import TLSFiles

DENIED = {"error": "etcdserver: permission denied", "message": "etcdserver: permission denied", "code": 7}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def call(client: httpx.Client, member: Server, path: str, body: dict[str, Any],
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": token} if token is not None else {}
    resp = client.post(f"{member.url}{path}", json=body, headers=headers)
    return resp.status_code, resp.json()


@pytest.fixture
def secured(start: Start, certs: TLSFiles) -> Iterator[Server]:
    """A member with client-cert auth and auth enabled: root (password pw), alice may read `a` only."""
    with certs.client("root") as root:
        member = start(client_flags(certs), ready=root)
        setup: list[tuple[str, dict[str, Any]]] = [
            ("/v3/auth/user/add", {"name": "root", "password": "pw"}),
            ("/v3/auth/role/add", {"name": "root"}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/user/add", {"name": "alice", "password": "pw"}),
            ("/v3/auth/role/add", {"name": "reader"}),
            ("/v3/auth/role/grant", {"name": "reader", "perm": {"permType": "READ", "key": b64("a")}}),
            ("/v3/auth/user/grant", {"user": "alice", "role": "reader"}),
            ("/v3/kv/put", {"key": b64("a"), "value": b64("1")}),
            ("/v3/auth/enable", {}),
        ]
        for path, body in setup:
            status, answer = call(root, member, path, body)
            assert status == 200, (path, answer)
    yield member


def test_the_certificate_cn_is_the_user_without_a_token(secured: Server, certs: TLSFiles) -> None:
    with certs.client("root") as root:  # CN=root: the root user, admin
        assert call(root, secured, "/v3/kv/put", {"key": b64("b"), "value": b64("2")})[0] == 200
        assert call(root, secured, "/v3/auth/user/list", {})[1]["users"] == ["alice", "root"]
    with certs.client("alice") as alice:  # CN=alice: may read `a`, nothing else
        status, answer = call(alice, secured, "/v3/kv/range", {"key": b64("a")})
        assert status == 200 and answer["kvs"][0]["value"] == b64("1")
        assert call(alice, secured, "/v3/kv/put", {"key": b64("a"), "value": b64("x")}) == (403, DENIED)
        assert call(alice, secured, "/v3/kv/range", {"key": b64("b")}) == (403, DENIED)
        assert call(alice, secured, "/v3/auth/user/list", {}) == (403, DENIED)
        assert call(alice, secured, "/v3/lease/grant", {"TTL": 10})[0] == 200
    with certs.client("mallory") as mallory:  # a CN naming no user
        assert call(mallory, secured, "/v3/kv/range", {"key": b64("a")}) == (403, DENIED)


def test_a_token_wins_over_the_certificate(secured: Server, certs: TLSFiles) -> None:
    with certs.client("alice") as alice:
        status, answer = call(alice, secured, "/v3/auth/authenticate", {"name": "root", "password": "pw"})
        assert status == 200
        put = {"key": b64("a"), "value": b64("by-root")}
        assert call(alice, secured, "/v3/kv/put", put, token=answer["token"])[0] == 200
        status, answer = call(alice, secured, "/v3/kv/put", put, token="not-a-token")
        assert (status, answer["message"]) == (401, "etcdserver: invalid auth token")


def test_a_watch_stream_runs_as_the_certificate_cn(secured: Server, certs: TLSFiles) -> None:
    with certs.client("alice") as alice:
        for key, refused in (("b", True), ("a", False)):
            body = orjson.dumps({"create_request": {"key": b64(key)}})
            with alice.stream("POST", f"{secured.url}/v3/watch", content=body) as resp:
                first = orjson.loads(next(resp.iter_lines()))["result"]
            assert first.get("created") is True
            assert bool(first.get("canceled")) is refused, first
            if refused:
                assert "permission denied" in first["cancel_reason"]
