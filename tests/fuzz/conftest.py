"""Fresh real etcd and etcdpy for each fuzz test module: servers that have only ever seen the same
request sequence stay in lockstep even where an answer depends on history (compaction, lease IDs)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conformance.harness import Target
from tests.servers import start_etcd, start_etcdpy

CLIENT_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def fuzz_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Target]]:
    etcd = start_etcd(tmp_path_factory.mktemp("fuzz-etcd"))
    try:
        etcdpy = start_etcdpy(tmp_path_factory.mktemp("fuzz-etcdpy"))
        try:
            with httpx.Client(timeout=CLIENT_TIMEOUT_S) as a, httpx.Client(timeout=CLIENT_TIMEOUT_S) as b:
                yield Target("etcd", etcd.url, a), Target("etcdpy", etcdpy.url, b)
        finally:
            etcdpy.stop()
    finally:
        etcd.stop()
