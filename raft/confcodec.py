"""Byte encoding of ConfChange / ConfChangeV2 carried in conf-change log entries.

Raft must read conf changes back out of its own log (to refuse overlapping changes and
to leave joint configs automatically), so their encoding belongs to the core. The layout
is a tiny varint format built only from int.to_bytes, keeping the package import-pure.
"""

from __future__ import annotations

from etcdpy.raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    Entry,
    EntryType,
)


def _put_uvarint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _get_uvarint(b: bytes, pos: int) -> tuple[int, int]:
    shift = v = 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, pos
        shift += 7


def encode_conf_change(cc: ConfChange | ConfChangeV2) -> bytes:
    out = bytearray()
    if isinstance(cc, ConfChange):
        _put_uvarint(out, int(cc.type))
        _put_uvarint(out, cc.node_id)
        _put_uvarint(out, cc.id)
    else:
        # An empty ConfChangeV2 (leave joint) encodes to b"", like etcd's empty protobuf.
        if not cc.changes and not cc.context and cc.transition == ConfChangeTransition.AUTO:
            return b""
        _put_uvarint(out, int(cc.transition))
        _put_uvarint(out, len(cc.changes))
        for c in cc.changes:
            _put_uvarint(out, int(c.type))
            _put_uvarint(out, c.node_id)
    _put_uvarint(out, len(cc.context))
    out += cc.context
    return bytes(out)


def decode_conf_change(data: bytes, v2: bool) -> ConfChange | ConfChangeV2:
    if v2:
        if not data:
            return ConfChangeV2()
        tr, pos = _get_uvarint(data, 0)
        n, pos = _get_uvarint(data, pos)
        changes = []
        for _ in range(n):
            t, pos = _get_uvarint(data, pos)
            nid, pos = _get_uvarint(data, pos)
            changes.append(ConfChangeSingle(ConfChangeType(t), nid))
        ln, pos = _get_uvarint(data, pos)
        return ConfChangeV2(changes, ConfChangeTransition(tr), bytes(data[pos : pos + ln]))
    t, pos = _get_uvarint(data, 0)
    nid, pos = _get_uvarint(data, pos)
    cid, pos = _get_uvarint(data, pos)
    ln, pos = _get_uvarint(data, pos)
    return ConfChange(ConfChangeType(t), nid, bytes(data[pos : pos + ln]), cid)


def conf_change_from_entry(e: Entry) -> ConfChange | ConfChangeV2:
    if e.type == EntryType.CONF_CHANGE:
        return decode_conf_change(e.data, False)
    if e.type == EntryType.CONF_CHANGE_V2:
        return decode_conf_change(e.data, True)
    raise ValueError(f"entry {e.index} is not a conf change")


def conf_change_to_entry(cc: ConfChange | ConfChangeV2) -> Entry:
    t = EntryType.CONF_CHANGE if isinstance(cc, ConfChange) else EntryType.CONF_CHANGE_V2
    return Entry(type=t, data=encode_conf_change(cc))
