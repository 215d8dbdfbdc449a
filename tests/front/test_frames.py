"""The member–worker channel's byte format (app/front/frames.py): frames survive any chunking of the
stream, and a length no sender could mean is refused before its bytes are waited for."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from etcdpy.app.front import frames

FRAMES: list[list[Any]] = [
    [frames.REQUEST, 1, "POST", "/v3/kv/put", b"a=1", [[b"host", b"x"], [b"authorization", b"t\xff"]],
     ["127.0.0.1", 5555], b'{"key":"YQ=="}'],
    [frames.CANCEL, 1],
    [frames.RESPONSE, 2, 200, [[b"content-length", b"0"]], b""],
    [frames.RESPONSE, 3, 400, [], bytes(range(256)) * 40],  # binary body across many chunks
    [frames.REQUEST, 4, "POST", "/v3/kv/range", b"", [], None, b""],
]


def stream() -> bytes:
    return b"".join(frames.encode(f) for f in FRAMES)


def test_byte_by_byte() -> None:
    reader = frames.FrameReader()
    got: list[list[Any]] = []
    data = stream()
    for i in range(len(data)):
        got += reader.feed(data[i:i + 1])
    assert got == FRAMES


def test_many_frames_in_one_chunk() -> None:
    reader = frames.FrameReader()
    assert reader.feed(stream() * 3) == FRAMES * 3
    assert reader.feed(b"") == []


@pytest.mark.parametrize("seed", range(20))
def test_random_chunkings(seed: int) -> None:
    rng = random.Random(seed)
    data = stream() * 2
    reader = frames.FrameReader()
    got: list[list[Any]] = []
    at = 0
    while at < len(data):
        step = rng.choice([1, 2, 3, 4, 5, 7, 64, 1000, 20000])
        got += reader.feed(data[at:at + step])
        at += step
    assert got == FRAMES * 2


def test_a_frame_waits_for_its_last_byte() -> None:
    reader = frames.FrameReader()
    data = frames.encode(FRAMES[0])
    assert reader.feed(data[:2]) == []  # half a length prefix
    assert reader.feed(data[2:-1]) == []
    assert reader.feed(data[-1:] + data[:5]) == [FRAMES[0]]
    assert reader.feed(data[5:]) == [FRAMES[0]]


def test_over_long_length_is_refused_at_once() -> None:
    reader = frames.FrameReader()
    assert reader.feed(struct.pack(">I", frames.MAX_FRAME)) == []  # the largest allowed: waits for it
    with pytest.raises(ValueError):
        frames.FrameReader().feed(frames.encode(FRAMES[1]) + struct.pack(">I", frames.MAX_FRAME + 1))
    with pytest.raises(ValueError):
        frames.FrameReader().feed(b"\xff\xff\xff\xff")
