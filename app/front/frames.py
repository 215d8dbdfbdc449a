"""The channel between a front worker and its member: length-prefixed msgpack frames.

A worker sends `[REQUEST, id, method, path, query, headers, client, body, decoded]` for a request it
parsed (`decoded`: the body as `codec.decode_request` decodes it, or None) and `[CANCEL, id]` when that
request's client went away; the member answers `[RESPONSE, id, status, headers, body]`, where `body`
is either the bytes to send or, for a success, the JSON payload for the worker to encode (`headers`
then carry no content-length). Ids are the worker's; headers are lists of byte pairs.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

REQUEST, CANCEL, RESPONSE = 0, 1, 2

_LEN = struct.Struct(">I")
MAX_FRAME = 1 << 30


def encode(frame: Any) -> bytes:
    data = msgpack.packb(frame, use_bin_type=True)
    return _LEN.pack(len(data)) + data


class FrameReader:
    """Splits a byte stream into decoded frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[Any]]:
        buf = self._buf
        buf += data
        frames = []
        start = 0
        while len(buf) - start >= 4:
            (length,) = _LEN.unpack_from(buf, start)
            if length > MAX_FRAME:
                raise ValueError(f"front channel frame of {length} bytes")
            end = start + 4 + length
            if len(buf) < end:
                break
            frames.append(msgpack.unpackb(buf[start + 4:end], raw=False, use_list=True))
            start = end
        if start:
            del buf[:start]
        return frames
