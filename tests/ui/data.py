"""Test data for the dashboard tests: bulk loading through the gateway, and small gateway calls."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from typing import Any

import httpx

TXN_OPS = 128  # etcd's default --max-txn-ops
CONCURRENCY = 6


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def call(url: str, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": token} if token else {}
    resp = httpx.post(f"{url}/v3/{path}", json=body, headers=headers, timeout=10.0)
    resp.raise_for_status()
    out: dict[str, Any] = resp.json()
    return out


def put(url: str, key: str, value: str | bytes, lease: str | None = None) -> int:
    body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = lease
    return int(call(url, "kv/put", body)["header"]["revision"])


def get(url: str, key: str) -> dict[str, Any] | None:
    kvs = call(url, "kv/range", {"key": b64(key)}).get("kvs", [])
    return kvs[0] if kvs else None


async def _load(url: str, items: list[tuple[str, str]]) -> None:
    batches = [items[i:i + TXN_OPS] for i in range(0, len(items), TXN_OPS)]
    queue: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:

        async def worker() -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                ops = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in batch]
                resp = await client.post("/v3/kv/txn", json={"success": ops})
                resp.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def load(url: str, items: Iterable[tuple[str, str]]) -> None:
    """Write every (key, value) in transactions of etcd's maximum size, a few at a time."""
    asyncio.run(_load(url, list(items)))


def hundred_thousand() -> Iterable[tuple[str, str]]:
    """100,000 keys as a service registry: 10 regions x 100 services x 100 instances."""
    for r in range(10):
        for s in range(100):
            for i in range(100):
                yield (f"/registry/region-{r}/svc-{s:03d}/instance-{i:03d}",
                       f'{{"host":"10.{r}.{s}.{i}","port":{8000 + i},"healthy":true}}')
