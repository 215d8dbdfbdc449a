"""One member (etcdpy or etcd 3.4) on TLS links, for the TLS tests; certificates from trustme."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import ETCD_BINARY, REPO_ROOT, Server, _launch, _two_free_ports
from tests.tls_certs import TLSFiles, make_tls

Start = Callable[..., Server]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("certs"))


def member_argv(kind: str, name: str, data_dir: Path, client_url: str, peer_url: str,
                extra: list[str]) -> tuple[list[str], dict[str, str]]:
    flags = [
        "--name", name, "--data-dir", str(data_dir),
        "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"{name}={peer_url}", *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    if kind == "etcd":
        return [ETCD_BINARY, *flags], env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "etcdpy.app", *flags], env


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """`start(extra_flags, client_tls=True, peer_tls=False, kind="etcdpy", ready=httpx.Client)`: a member
    whose client (and peer) URLs are https; ready once `ready` (a client able to reach it) gets a
    health answer. Every member is killed when the test ends."""
    started: list[Server] = []

    def launch(extra: list[str], *, client_tls: bool = True, peer_tls: bool = False, kind: str = "etcdpy",
               ready: httpx.Client | None = None) -> Server:
        client_port, peer_port = _two_free_ports()
        client_url = f"{'https' if client_tls else 'http'}://127.0.0.1:{client_port}"
        peer_url = f"{'https' if peer_tls else 'http'}://127.0.0.1:{peer_port}"
        name = f"{kind}{len(started)}"
        data_dir = tmp_path / f"{name}.data"
        argv, env = member_argv(kind, name, data_dir, client_url, peer_url, extra)
        probe_client = ready if ready is not None else httpx.Client(timeout=2.0)

        def probe(_: httpx.Client, url: str) -> bool:
            try:
                return probe_client.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        server = _launch(argv, tmp_path, client_url, data_dir, name, tmp_path / f"{name}.log", probe, env)
        started.append(server)
        return server

    try:
        yield launch
    finally:
        for server in started:
            server.kill()
