"""Fixtures for the differential gateway conformance suite.

Run it:      pytest tests/conformance
Validate it: CONFORMANCE_TARGET=etcd pytest tests/conformance

By default the ``etcdpy`` fixture starts our server (``python -m app``). With
``CONFORMANCE_TARGET=etcd`` it starts a second real etcd instead, so the suite compares etcd with
etcd: every case must then pass, which shows that the harness and its normalisation (ids, raft term,
revisions relative to a per-case baseline) do not hide or invent differences.

One server of each kind per session; each case starts by deleting the whole keyspace on both servers
(see harness.py), which keeps cases independent without paying a server start per case.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.conformance.harness import Target
from tests.servers import Server, start_etcd, start_etcdpy

# etcd answers every case step in milliseconds; a hung candidate should not stall the suite for long.
CLIENT_TIMEOUT_S = 10.0


def candidate_is_etcd() -> bool:
    return os.environ.get("CONFORMANCE_TARGET", "etcdpy") == "etcd"


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def etcdpy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("etcdpy")
    server = start_etcd(tmp, name="default") if candidate_is_etcd() else start_etcdpy(tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reference(etcd: Server) -> Iterator[Target]:
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
        yield Target("etcd", etcd.url, client)


@pytest.fixture(scope="session")
def candidate(etcdpy: Server) -> Iterator[Target]:
    name = "etcd#2" if candidate_is_etcd() else "etcdpy"
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
        yield Target(name, etcdpy.url, client)
