"""A Python client generated from openapi/openapi.json with `openapi-python-client`, as a new user
would make it, against a live etcdpy: put, range, txn, lease grant/keepalive/timetolive/revoke, and a
watch through sdk/python/etcdpy_watch.py (a generated call cannot read an endless stream)."""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.servers import Server, start_etcdpy

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "openapi.json"
HELPER_DIR = ROOT / "sdk" / "python"
PACKAGE = "etcdpy_client"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    out = Path(tmp_path_factory.mktemp("sdk"))
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run([str(generator), "generate", "--path", str(SPEC), "--meta", "none",
                           "--output-path", str(out / PACKAGE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path[:0] = [str(out), str(HELPER_DIR)]
    try:
        names = ["client", "models", "api.kv.kv_put", "api.kv.kv_range", "api.kv.kv_txn",
                 "api.lease.lease_grant", "api.lease.lease_keepalive", "api.lease.lease_timetolive",
                 "api.lease.lease_revoke", "api.maintenance.maintenance_status"]
        mods = {n: importlib.import_module(f"{PACKAGE}.{n}") for n in names}
        mods["watch"] = importlib.import_module("etcdpy_watch")
        yield mods
    finally:
        for path in (str(out), str(HELPER_DIR)):
            sys.path.remove(path)
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(Path(tmp_path_factory.mktemp("sdk-server")))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def client(sdk: dict[str, ModuleType], live: Server) -> Any:
    return sdk["client"].Client(base_url=live.url, raise_on_unexpected_status=True)


def test_put_range_round_trip_binary(sdk: dict[str, ModuleType], client: Any) -> None:
    m = sdk["models"]
    value = b"\xff\x00binary\x80"
    put = sdk["api.kv.kv_put"].sync(client=client, body=m.PutRequest(key=_b64(b"sdk/a"), value=_b64(value)))
    assert isinstance(put, m.PutResponse)
    rev = int(put.header.revision)
    got = sdk["api.kv.kv_range"].sync(client=client, body=m.RangeRequest(key=_b64(b"sdk/a")))
    assert isinstance(got, m.RangeResponse)
    assert got.count == "1"
    assert base64.b64decode(got.kvs[0].value) == value
    assert int(got.kvs[0].mod_revision) == rev
    # Enums by name work both ways.
    desc = sdk["api.kv.kv_range"].sync(client=client, body=m.RangeRequest(
        key=_b64(b"sdk/"), range_end=_b64(b"sdk0"), sort_order=m.SortOrder.DESCEND))
    assert isinstance(desc, m.RangeResponse) and desc.kvs[0].key == _b64(b"sdk/a")


def test_errors_decode_as_status(sdk: dict[str, ModuleType], client: Any) -> None:
    m = sdk["models"]
    err = sdk["api.kv.kv_range"].sync(client=client, body=m.RangeRequest(key=_b64(b"x"), revision="999999"))
    assert isinstance(err, m.Status)
    assert err.message == "etcdserver: mvcc: required revision is a future revision" and err.code == 11


def test_txn_compare_and_swap(sdk: dict[str, ModuleType], client: Any) -> None:
    m = sdk["models"]
    key = _b64(b"sdk/cas")
    sdk["api.kv.kv_put"].sync(client=client, body=m.PutRequest(key=key, value=_b64(b"v1")))

    def cas(expected: bytes, new: bytes) -> Any:
        return sdk["api.kv.kv_txn"].sync(client=client, body=m.TxnRequest(
            compare=[m.Compare(result=m.CompareResult.EQUAL, target=m.CompareTarget.VALUE, key=key,
                               value=_b64(expected))],
            success=[m.RequestOp(request_put=m.PutRequest(key=key, value=_b64(new)))],
            failure=[m.RequestOp(request_range=m.RangeRequest(key=key))]))

    ok = cas(b"v1", b"v2")
    assert isinstance(ok, m.TxnResponse) and ok.succeeded is True
    stale = cas(b"v1", b"v3")
    assert not stale.succeeded  # etcd omits `false`: the model holds UNSET, which is falsy
    current = stale.responses[0].response_range.kvs[0].value
    assert base64.b64decode(current) == b"v2"


def test_lease_lifecycle(sdk: dict[str, ModuleType], client: Any) -> None:
    m = sdk["models"]
    grant = sdk["api.lease.lease_grant"].sync(client=client, body=m.LeaseGrantRequest(ttl="30"))
    assert isinstance(grant, m.LeaseGrantResponse) and grant.ttl == "30"
    lease_id = grant.id
    sdk["api.kv.kv_put"].sync(client=client, body=m.PutRequest(key=_b64(b"sdk/leased"), value=_b64(b"x"),
                                                               lease=lease_id))
    # One keepalive request: the stream ends with the body, so the generated call returns its one line.
    kept = sdk["api.lease.lease_keepalive"].sync(client=client, body=m.LeaseKeepAliveRequest(id=lease_id))
    assert isinstance(kept, m.LeaseKeepAliveStreamLine) and kept.result.ttl == "30"
    ttl = sdk["api.lease.lease_timetolive"].sync(client=client, body=m.LeaseTimeToLiveRequest(
        id=lease_id, keys=True))
    assert isinstance(ttl, m.LeaseTimeToLiveResponse) and ttl.keys == [_b64(b"sdk/leased")]
    sdk["api.lease.lease_revoke"].sync(client=client, body=m.LeaseRevokeRequest(id=lease_id))
    gone = sdk["api.kv.kv_range"].sync(client=client, body=m.RangeRequest(key=_b64(b"sdk/leased")))
    assert not gone.kvs


def test_watch_helper_streams_events(sdk: dict[str, ModuleType], client: Any, live: Server) -> None:
    m = sdk["models"]
    stream = sdk["watch"].watch(client, {"key": _b64(b"sdk/w")}, m.WatchResponse.from_dict, timeout=10.0)
    created = next(stream)
    assert created.created is True
    writer = threading.Thread(target=lambda: httpx.post(
        f"{live.url}/v3/kv/put", json={"key": _b64(b"sdk/w"), "value": _b64(b"hi")}, timeout=10.0))
    writer.start()
    events = next(stream)
    writer.join()
    stream.close()
    assert events.events[0].kv.key == _b64(b"sdk/w") and events.events[0].kv.value == _b64(b"hi")
