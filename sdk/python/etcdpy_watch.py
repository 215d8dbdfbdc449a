"""Watch helper for a Python client generated from etcdpy's OpenAPI document (`openapi-python-client`).

A generated client reads a whole response before decoding it, so its `watch()` never returns: a watch
stream does not end. This helper opens `POST /v3/watch` on the generated client's own httpx client and
yields each line of the stream as the generated `WatchResponse` model (or as a dict without one):

    from etcdpy_client import Client
    from etcdpy_client.models import WatchResponse
    from etcdpy_watch import watch

    client = Client(base_url="http://localhost:2379")
    for resp in watch(client, {"key": "Zm9v"}, WatchResponse.from_dict):
        for ev in resp.events or []:
            print(ev.type_, ev.kv.key, ev.kv.value)

Copy this file next to the generated package; it needs only httpx (which the client needs too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import httpx

T = TypeVar("T")


class GeneratedClient(Protocol):
    def get_httpx_client(self) -> httpx.Client: ...


class WatchError(Exception):
    """The stream ended with etcd's error object (`{"error": {...}}`) or an HTTP error status."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", error))
        self.error = error


def _identity(d: dict[str, Any]) -> Any:
    return d


def watch(client: GeneratedClient, create_request: dict[str, Any],
          decode: Callable[[dict[str, Any]], T] = _identity, *, timeout: float | None = None) -> Iterator[T]:
    """Yield every WatchResponse of one watch (the first is the `created` answer) until the caller stops
    iterating (which closes the stream) or the server ends it. `create_request` is etcd's
    WatchCreateRequest as JSON (`key` and `range_end` base64, revisions as decimal strings)."""
    body = json.dumps({"create_request": create_request})
    http = client.get_httpx_client()
    with http.stream("POST", "/v3/watch", content=body, headers={"Content-Type": "application/json"},
                     timeout=httpx.Timeout(timeout, connect=10.0)) as response:
        if response.status_code != 200:
            response.read()
            raise WatchError(response.json())
        for line in response.iter_lines():
            if not line.strip():
                continue
            message = json.loads(line)
            if "error" in message:
                raise WatchError(message["error"])
            yield decode(message["result"])
