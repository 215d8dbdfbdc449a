"""Read-only walk of a bbolt file (etcd's backend and snapshot format), for ``snapshot status``.

etcdctl's status is: CRC-32C over every bucket name and every key and value in it (buckets and keys
in bolt's byte order), the number of keys, the revision of the last key in the ``key`` bucket, and
the file's size as bolt sees it (high-water page id × page size). This module reads exactly that much
of the format: the two meta pages, branch and leaf pages, overflow pages, and inline buckets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from etcdpy.app.ctl.client import CtlError
from etcdpy.app.ctl.printers import DBStatus

MAGIC = 0xED0CDAED
PAGE_HEADER = 16  # id u64, flags u16, count u16, overflow u32
ELEMENT = 16
BRANCH, LEAF = 0x01, 0x02
BUCKET_LEAF = 0x01


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


class Crc32c:
    """CRC-32 with the Castagnoli polynomial (Go's crc32.MakeTable(crc32.Castagnoli))."""

    def __init__(self) -> None:
        self.crc = 0xFFFFFFFF

    def update(self, data: bytes) -> None:
        crc, table = self.crc, _TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.crc = crc

    def value(self) -> int:
        return self.crc ^ 0xFFFFFFFF


class BoltFile:
    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 2 * PAGE_HEADER + 64:
            raise CtlError("invalid database", 1)
        metas = [self._meta(off) for off in (0, self._page_size_guess())]
        valid = [m for m in metas if m is not None]
        if not valid:
            raise CtlError("invalid database", 1)
        self.page_size, self.root, self.high_water = max(valid, key=lambda m: m[3])[:3]

    def _page_size_guess(self) -> int:
        return struct.unpack_from("<I", self.data, PAGE_HEADER + 8)[0]

    def _meta(self, off: int) -> tuple[int, int, int, int] | None:
        if off + PAGE_HEADER + 64 > len(self.data):
            return None
        magic, version, page_size, _flags, root, _seq, _freelist, pgid, txid = struct.unpack_from(
            "<IIIIQQQQQ", self.data, off + PAGE_HEADER)
        if magic != MAGIC or version != 2:
            return None
        return page_size, root, pgid, txid

    def page(self, pgid: int) -> tuple[bytes, int]:
        return self.data, pgid * self.page_size

    def walk(self, buf: bytes, base: int) -> Iterator[tuple[int, bytes, bytes]]:
        """(flags, key, value) of every leaf element under the page at ``base`` in ``buf``, in order."""
        flags, count = struct.unpack_from("<HH", buf, base + 8)
        for i in range(count):
            elem = base + PAGE_HEADER + i * ELEMENT
            if flags & BRANCH:
                pos, ksize, child = struct.unpack_from("<IIQ", buf, elem)
                yield from self.walk(*self.page(child))
            elif flags & LEAF:
                eflags, pos, ksize, vsize = struct.unpack_from("<IIII", buf, elem)
                start = elem + pos
                yield eflags, buf[start:start + ksize], buf[start + ksize:start + ksize + vsize]
            else:
                raise CtlError(f"invalid page type: {flags:#x}", 1)

    def bucket(self, header: bytes) -> Iterator[tuple[int, bytes, bytes]]:
        root = struct.unpack_from("<Q", header, 0)[0]
        if root == 0:  # an inline bucket: its single leaf page follows the 16-byte bucket header
            yield from self.walk(header, 16)
        else:
            yield from self.walk(*self.page(root))


def db_status(path: str) -> DBStatus:
    with open(path, "rb") as fh:
        data = fh.read()
    bolt = BoltFile(data)
    crc = Crc32c()
    revision = total = 0
    for flags, name, header in bolt.walk(*bolt.page(bolt.root)):
        if not flags & BUCKET_LEAF:
            raise CtlError(f"cannot get hash of bucket {name.decode(errors='replace')}", 1)
        crc.update(name)
        for _, key, value in bolt.bucket(header):
            crc.update(key)
            crc.update(value)
            if name == b"key" and len(key) >= 8:
                revision = struct.unpack_from(">q", key, 0)[0]
            total += 1
    return DBStatus(hash=crc.value(), revision=revision, total_key=total,
                    total_size=bolt.high_water * bolt.page_size)
