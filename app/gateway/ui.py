"""The web dashboard: `/ui` serves the static front end (`ui_static/`, plain ES modules, no build step)
and `/ui/api/*` the three reads it needs that etcd's API cannot answer cheaply.

Everything else the dashboard does goes through etcd's own API from the browser (`/v3/kv/*`,
`/v3/lease/*`, `/v3/cluster/*`, `/v3/maintenance/*`, `/v3/auth/*`, `/watch/sse`, `/metrics`), so it
sees exactly what its user may see.

| route                 | answers                                                                     |
| --------------------- | --------------------------------------------------------------------------- |
| `GET /ui/api/tree`    | a page of a "folder" (prefix + delimiter): sub-folders with key counts, keys |
| `GET /ui/api/key`     | a key's KeyValue and its value pretty-printed (JSON, YAML, text or hex)      |
| `GET /ui/api/history` | a key's revisions, newest first, each with its value (MVCC's key index)      |

Keys in and out are base64 (as in etcd's JSON); errors are etcd's JSON error objects. Counting folders
walks RocksDB keys without decoding values (~0.5 µs a key); a listing stops counting after
`COUNT_BUDGET` keys and then reports its remaining counts as lower bounds (`"exact": false`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import yaml
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from etcdpy.app.errors import INVALID_ARGUMENT, EtcdError, to_etcd_error
from etcdpy.app.gateway.watch.sse import TOKEN_COOKIE
from etcdpy.app.server.auth import request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage import encoding
from etcdpy.storage.errors import StorageError
from etcdpy.storage.kv_range import GTE_RANGE_END
from etcdpy.storage.kv_types import KeyValue, RangeRequest
from etcdpy.storage.mvcc import MVCCStore

UI_PATH = "/ui"
STATIC_DIR = Path(__file__).resolve().parent / "ui_static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}

TREE_LIMIT_DEFAULT = 200
TREE_LIMIT_MAX = 5000
# Keys a listing may step over to count folders: 2,000,000 keys is about a second of RocksDB iteration.
COUNT_BUDGET = 2_000_000
HISTORY_LIMIT_MAX = 1000
INLINE_VALUE_MAX = 256 * 1024  # history entries carry their value inline up to this size
YAML_PARSE_MAX = 256 * 1024  # larger values are not parsed as YAML (shown as text)
HEX_SHOWN_MAX = 64 * 1024


class BadRequest(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not valid base64") from None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------ values


def describe_value(value: bytes) -> dict[str, str]:
    """How the dashboard shows a value: `format` (json, yaml, text, binary or empty) and `pretty`."""
    if not value:
        return {"format": "empty", "pretty": ""}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"format": "binary", "pretty": hexdump(value)}
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return {"format": "binary", "pretty": hexdump(value)}
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        with contextlib.suppress(orjson.JSONDecodeError):
            doc = orjson.loads(value)
            return {"format": "json", "pretty": json.dumps(doc, indent=2, ensure_ascii=False)}
    if len(value) <= YAML_PARSE_MAX and ("\n" in stripped or stripped.startswith("---")):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        # Only a mapping or a list is YAML worth showing as such; any text is a valid YAML scalar.
        if isinstance(doc, dict | list):
            pretty = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
            return {"format": "yaml", "pretty": pretty.rstrip("\n")}
    return {"format": "text", "pretty": text}


def hexdump(value: bytes) -> str:
    """xxd-style lines: offset, 16 bytes in hex, their printable ASCII (the first 64 KiB)."""
    lines = []
    for off in range(0, min(len(value), HEX_SHOWN_MAX), 16):
        chunk = value[off:off + 16]
        hexed = " ".join(chunk[i:i + 2].hex() for i in range(0, len(chunk), 2))
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexed:<40}  {shown}")
    if len(value) > HEX_SHOWN_MAX:
        lines.append(f"… {len(value) - HEX_SHOWN_MAX} more bytes")
    return "\n".join(lines)


def kv_json(kv: KeyValue) -> dict[str, Any]:
    return {"key": _b64(kv.key), "create_revision": str(kv.create_revision),
            "mod_revision": str(kv.mod_revision), "version": str(kv.version), "lease": str(kv.lease),
            "value": _b64(kv.value), "size": len(kv.value)}


# ------------------------------------------------------------------------------------------ tree


def _after_start(after: bytes, delimiter: bytes) -> bytes:
    """Where the page after entry `after` starts: past a whole folder, or just past a key."""
    if delimiter and after.endswith(delimiter):
        end = encoding.prefix_end(after)
        return end if end else after + b"\x00"
    return after + b"\x00"


def list_tree(store: MVCCStore, prefix: bytes, delimiter: bytes, limit: int, after: bytes | None,
              budget: int = COUNT_BUDGET) -> dict[str, Any]:
    """One page of the keys under `prefix`, grouped at the next `delimiter` as S3 lists objects.

    Runs without awaiting, so the page is one consistent view at `revision`. A folder's keys are
    counted by walking their RocksDB keys (no values decoded) and then skipped with one seek.
    """
    end = encoding.prefix_end(prefix) if prefix else b""
    start = prefix if after is None else max(prefix, _after_start(after, delimiter))
    it = store.latest.iter()
    it.seek(start)
    entries: list[dict[str, Any]] = []
    more = False
    steps = 0
    cut_at = len(prefix)
    # Names are relative to the prefix's folder, so a search prefix ("/a/sv") lists "/a/svc1" as "svc1".
    name_at = prefix.rfind(delimiter) + len(delimiter) if delimiter and delimiter in prefix else 0
    while it.valid():
        key: bytes = it.key()
        if end and key >= end:
            break
        if len(entries) >= limit:
            more = True
            break
        pos = key.find(delimiter, cut_at) if delimiter else -1
        if pos < 0:
            record = encoding.decode_record(it.value())
            entries.append({"type": "key", "name": _text(key[name_at:]), **kv_json(record)})
            entries[-1].pop("value")
            it.next()
            steps += 1
            continue
        folder = key[:pos + len(delimiter)]
        folder_end = encoding.prefix_end(folder)
        count = 0
        exact = True
        while it.valid():
            if steps >= budget:
                exact = False
                break
            k: bytes = it.key()
            if folder_end and k >= folder_end:
                break
            count += 1
            steps += 1
            it.next()
        if not exact:
            count = max(count, 1)
            if not folder_end:
                break
            it.seek(folder_end)
        entries.append({"type": "folder", "name": _text(folder[name_at:]), "key": _b64(folder),
                        "count": count, "exact": exact})
    return {"revision": str(store.current_revision), "prefix": _b64(prefix), "entries": entries,
            "more": more}


# ------------------------------------------------------------------------------------------ history


def key_history(store: MVCCStore, key: bytes, limit: int, before: int) -> dict[str, Any]:
    """A key's revisions from MVCC's key index, newest first: each put with its value, each delete.

    Revisions below the compaction point are gone except the one that was current at it (kept by
    compaction unless it was a delete); `compact_revision` tells the dashboard where history ends.
    """
    prefix = encoding.escape_key(key)
    it = store.index.iter()
    it.seek(prefix)
    found: list[tuple[int, int, int, int, bool]] = []  # main, sub, create, version, tombstone
    while it.valid():
        ikey: bytes = it.key()
        if not ikey.startswith(prefix):
            break
        main, sub = encoding.decode_revision(ikey[len(prefix):])
        create, version, tomb = encoding.decode_index_value(it.value())
        found.append((main, sub, create, version, tomb))
        it.next()
    compact = store.compact_revision
    # Entries below the compaction point that compaction has not removed yet are not readable either
    # (a read at their revision fails), except the newest of them, which compaction keeps.
    last_old = max((i for i, f in enumerate(found) if f[0] < compact), default=-1)
    visible = found[max(last_old, 0):] if last_old >= 0 and not found[last_old][4] else \
        found[last_old + 1:]
    visible.reverse()
    if before > 0:
        visible = [f for f in visible if f[0] < before]
    page, more = visible[:limit], len(visible) > limit
    out = []
    for main, sub, create, version, tomb in page:
        entry: dict[str, Any] = {"revision": str(main), "sub": sub,
                                 "type": "DELETE" if tomb else "PUT"}
        if not tomb:
            data = store.kv.get(encoding.encode_revision(main, sub))
            if data is None:  # removed by a compaction running right now
                continue
            kv = encoding.decode_record(data)
            entry.update(kv_json(kv))
            if len(kv.value) > INLINE_VALUE_MAX:
                entry["value"] = None
            entry.update(describe_value(kv.value[:INLINE_VALUE_MAX]))
        else:
            entry.update({"create_revision": str(create), "version": str(version)})
        out.append(entry)
    return {"key": _b64(key), "revision": str(store.current_revision), "compact_revision": str(compact),
            "entries": out, "more": more}


# ------------------------------------------------------------------------------------------ auth


@contextlib.asynccontextmanager
async def caller(server: EtcdServer, request: Request) -> AsyncIterator[None]:
    """Make the request's token the caller of the server calls inside, as the v3 dispatcher does, so
    auth checks the dashboard's reads like any other range. Like `/watch/sse`, the token comes from the
    `Authorization` header or the `token` cookie."""
    token = request.headers.get("authorization") or request.cookies.get(TOKEN_COOKIE)
    reset = request_token.set(token)
    try:
        if token is not None:
            await server.auth.await_token(token)
        yield
    finally:
        request_token.reset(reset)


def authorize_read(server: EtcdServer, key: bytes, range_end: bytes) -> None:
    """Refuse a read of [key, range_end) with the check and errors of `EtcdServer.range`, without
    evaluating the range (a listing page reads only what it shows)."""
    ai = server.auth.check_read(key, range_end)
    server.auth.check_fresh(ai)


# ------------------------------------------------------------------------------------------ routes


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, BadRequest):
        err = EtcdError(str(exc), INVALID_ARGUMENT)
    else:
        err = to_etcd_error(exc)
    return JSONResponse({"error": err.message, "message": err.message, "code": err.code},
                        status_code=err.http_status)


def _static(name: str) -> Response:
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR or not path.is_file():
        return Response("404 page not found\n", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type=STATIC_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"Cache-Control": "no-cache"})


def install(api: FastAPI, server: EtcdServer | None) -> None:
    """Add the dashboard's routes (left out of the OpenAPI document: they serve the dashboard only)."""

    @api.get(UI_PATH, include_in_schema=False)
    async def ui_root() -> Response:
        return RedirectResponse(UI_PATH + "/", status_code=301)

    @api.get(UI_PATH + "/", include_in_schema=False)
    async def ui_index() -> Response:
        return _static("index.html")

    @api.get(UI_PATH + "/static/{name}", include_in_schema=False)
    async def ui_file(name: str) -> Response:
        return _static(name)

    @api.get(UI_PATH + "/api/tree", include_in_schema=False)
    async def ui_tree(request: Request, prefix: str = Query(""), delimiter: str = Query("/"),
                      limit: int = Query(TREE_LIMIT_DEFAULT), after: str | None = Query(None)) -> Response:
        try:
            assert server is not None
            raw = _unb64(prefix, "prefix")
            start_after = _unb64(after, "after") if after else None
            if not 0 < limit <= TREE_LIMIT_MAX:
                raise BadRequest(f"limit must be between 1 and {TREE_LIMIT_MAX}")
            end = encoding.prefix_end(raw) if raw else GTE_RANGE_END
            async with caller(server, request):
                await server.linearizable_barrier()
                authorize_read(server, raw or b"\x00", end or GTE_RANGE_END)
                page = list_tree(server.store, raw, delimiter.encode(), limit, start_after)
        except (BadRequest, EtcdError, StorageError) as exc:
            return _error(exc)
        return Response(orjson.dumps(page), media_type="application/json")

    @api.get(UI_PATH + "/api/key", include_in_schema=False)
    async def ui_key(request: Request, key: str = Query(...)) -> Response:
        try:
            assert server is not None
            raw = _unb64(key, "key")
            async with caller(server, request):
                result = await server.range(RangeRequest(key=raw))
        except (BadRequest, EtcdError, StorageError) as exc:
            return _error(exc)
        body: dict[str, Any] = {"revision": str(result.revision), "kv": None}
        if result.kvs:
            kv = result.kvs[0]
            body["kv"] = kv_json(kv)
            body.update(describe_value(kv.value))
        return Response(orjson.dumps(body), media_type="application/json")

    @api.get(UI_PATH + "/api/history", include_in_schema=False)
    async def ui_history(request: Request, key: str = Query(...), limit: int = Query(100),
                         before: int = Query(0)) -> Response:
        try:
            assert server is not None
            raw = _unb64(key, "key")
            if not 0 < limit <= HISTORY_LIMIT_MAX:
                raise BadRequest(f"limit must be between 1 and {HISTORY_LIMIT_MAX}")
            async with caller(server, request):
                # The key's read permission is checked by the range path itself.
                await server.range(RangeRequest(key=raw))
                page = key_history(server.store, raw, limit, before)
        except (BadRequest, EtcdError, StorageError) as exc:
            return _error(exc)
        return Response(orjson.dumps(page), media_type="application/json")
