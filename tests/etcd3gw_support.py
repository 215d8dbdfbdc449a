"""etcd3gw against either server: one place that starts the server and builds a clean client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from etcd3gw.client import Etcd3Client

from tests.servers import Server, start_etcd, start_etcdpy


@contextmanager
def running(kind: str, tmp: Path) -> Iterator[Server]:
    srv = start_etcdpy(tmp) if kind == "etcdpy" else start_etcd(tmp)
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def clean_client(server: Server, timeout: float) -> Iterator[Etcd3Client]:
    """A client on an emptied keyspace, so every test starts from nothing."""
    parts = urlsplit(server.url)
    c = Etcd3Client(host=parts.hostname or "127.0.0.1", port=parts.port or 2379, protocol="http",
                    timeout=timeout)
    c.delete("\0", range_end="\0")
    try:
        yield c
    finally:
        c.session.close()
