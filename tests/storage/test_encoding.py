"""Byte layouts of the MVCC families: order preservation is what range scans depend on."""

from hypothesis import given
from hypothesis import strategies as st

from etcdpy.storage import encoding
from etcdpy.storage.kv_types import KeyValue

keys = st.binary(max_size=12)
revs = st.integers(min_value=0, max_value=2**63 - 1)


@given(keys, keys, revs, revs)
def test_index_keys_sort_by_user_key_then_revision(a: bytes, b: bytes, ra: int, rb: int) -> None:
    ia, ib = encoding.index_key(a, ra, 0), encoding.index_key(b, rb, 0)
    if a != b:
        assert (ia < ib) == (a < b)
    else:
        assert (ia < ib) == (ra < rb)


@given(keys, revs, st.integers(min_value=0, max_value=2**32))
def test_index_key_round_trips(key: bytes, main: int, sub: int) -> None:
    ikey = encoding.index_key(key, main, sub)
    user, offset = encoding.unescape_key(ikey)
    assert user == key
    assert encoding.decode_revision(ikey[offset:]) == (main, sub)


@given(keys, keys, revs)
def test_every_revision_of_a_key_sorts_below_the_bound_of_any_greater_key(a: bytes, b: bytes, r: int) -> None:
    if a < b:
        assert encoding.index_key(a, r, 2**32) < encoding.index_bound(b)


@given(st.builds(KeyValue, keys, revs, revs, revs, st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1)))
def test_record_round_trips(kv: KeyValue) -> None:
    assert encoding.decode_record(encoding.encode_record(kv)) == kv


@given(revs, revs)
def test_revision_bytes_sort_numerically(a: int, b: int) -> None:
    assert (encoding.encode_revision(a, 0) < encoding.encode_revision(b, 0)) == (a < b)


def test_prefix_end() -> None:
    assert encoding.prefix_end(b"abc") == b"abd"
    assert encoding.prefix_end(b"a\xff") == b"b"
    assert encoding.prefix_end(b"\xff\xff") == b""
