"""Servers for the auth tests: one real etcd and one etcdpy per module, plus a JWT-configured etcdpy.

Auth state (enabled, users, roles) is global to a server, so these are not the conformance suite's
shared servers; each scenario resets auth, users, roles and keys first (scenario.Runner.reset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.scenario import Runner
from tests.servers import Server, start_etcd, start_etcdpy


@pytest.fixture(scope="module")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_etcd(tmp_path_factory.mktemp("etcd-auth"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def etcdpy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_etcdpy(tmp_path_factory.mktemp("etcdpy-auth"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as c:
        yield c


@pytest.fixture
def etcd(etcd_server: Server, client: httpx.Client) -> Runner:
    return Runner(etcd_server.url, client)


@pytest.fixture
def etcdpy(etcdpy_server: Server, client: httpx.Client) -> Runner:
    runner = Runner(etcdpy_server.url, client)
    runner.reset()
    return runner


def write_rsa_pair(directory: Path, name: str) -> tuple[Path, Path, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = directory / f"{name}.key"
    pub = directory / f"{name}.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub, key


@pytest.fixture(scope="module")
def jwt_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, rsa.RSAPrivateKey]:
    return write_rsa_pair(tmp_path_factory.mktemp("jwt-keys"), "server")


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory,
               jwt_keys: tuple[Path, Path, rsa.RSAPrivateKey]) -> Iterator[Server]:
    priv, pub, _ = jwt_keys
    spec = f"jwt,pub-key={pub},priv-key={priv},sign-method=RS256,ttl=5m"
    server = start_etcdpy(tmp_path_factory.mktemp("etcdpy-jwt"), extra=["--auth-token", spec])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jwt_etcdpy(jwt_server: Server, client: httpx.Client) -> Runner:
    runner = Runner(jwt_server.url, client)
    runner.reset()
    return runner
