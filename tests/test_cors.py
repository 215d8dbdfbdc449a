"""`--cors` with a list of origins applies to every answer, as etcd's: compared with real etcd 3.4."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Server, start_etcd, start_etcdpy

CORS = ["--cors", "http://a.example:80"]
ORIGINS = ["http://a.example:80", "http://b.example:80", None]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    etcd = start_etcd(tmp_path_factory.mktemp("etcd"), extra=CORS)
    try:
        etcdpy = start_etcdpy(tmp_path_factory.mktemp("etcdpy"), extra=CORS)
        try:
            yield {"etcd": etcd, "etcdpy": etcdpy}
        finally:
            etcdpy.stop()
    finally:
        etcd.stop()


def _cors_headers(url: str, origin: str | None) -> list[tuple[str, int, dict[str, str]]]:
    headers = {"Origin": origin} if origin else {}
    answers = [
        ("range", httpx.post(url + "/v3/kv/range", content=b'{"key":"YQ=="}', headers=headers)),
        ("bad request", httpx.post(url + "/v3/kv/range", content=b"{", headers=headers)),
        ("preflight", httpx.options(url + "/v3/kv/put",
                                    headers={**headers, "Access-Control-Request-Method": "POST"})),
        ("health", httpx.get(url + "/health", headers=headers)),
    ]
    return [(what, resp.status_code,
             {k: v for k, v in resp.headers.items() if k.lower().startswith("access-control-")})
            for what, resp in answers]


@pytest.mark.parametrize("origin", ORIGINS)
def test_listed_origins_get_cors_headers_and_others_none(servers: dict[str, Server],
                                                         origin: str | None) -> None:
    etcd, ours = (_cors_headers(servers[name].url, origin) for name in ("etcd", "etcdpy"))
    assert ours == etcd
    allowed = origin == "http://a.example:80"
    assert all(bool(h) == allowed for _, _, h in etcd)
    if allowed:
        assert all(h["access-control-allow-origin"] == origin for _, _, h in etcd)
