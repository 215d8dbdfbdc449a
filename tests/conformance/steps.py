"""Small builders for conformance steps, so cases read like the requests they send.

Keys are passed already base64-encoded (from ``Keys``); values are plain text and encoded here.
Revision arguments may be ints or ``"${rev+N}"`` templates (see harness.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.conformance.harness import Keys, Step, b64

KV = "/v3/kv"
Json = dict[str, Any]


def post(path: str, body: Any = None, *, expect: int | None = 200, **kw: Any) -> Step:
    return Step(path, body, expect=expect, **kw)


def put(key: str, value: str | None = None, *, expect: int | None = 200, **fields: Any) -> Step:
    return post(f"{KV}/put", put_body(key, value, **fields), expect=expect)


def put_body(key: str, value: str | None = None, **fields: Any) -> Json:
    body: Json = {"key": key}
    if value is not None:
        body["value"] = b64(value)
    body.update(fields)
    return body


def rng(key: str, *, expect: int | None = 200, **fields: Any) -> Step:
    return post(f"{KV}/range", {"key": key, **fields}, expect=expect)


def delete(key: str, *, expect: int | None = 200, **fields: Any) -> Step:
    return post(f"{KV}/deleterange", {"key": key, **fields}, expect=expect)


def txn(compare: list[Json] | None = None, success: list[Json] | None = None,
        failure: list[Json] | None = None, *, expect: int | None = 200) -> Step:
    body: Json = {}
    if compare is not None:
        body["compare"] = compare
    if success is not None:
        body["success"] = success
    if failure is not None:
        body["failure"] = failure
    return post(f"{KV}/txn", body, expect=expect)


def compact(revision: int | str, *, expect: int | None = 200, **fields: Any) -> Step:
    return post(f"{KV}/compaction", {"revision": revision, **fields}, expect=expect)


def op_put(key: str, value: str | None = None, **fields: Any) -> Json:
    return {"request_put": put_body(key, value, **fields)}


def op_range(key: str, **fields: Any) -> Json:
    return {"request_range": {"key": key, **fields}}


def op_delete(key: str, **fields: Any) -> Json:
    return {"request_delete_range": {"key": key, **fields}}


def op_txn(compare: list[Json] | None = None, success: list[Json] | None = None,
           failure: list[Json] | None = None) -> Json:
    body: Json = {}
    for name, ops in (("compare", compare), ("success", success), ("failure", failure)):
        if ops is not None:
            body[name] = ops
    return {"request_txn": body}


def cmp(key: str, target: str, result: str, **operand: Any) -> Json:
    """A Compare; ``operand`` is the one field matching the target (value=, version=, ...)."""
    return {"key": key, "target": target, "result": result, **operand}


def lease_id(keys: Keys, n: int = 0) -> int:
    """A client-chosen lease ID unique to the case: server-chosen IDs differ between servers."""
    digest = hashlib.sha256(keys.prefix.encode()).digest()
    return (int.from_bytes(digest[:7], "big") << 4) + n + 1


def grant(lease: int, ttl: int = 600) -> Step:
    return post("/v3/lease/grant", {"TTL": ttl, "ID": lease})
