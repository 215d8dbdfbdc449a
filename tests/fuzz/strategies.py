"""Hypothesis strategies for raw gateway requests: every KV and lease RPC, valid and mutated.

Requests are generated from the message table (app/schema.py), so every field of every request
message is covered, each by its kind: integers, enums, bytes, bools, nested messages. Objects are
rendered by hand as raw JSON text, which lets a request carry what a dict cannot: both spellings of a
field, the same key twice, escapes, invalid UTF-8, trailing data, nesting thousands deep.

Revision-valued fields often say ``${rev+N}`` (the harness substitutes the case's baseline), so a
generated request hits the interesting revisions (current, future, just compacted) on both servers.

What is *not* generated, because real etcd 3.4.23 gives no answer to compare: an out-of-range
`sort_target` (the etcd process panics), `null` inside a txn list or as a txn op (the connection is
dropped), and two members of one oneof in one object (jsonpb picks one at random: it walks a map).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from etcdpy.app.gateway.schema import ENUMS, MESSAGES, Field, lower_camel
from tests.conformance.harness import JSON, Step

# Raw JSON text of one value. Strategies build these bottom-up.
Raw = bytes


@dataclass(frozen=True)
class Rpc:
    path: str
    message: str


KV_RPCS = [
    Rpc("/v3/kv/range", "RangeRequest"),
    Rpc("/v3/kv/put", "PutRequest"),
    Rpc("/v3/kv/deleterange", "DeleteRangeRequest"),
    Rpc("/v3/kv/txn", "TxnRequest"),
    Rpc("/v3/kv/compaction", "CompactionRequest"),
]
LEASE_RPCS = [
    Rpc("/v3/lease/grant", "LeaseGrantRequest"),
    Rpc("/v3/lease/revoke", "LeaseRevokeRequest"),
    Rpc("/v3/kv/lease/revoke", "LeaseRevokeRequest"),
    Rpc("/v3/lease/timetolive", "LeaseTimeToLiveRequest"),
    Rpc("/v3/kv/lease/timetolive", "LeaseTimeToLiveRequest"),
    Rpc("/v3/lease/leases", "LeaseLeasesRequest"),
    Rpc("/v3/lease/keepalive", "LeaseKeepAliveRequest"),
]
ALL_RPCS = KV_RPCS + LEASE_RPCS

# Client-chosen lease IDs: server-chosen ones differ between servers (the runner normalises those).
LEASE_IDS = (1, 2, 7, 2**62, 2**63 - 1)
REVISION_FIELDS = {"revision", "min_mod_revision", "max_mod_revision", "min_create_revision",
                   "max_create_revision", "mod_revision", "create_revision"}
# Keys share a few names so requests meet each other's keys; "\0" is etcd's "from key" range end.
KEY_NAMES = (b"a", b"b", b"c", b"a/x", b"\x00", b"\xff", b"")

CONTENT_TYPES = (JSON, JSON, JSON, None, "text/plain", "application/grpc", "application/json; charset=utf-8",
                 "application/x-www-form-urlencoded", "application/octet-stream")


def dumps(value: Any) -> Raw:
    return json.dumps(value, separators=(",", ":")).encode()


def render_object(pairs: list[tuple[Raw, Raw]]) -> Raw:
    """Raw key/value pairs as an object, in the order given: duplicates and both spellings stay."""
    return b"{" + b",".join(k + b":" + v for k, v in pairs) + b"}"


# ------------------------------------------------------------------------ odd values

NESTING = st.integers(min_value=1, max_value=40) | st.sampled_from([1000, 3000, 5000, 9999, 10001])


@st.composite
def deep_value(draw: st.DrawFn) -> Raw:
    depth = draw(NESTING)
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _escape_text(text: str) -> Raw:
    return dumps(text)


ODD_STRINGS: st.SearchStrategy[Raw] = st.sampled_from([
    b'"null"', b'"true"', b'""', b'" 5"', b'"5 "', b'"0x10"', b'"1.0"', b'"1e2"', b'"-0"', b'"+1"',
    b'"\\u0035"', b'"\\"5\\""', b'"[]"', b'"{}"', b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"',
    b'"\xff"', b'"\xe2\x82"', b'"\xed\xa0\x80"', b'"YQ\\u003d\\u003d"', b'"YQ\\n=="', b'"Y Q=="',
    b'"9223372036854775808"', b'"-9223372036854775809"', b'"18446744073709551616"', b'"01"', b'"00"',
])
ODD_NUMBERS: st.SearchStrategy[Raw] = st.sampled_from([
    b"1.5", b"1.0", b"1e2", b"1E+2", b"-0", b"0.0", b"-1", b"1e400", b"9223372036854775807",
    b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
    b"18446744073709551616", b"4294967296", b"2147483648", b"-2147483649", b"0.5e1",
    b"100000000000000000000000",
])
ODD_SYNTAX: st.SearchStrategy[Raw] = st.sampled_from([
    b"nul", b"tru", b"01", b"-", b"1.", b".5", b"+1", b"'a'", b"[1,]", b'{"a"}', b"[", b"{",
    b'"\\x41"', b'"\\u00"', b'"a\tb"', b"NaN", b"Infinity",
])
ANY_JSON: st.SearchStrategy[Raw] = st.one_of(
    st.sampled_from([b"null", b"true", b"false", b"0", b"[]", b"{}", b'"x"', b"[1,2]", b'{"a":null}']),
    ODD_STRINGS, ODD_NUMBERS, deep_value(),
)


# ------------------------------------------------------------------------ field values


def key_text(name: bytes) -> Raw:
    return dumps(base64.b64encode(name).decode())


def _rev_template(draw: st.DrawFn, quoted: bool) -> Raw:
    offset = draw(st.integers(min_value=-3, max_value=3))
    text = f"${{rev{offset:+d}}}".encode()
    return b'"' + text + b'"' if quoted else text


def int_value(draw: st.DrawFn, field: Field) -> Raw:
    if field.name in REVISION_FIELDS and draw(st.booleans()):
        return _rev_template(draw, quoted=draw(st.booleans()))
    if field.name in ("lease", "ID") and draw(st.integers(0, 3)) < 3:
        lease = draw(st.sampled_from((0, *LEASE_IDS)))
        return dumps(str(lease)) if draw(st.booleans()) else dumps(lease)
    if field.name == "TTL":
        # Small TTLs are raised to etcd's minimum; a session lasts far less than that, so none expires.
        ttl = draw(st.sampled_from([3600, 100000, 9_000_000_000, 9_000_000_001, -5, 0, 1, 5]))
        return dumps(ttl)
    number = draw(st.integers(min_value=-3, max_value=5) | st.sampled_from([128, 129, 2**31, 2**63 - 1]))
    return dumps(str(number)) if draw(st.booleans()) else dumps(number)


def enum_value(draw: st.DrawFn, field: Field) -> Raw:
    enum = ENUMS[field.kind]
    names = sorted(enum.values)
    if field.kind == "SortTarget":  # out-of-range numbers crash etcd: names and valid numbers only
        return draw(st.sampled_from([dumps(n) for n in names] + [dumps(v) for v in enum.values.values()]))
    choice = draw(st.integers(0, 5))
    if choice == 5:
        return dumps(draw(st.integers(min_value=-3, max_value=8)))
    if choice == 4:
        return draw(st.sampled_from([b'"ascend"', b'"1"', b'"null"', b'"EQU\\u0041L"', b'" EQUAL"',
                                     dumps(2**31), b"1.0", b"-2147483649"]))
    return dumps(draw(st.sampled_from(names)))


def bytes_value(draw: st.DrawFn, field: Field) -> Raw:
    if field.name in ("key", "range_end") or draw(st.booleans()):
        name = draw(st.sampled_from(KEY_NAMES))
        if field.name == "range_end" and draw(st.integers(0, 2)) == 2:
            return dumps("AA==")
        return key_text(name)
    data = draw(st.binary(max_size=12))
    return dumps(base64.b64encode(data).decode())


def valid_value(draw: st.DrawFn, field: Field, depth: int, noise: int = 2) -> Raw:
    """A value of the field's type that decodes (the server may still refuse it)."""
    if field.repeated:
        count = draw(st.integers(0, 3))
        return b"[" + b",".join(_one_valid(draw, field, depth, noise) for _ in range(count)) + b"]"
    return _one_valid(draw, field, depth, noise)


def _one_valid(draw: st.DrawFn, field: Field, depth: int, noise: int) -> Raw:
    if field.is_message:
        return draw(message_body(field.kind, depth + 1, noise))
    if field.is_enum:
        return enum_value(draw, field)
    if field.kind == "bytes":
        return bytes_value(draw, field)
    if field.kind == "bool":
        return draw(st.sampled_from([b"true", b"false"]))
    if field.kind == "string":
        return dumps(draw(st.text(max_size=5)))
    return int_value(draw, field)


def mutated_value(draw: st.DrawFn, field: Field, depth: int) -> Raw:
    """A value of the wrong type, or of the right type in an odd form."""
    if field.is_message or field.repeated:
        # Not an object (or a list) where one is expected; never null inside a txn list.
        return draw(st.sampled_from([b"1", b'"x"', b"true", b"[]", b"{}", b"[1]", b'[""]', b"[[]]"])
                    | deep_value())
    if field.is_enum and field.kind == "SortTarget":
        return draw(st.sampled_from([b'"key"', b'"null"', b"null", b"true", b"[]", b"{}", b"1.5"]))
    return draw(ANY_JSON | ODD_SYNTAX)


# ------------------------------------------------------------------------ messages


def _spellings(field: Field) -> list[bytes]:
    names = [field.name.encode()]
    camel = lower_camel(field.name)
    if camel != field.name:
        names.append(camel.encode())
    return names


@st.composite
def message_body(draw: st.DrawFn, message: str, depth: int = 0, noise: int = 2) -> Raw:
    """One request message as raw JSON: some of its fields, each valid or mutated, under one or both
    spellings, sometimes twice, null, or next to unknown fields."""
    fields = MESSAGES[message]
    plain = [f for f in fields if not f.oneof]
    oneofs = [f for f in fields if f.oneof]
    chosen = [f for f in plain if f.name == "key" or draw(st.booleans())]
    if oneofs and (message == "RequestOp" or draw(st.booleans())):
        member = draw(st.sampled_from(oneofs))
        # Txn nesting stays shallow unless a deep one is drawn on purpose below.
        if member.kind != "TxnRequest" or depth < 2:
            chosen.append(member)
    pairs: list[tuple[Raw, Raw]] = []
    for field in draw(st.permutations(chosen)):
        names = _spellings(field)
        crash_prone = message == "RequestOp"
        for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2)) if len(names) > 1 \
                else names * draw(st.integers(1, 2)):
            # Hypothesis leans to small draws: 0 is the plain valid value; `noise` in 10 are odd.
            kind = draw(st.integers(0, 9)) if noise else 0
            if kind == 9 and not crash_prone:
                value = b"null"
            elif kind >= 10 - noise:
                value = mutated_value(draw, field, depth)
            else:
                value = valid_value(draw, field, depth, noise)
            pairs.append((dumps(name.decode()), value))
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 4)) == 4 else 0):
        pairs.insert(draw(st.integers(0, len(pairs))),
                     (draw(st.sampled_from([b'"zz"', b'"Key"', b'"KEY"', b'"range-end"', b'"\\u006bey"'])),
                      draw(ANY_JSON)))
    return render_object(pairs)


def deep_txn(depth: int) -> Raw:
    return b'{"success":[{"request_txn":' * depth + b"{}" + b"}]}" * depth


# ------------------------------------------------------------------------ whole requests


@st.composite
def body_for(draw: st.DrawFn, rpc: Rpc) -> bytes:
    shape = draw(st.integers(0, 19))  # 0-13: a message as it is
    if shape == 19:
        return draw(st.sampled_from([b"", b" ", b"null", b"[]", b"1", b'"x"', b"{}", b"{",
                                     b"\xef\xbb\xbf{}"]))
    if shape == 18 and rpc.message == "TxnRequest":
        return deep_txn(draw(st.sampled_from([2, 127, 128, 129, 300, 3000])))
    if shape == 17:
        return draw(deep_value())
    # Per request, how odd its fields are: none (so txn semantics get exercised), some, many.
    body = draw(message_body(rpc.message, noise=draw(st.sampled_from([0, 1, 3]))))
    if rpc.path.endswith("keepalive") and draw(st.integers(0, 3)) == 3:
        # A keepalive body is a stream of request objects, one answer line each.
        body += draw(st.sampled_from([b"", b"\n", b" "])) + draw(message_body(rpc.message, noise=1))
    if shape == 16:  # trailing data: Go's decoder reads the first value only
        body += draw(st.sampled_from([b" ", b"x", b"{}", b"\n{", b"\xff", b"]"]))
    elif shape == 15 and len(body) > 2:  # truncated
        body = body[: draw(st.integers(1, len(body) - 1))]
    elif shape == 14:
        body = b" \t\r\n" + body + b"\n"
    return body


@st.composite
def request(draw: st.DrawFn, rpcs: list[Rpc] = ALL_RPCS) -> Step:
    rpc = draw(st.sampled_from(rpcs))
    body = draw(body_for(rpc))
    content_type = draw(st.sampled_from(CONTENT_TYPES)) if draw(st.integers(0, 5)) == 5 else JSON
    return Step(rpc.path, body, content_type=content_type, expect=None)


SETUP_PUTS = st.lists(st.tuples(st.sampled_from(KEY_NAMES[:4]), st.binary(max_size=3)), max_size=3)


@st.composite
def session(draw: st.DrawFn, rpcs: list[Rpc] = ALL_RPCS) -> list[Step]:
    """A few plain puts (so reads and compares find keys) followed by 1-5 generated requests."""
    steps = [Step("/v3/kv/put", {"key": base64.b64encode(k).decode(), "value": base64.b64encode(v).decode()},
                  expect=200)
             for k, v in draw(SETUP_PUTS)]
    if draw(st.integers(0, 3)) == 0:
        lease = draw(st.sampled_from(LEASE_IDS[:3]))
        steps.append(Step("/v3/lease/grant", {"ID": lease, "TTL": 3600}, expect=200))
    steps.extend(draw(st.lists(request(rpcs), min_size=1, max_size=5)))
    return steps
