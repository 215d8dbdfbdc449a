"""etcd's JSON for watch responses, built as bytes (one line per message, as the gateway writes them).

WatchResponse wire order: header, watch_id, created, canceled, compact_revision, cancel_reason, fragment,
events. Zero values are omitted (watch id 0 never appears); a PUT event has no `type`. The events of one
batch are encoded once and shared by every watcher that receives the same batch.
"""

from __future__ import annotations

from typing import Any

import orjson

from etcdpy.app.gateway.codec import kv_json, varint_size
from etcdpy.storage.kv_types import Event, EventType, KeyValue
from etcdpy.storage.watch_hub import CompactedMsg, EventBatch, EventsMsg, ProgressMsg

GRPC_OVERHEAD = 512 * 1024


def event_json(ev: Event, prev_kv: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ev.type == EventType.DELETE:
        out["type"] = "DELETE"
    out["kv"] = kv_json(ev.kv)
    if prev_kv and ev.prev_kv is not None:
        out["prev_kv"] = kv_json(ev.prev_kv)
    return out


def events_bytes(batch: EventBatch, prev_kv: bool) -> bytes:
    cached = batch.cache.get(prev_kv)
    if cached is None:
        cached = orjson.dumps([event_json(ev, prev_kv) for ev in batch.events])
        batch.cache[prev_kv] = cached
    assert isinstance(cached, bytes)
    return cached


def response(header: dict[str, str], watch_id: int = 0, created: bool = False, canceled: bool = False,
             compact_revision: int = 0, cancel_reason: str = "", fragment: bool = False,
             events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header}
    if watch_id:
        out["watch_id"] = str(watch_id)
    if created:
        out["created"] = True
    if canceled:
        out["canceled"] = True
    if compact_revision:
        out["compact_revision"] = str(compact_revision)
    if cancel_reason:
        out["cancel_reason"] = cancel_reason
    if fragment:
        out["fragment"] = True
    if events:
        out["events"] = events
    return out


def line(result: dict[str, Any]) -> bytes:
    return orjson.dumps({"result": result}) + b"\n"


def _kv_size(kv: KeyValue) -> int:
    size = 1 + varint_size(len(kv.key)) + len(kv.key)
    for value in (kv.create_revision, kv.mod_revision, kv.version):
        if value:
            size += 1 + varint_size(value)
    if kv.value:
        size += 1 + varint_size(len(kv.value)) + len(kv.value)
    if kv.lease:
        size += 1 + varint_size(kv.lease)
    return size


def event_size(ev: Event, prev_kv: bool) -> int:
    """Protobuf size of the Event inside a WatchResponse (tag and length included)."""
    size = 2 if ev.type else 0
    n = _kv_size(ev.kv)
    size += 1 + varint_size(n) + n
    if prev_kv and ev.prev_kv is not None:
        n = _kv_size(ev.prev_kv)
        size += 1 + varint_size(n) + n
    return 1 + varint_size(size) + size


class Encoder:
    """Turns hub messages into gateway lines for one server (its header and size limits)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.fragment_limit = server.config.max_request_bytes + GRPC_OVERHEAD
        self._prefix: bytes | None = None

    def header(self, revision: int) -> dict[str, str]:
        h: dict[str, str] = self.server.header(revision)
        return h

    def header_no_revision(self) -> dict[str, str]:
        h = dict(self.server.header())
        h.pop("revision", None)
        return h

    def encode(self, msg: Any) -> list[bytes]:
        if isinstance(msg, bytes):
            return [msg]
        if isinstance(msg, EventsMsg):
            return self._events(msg)
        if isinstance(msg, ProgressMsg):
            return [line(response(self.header(msg.revision), msg.watcher.id))]
        if isinstance(msg, CompactedMsg):
            return [line(response(self.header_no_revision(), msg.watcher.id, canceled=True,
                                  compact_revision=msg.compact_revision))]
        raise TypeError(f"unknown watch message {msg!r}")

    def _events(self, msg: EventsMsg) -> list[bytes]:
        w = msg.watcher
        header = orjson.dumps(self.header(msg.revision))
        wid = b',"watch_id":"%d"' % w.id if w.id else b""
        events = msg.batch.events
        if w.fragment and len(events) > 1:
            sizes = [event_size(ev, w.prev_kv) for ev in events]
            base = 2 + len(header) + (1 + varint_size(w.id) if w.id else 0)
            if base + sum(sizes) >= self.fragment_limit:
                return self._fragments(msg, header, wid, sizes, base)
        body = events_bytes(msg.batch, w.prev_kv)
        return [b'{"result":{"header":' + header + wid + b',"events":' + body + b"}}\n"]

    def _fragments(self, msg: EventsMsg, header: bytes, wid: bytes, sizes: list[int],
                   base: int) -> list[bytes]:
        """etcd's sendFragments: fill each piece until it reaches the limit; all but the last say
        `"fragment":true`."""
        w = msg.watcher
        events = msg.batch.events
        out: list[bytes] = []
        idx = 0
        while idx < len(events):
            start = idx
            size = base + 2  # the fragment flag
            while idx < len(events):
                size += sizes[idx]
                if idx > start and size >= self.fragment_limit:
                    break
                idx += 1
            piece = orjson.dumps([event_json(ev, w.prev_kv) for ev in events[start:idx]])
            flag = b',"fragment":true' if idx < len(events) else b""
            out.append(b'{"result":{"header":' + header + wid + flag + b',"events":' + piece + b"}}\n")
        return out
