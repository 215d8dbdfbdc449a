"""WebSocket watch on `/v3/watch` (gateway-api.md §6.6), against etcdpy and real etcd, compared.

Full duplex on one connection: create two watches, see an event on each, cancel one, ask for progress,
and see that only the remaining watch gets later events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.conformance.harness import b64, normalise
from tests.servers import Server, start_etcd, start_etcdpy


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        started["etcd"] = start_etcd(tmp_path_factory.mktemp("ws-etcd"))
        started["etcdpy"] = start_etcdpy(tmp_path_factory.mktemp("ws-etcdpy"))
        yield started
    finally:
        for server in started.values():
            server.stop()


def scenario(url: str) -> list[bytes]:
    base = int(httpx.post(f"{url}/v3/kv/deleterange", json={"key": "AA==", "range_end": "AA=="})
               .json()["header"]["revision"])
    out: list[bytes] = []
    ws_url = url.replace("http://", "ws://") + "/v3/watch"
    with connect(ws_url) as ws:

        def recv() -> None:
            msg = ws.recv(timeout=10)
            assert isinstance(msg, str) and "\n" not in msg  # one text frame = one message, no newline
            out.append(normalise(msg.encode(), base))

        ws.send(json.dumps({"create_request": {"key": b64("ws/a")}}))
        ws.send(json.dumps({"create_request": {"key": b64("ws/"), "range_end": b64("ws0"), "prev_kv": True}}))
        recv()
        recv()
        httpx.post(f"{url}/v3/kv/put", json={"key": b64("ws/a"), "value": b64("1")})
        recv()
        recv()
        out[-2:] = sorted(out[-2:])  # two watchers, one revision: etcd sends them in Go map order
        ws.send(json.dumps({"cancel_request": {"watch_id": 1}}))
        recv()
        ws.send(json.dumps({"progress_request": {}}))
        recv()
        httpx.post(f"{url}/v3/kv/put", json={"key": b64("ws/b"), "value": b64("2")})  # only watch 1 wanted it
        httpx.post(f"{url}/v3/kv/put", json={"key": b64("ws/a"), "value": b64("3")})
        recv()
        ws.send(json.dumps({"cancel_request": {"watch_id": 1}}))  # already gone: no answer
        ws.send(json.dumps({"progress_request": {}}))
        recv()
    return out


def test_websocket_watch_matches_etcd(servers: dict[str, Server]) -> None:
    ref = scenario(servers["etcd"].url)
    got = scenario(servers["etcdpy"].url)
    assert len(ref) == 8
    assert got == ref


def test_websocket_messages(servers: dict[str, Server]) -> None:
    got = [json.loads(m)["result"] for m in scenario(servers["etcdpy"].url)]
    assert got[0].get("created") and got[1]["watch_id"] == "1" and got[1]["created"]
    assert got[4] == {"header": got[4]["header"], "watch_id": "1", "canceled": True}
    assert got[5]["watch_id"] == "-1"
    assert got[6]["events"][0]["kv"]["value"] == b64("3") and "watch_id" not in got[6]


__all__ = ["Path"]
