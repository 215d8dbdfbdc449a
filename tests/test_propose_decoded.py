"""`Gateway.propose_decoded`, the task-free path for writes a front worker decoded, answers exactly as the
coroutine path (`Gateway.answer_unary`) does: successes, etcd's errors, the quota's alarm; and it
declines, having done nothing, what that path must serve (a token, a deadline, another RPC)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from etcdpy.app.config import parse_args
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.asgi import gateway_routes
from etcdpy.app.gateway.dispatch import Gateway
from etcdpy.app.server.alarms import NOSPACE
from etcdpy.app.server.etcd_server import MAX_APPLY_GAP, EtcdServer

Answer = tuple[int, list[tuple[bytes, bytes]], Any]


def run(tmp_path: Path, scenario: Callable[[EtcdServer, Gateway], Awaitable[None]],
        *flags: str) -> None:
    peer = "http://127.0.0.1:1"  # never dialled: a lone member sends no peer traffic
    cfg = parse_args(["--data-dir", str(tmp_path / "m.etcdpy"), "--listen-peer-urls", peer,
                      "--initial-advertise-peer-urls", peer, *flags])

    async def main() -> None:
        server = EtcdServer(cfg)
        server.start()
        try:
            while not server.node.leader:
                await asyncio.sleep(0.01)
            await scenario(server, Gateway(server, None, gateway_routes()))  # type: ignore[arg-type]
        finally:
            await server.stop()
            server.close()

    asyncio.run(main())


async def fast(gateway: Gateway, path: str, d: dict[str, Any],
               headers: list[tuple[bytes, bytes]] | None = None, task: bool = False) -> Answer | None:
    """The fast path's answer, or None if it declined. Asserts it started no task (but when `task`)."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Answer] = loop.create_future()
    tasks = asyncio.all_tasks()
    body = codec.dumps(d)
    taken = gateway.propose_decoded(path, headers or [], ["127.0.0.1", 1], body,
                                    codec.decode_request(body, "PutRequest" if path.endswith("put")
                                                         else "DeleteRangeRequest"),
                                    lambda *a: answered.set_result(a))
    assert (asyncio.all_tasks() != tasks) == task
    if not taken:
        assert not answered.done()
        return None
    return await asyncio.wait_for(answered, 10)


async def slow(gateway: Gateway, path: str, d: dict[str, Any]) -> Answer:
    body = codec.dumps(d)
    return await gateway.answer_unary(path, [], ["127.0.0.1", 1], body, None)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_puts_and_deletes_answer_as_the_coroutine_path(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        put = {"key": _b64("k"), "value": _b64("v1"), "prev_kv": True}
        a, b = await fast(gateway, "/v3/kv/put", put), await slow(gateway, "/v3/kv/put", put)
        assert a is not None and a[0] == b[0] == 200 and a[1] == b[1]
        # The same answer, one revision apart (the second put's prev_kv is the first's value).
        assert int(b[2]["header"]["revision"]) == int(a[2]["header"]["revision"]) + 1
        assert b[2]["prev_kv"]["value"] == _b64("v1") and "prev_kv" not in a[2]
        delete = {"key": _b64("k"), "prev_kv": True}
        c = await fast(gateway, "/v3/kv/deleterange", delete)
        assert c is not None and c[0] == 200 and c[2]["deleted"] == "1"
        assert c[2]["prev_kvs"][0]["mod_revision"] == b[2]["header"]["revision"]
        assert server.store.get(b"k") is None
        stats = server.metrics.requests.method("/v3/kv/put")
        assert stats.started >= 2

    run(tmp_path, scenario)


def test_errors_answer_as_the_coroutine_path(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        too_large = {"key": _b64("k"), "value": _b64("v" * 2000)}
        a, b = await fast(gateway, "/v3/kv/put", too_large), await slow(gateway, "/v3/kv/put", too_large)
        assert a == b and b"request is too large" in a[2]
        empty_key = {"value": _b64("v")}
        a, b = await fast(gateway, "/v3/kv/put", empty_key), await slow(gateway, "/v3/kv/put", empty_key)
        assert a == b and b"key is not provided" in a[2]
        server.node.applied -= MAX_APPLY_GAP + 1  # as if the applier were this far behind
        ok = {"key": _b64("k"), "value": _b64("v")}
        a, b = await fast(gateway, "/v3/kv/put", ok), await slow(gateway, "/v3/kv/put", ok)
        server.node.applied += MAX_APPLY_GAP + 1
        assert a == b and b"too many requests" in a[2]

    run(tmp_path, scenario, "--max-request-bytes", "1024")


def test_past_the_quota_the_write_is_refused_and_the_alarm_raised(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        server.quota = 1  # every write is past it
        put = {"key": _b64("k"), "value": _b64("v")}
        a = await fast(gateway, "/v3/kv/put", put, task=True)  # raising the alarm is a proposal
        assert a is not None and b"database space exceeded" in a[2]
        assert server.alarms.has(NOSPACE)
        assert server.store.get(b"k") is None

    run(tmp_path, scenario)


def test_declines_what_the_coroutine_path_must_serve(tmp_path: Path) -> None:
    async def scenario(server: EtcdServer, gateway: Gateway) -> None:
        put = {"key": _b64("k"), "value": _b64("v")}
        assert await fast(gateway, "/v3/kv/put", put, [(b"authorization", b"tok")]) is None
        assert await fast(gateway, "/v3/kv/put", put, [(b"grpc-timeout", b"1S")]) is None
        assert await fast(gateway, "/v3/kv/range", put) is None
        assert server.store.get(b"k") is None

    run(tmp_path, scenario)
