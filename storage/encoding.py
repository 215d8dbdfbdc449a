"""Byte layouts of the MVCC column families.

- revision keys (`kv` family): main and sub revision as big-endian u64, so byte order is revision order;
- index keys (`index` family): an order-preserving, prefix-free escape of the user key, then the revision,
  so all revisions of one key sit together, ascending, and keys sort as etcd sorts them (bytewise);
- records: a KeyValue as a fixed header plus key and value.
"""

from __future__ import annotations

import struct

from etcdpy.storage.kv_types import KeyValue

_REV = struct.Struct(">QQ")
_RECORD = struct.Struct(">qqqqI")  # create, mod, version, lease, key length
_INDEX_VALUE = struct.Struct(">qqB")  # create revision, version, tombstone flag

REVISION_BYTES = _REV.size
TOMBSTONE_MARK = b"t"


def encode_revision(main: int, sub: int) -> bytes:
    return _REV.pack(main, sub)


def decode_revision(data: bytes) -> tuple[int, int]:
    main, sub = _REV.unpack_from(data)
    return main, sub


def escape_key(key: bytes) -> bytes:
    """Escape 0x00 as 0x00 0xFF and terminate with 0x00 0x01.

    The terminator sorts below any escaped byte, so `a` < `a\\x00` < `ab` still holds after a revision
    suffix is appended, and no escaped key is a prefix of another.
    """
    if b"\x00" in key:
        key = key.replace(b"\x00", b"\x00\xff")
    return key + b"\x00\x01"


def unescape_key(data: bytes) -> tuple[bytes, int]:
    """Return the user key at the start of an index key and the offset just past its terminator."""
    # Inside an escaped key every 0x00 is followed by 0xFF, so the first 0x00 0x01 is the terminator.
    end = data.find(b"\x00\x01")
    return data[:end].replace(b"\x00\xff", b"\x00"), end + 2


def index_key(key: bytes, main: int, sub: int) -> bytes:
    return escape_key(key) + _REV.pack(main, sub)


def index_bound(key: bytes) -> bytes:
    """The smallest index key of `key` (seek target for its first revision)."""
    return escape_key(key)


def encode_index_value(create_revision: int, version: int, tombstone: bool) -> bytes:
    return _INDEX_VALUE.pack(create_revision, version, 1 if tombstone else 0)


def decode_index_value(data: bytes) -> tuple[int, int, bool]:
    create, version, tomb = _INDEX_VALUE.unpack(data)
    return create, version, bool(tomb)


def encode_record(kv: KeyValue) -> bytes:
    header = _RECORD.pack(kv.create_revision, kv.mod_revision, kv.version, kv.lease, len(kv.key))
    return header + kv.key + kv.value


def decode_record(data: bytes) -> KeyValue:
    create, mod, version, lease, klen = _RECORD.unpack_from(data)
    start = _RECORD.size
    return KeyValue(data[start : start + klen], create, mod, version, data[start + klen :], lease)


def prefix_end(key: bytes) -> bytes:
    """The smallest key greater than every key with this prefix; b"" when there is none (all 0xFF)."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return b""
    return stripped[:-1] + bytes([stripped[-1] + 1])
