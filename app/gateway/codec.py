"""The one codec for etcd's JSON conventions.

Requests: each field under its proto name or lowerCamelCase name (the latter wins when both are given),
int64 as number or string (`"null"` = zero), bytes as padded standard base64, enums by name or any int32,
unknown fields ignored, `null` = absent (but a null oneof member is set); failures carry the Go texts
etcd's gateway gives, first for the first field jsonpb decodes. Responses: proto field order, int64 as
strings, bytes as base64, enums by name, zero values omitted, compact.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson

from etcdpy.app.gateway.json_body import (
    FloatText,
    JsonSyntaxError,
    RawStr,
    parse_body,
    parse_exact,
    parse_number_text,
)
from etcdpy.app.gateway.schema import ENUMS, MESSAGES, Field
from etcdpy.app.go_quote import go_quote
from etcdpy.storage.kv_types import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResult,
    KeyValue,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    RequestOp,
    TxnRequest,
    TxnResult,
)

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class DecodeError(Exception):
    """A request body that cannot be decoded; the message is the one etcd's gateway gives."""


class _NeedExactParse(Exception):
    """A float reached an integer field: the error must quote its source text, so parse exactly."""


_GO_INT_TYPE = {"int64": "int64", "uint64": "uint64", "int32": "int32", "uint32": "uint32"}
_INT_BOUNDS = {
    "int64": (INT64_MIN, INT64_MAX),
    "uint64": (0, UINT64_MAX),
    "int32": (INT32_MIN, INT32_MAX),
    "uint32": (0, 2**32 - 1),
}


def _json_type(raw: Any) -> str:
    if isinstance(raw, FloatText):
        return "number"
    if isinstance(raw, bool):
        return "bool"
    if isinstance(raw, (int, float)):
        return "number"
    if isinstance(raw, str):
        return "string"
    if isinstance(raw, list):
        return "array"
    return "object"


def _type_error(raw: Any, go_type: str) -> DecodeError:
    return DecodeError(f"json: cannot unmarshal {_json_type(raw)} into Go value of type {go_type}")


# ---------------------------------------------------------------------------- scalars


def decode_base64(text: str) -> bytes:
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        data = None
    # Python's strict decoder still accepts some over-padded input that Go rejects ("Zm9v="); only
    # whole quanta take the fast path.
    if data is not None and len(data) % 4 == 0:
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            pass
    offset = _base64_error_offset(text)
    if offset is None:  # only line breaks, which Go's decoder skips
        return base64.b64decode(text.replace("\r", "").replace("\n", ""))
    raise DecodeError(f"illegal base64 data at input byte {offset}")


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_error_offset(text: str) -> int | None:
    """The offset Go's base64.StdEncoding reports for `text`, or None if Go would accept it."""
    chars = [(i, c) for i, c in enumerate(text.encode("utf-8", "surrogateescape").decode("latin-1"))
             if c not in "\r\n"]
    pos = 0
    while pos < len(chars):
        quantum = chars[pos : pos + 4]
        for j, (offset, c) in enumerate(quantum):
            if c == "=":
                if j < 2:
                    return offset
                if j == 2 and (len(quantum) < 4 or quantum[3][1] != "="):
                    return quantum[3][0] if len(quantum) == 4 else len(text)
                if pos + 4 < len(chars):
                    return chars[pos + 4][0]  # data after padding
                return None
            if c not in _B64_ALPHABET:
                return offset
        if len(quantum) < 4:
            return quantum[0][0]
        pos += 4
    return None


def _decode_int(raw: Any, kind: str, go_type: str = "") -> int:
    go_type = go_type or _GO_INT_TYPE[kind]
    if isinstance(raw, bool) or isinstance(raw, (list, dict)):
        raise _type_error(raw, go_type)
    if isinstance(raw, str) and not isinstance(raw, FloatText):
        # jsonpb strips the quotes of a string-encoded integer and parses the text between them, as
        # it stands (escapes included), as one JSON value.
        text = raw.raw if isinstance(raw, RawStr) else raw.encode("utf-8")
        try:
            raw = parse_number_text(text)
        except JsonSyntaxError as exc:
            raise DecodeError(str(exc)) from None
        if raw is None:  # `"null"`: Go unmarshals the text null into an integer as "leave it zero"
            return 0
        if isinstance(raw, str) and not isinstance(raw, FloatText):
            raise _type_error(raw, go_type)
        return _decode_int(raw, kind, go_type)
    if isinstance(raw, float):
        raise _NeedExactParse()
    low, high = _INT_BOUNDS[kind]
    if isinstance(raw, FloatText) or not low <= raw <= high:
        raise DecodeError(f"json: cannot unmarshal number {raw} into Go value of type {go_type}")
    return int(raw)


def _decode_byte_list(items: list[Any]) -> bytes:
    """Go decodes a JSON array into []byte element by element, each a uint8."""
    out = bytearray()
    for item in items:
        if isinstance(item, float):
            raise _NeedExactParse()
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255:
            out.append(item)
        elif isinstance(item, (int, FloatText)) and not isinstance(item, bool):
            raise DecodeError(f"json: cannot unmarshal number {item} into Go value of type uint8")
        else:
            raise _type_error(item, "uint8")
    return bytes(out)


def _decode_scalar(raw: Any, kind: str) -> Any:
    if kind == "bytes":
        if isinstance(raw, list):
            return _decode_byte_list(raw)
        if not isinstance(raw, str) or isinstance(raw, FloatText):
            raise _type_error(raw, "[]uint8")
        return decode_base64(raw)
    if kind == "bool":
        if not isinstance(raw, bool):
            raise _type_error(raw, "bool")
        return raw
    if kind == "string":
        if not isinstance(raw, str) or isinstance(raw, FloatText):
            raise _type_error(raw, "string")
        return raw
    return _decode_int(raw, kind)


def _decode_enum(raw: Any, kind: str) -> int:
    enum = ENUMS[kind]
    if isinstance(raw, str) and not isinstance(raw, FloatText):
        # jsonpb looks the name up by the bytes between the quotes, escapes not undone.
        text = raw.raw if isinstance(raw, RawStr) else raw.encode("utf-8")
        value = enum.values.get(text.decode("utf-8", "replace"))
        if value is None:
            raise DecodeError(f"unknown value {go_quote(text)} for enum {enum.go_name}")
        return value
    if isinstance(raw, (bool, list, dict)):
        raise _type_error(raw, enum.go_name)
    return _decode_int(raw, "int32", enum.go_name)


# ---------------------------------------------------------------------------- messages


def decode_message(obj: Any, name: str) -> dict[str, Any]:
    """Decode a JSON object into {proto field name: value} for the fields present (not null)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise _type_error(obj, "map[string]json.RawMessage")
    out: dict[str, Any] = {}
    # jsonpb decodes the plain fields in declaration order, then the oneof members, so the first error
    # reported is the first such field's. Given both spellings of a field it takes the lowerCamelCase
    # one, whatever its value (null included) and wherever it stands.
    for field in _DECODE_ORDER[name]:
        if field.json_name in obj:
            raw = obj[field.json_name]
        elif field.name in obj:
            raw = obj[field.name]
        else:
            continue
        if raw is None:
            if field.oneof and not field.is_message:
                # A oneof member given as null is still the member that is set, holding its zero value.
                out[field.name] = b"" if field.kind == "bytes" else 0
            continue
        out[field.name] = _decode_field(raw, field)
    return out


def _decode_order(fields: list[Field]) -> list[Field]:
    return [f for f in fields if not f.oneof] + [f for f in fields if f.oneof]


_DECODE_ORDER = {name: _decode_order(fields) for name, fields in MESSAGES.items()}


def _decode_field(raw: Any, field: Field) -> Any:
    if field.repeated:
        if not isinstance(raw, list):
            raise _type_error(raw, "[]json.RawMessage")
        return [_decode_one(item, field) for item in raw]
    return _decode_one(raw, field)


def _decode_one(raw: Any, field: Field) -> Any:
    if field.is_scalar:
        return _decode_scalar(raw, field.kind)
    if field.is_enum:
        return _decode_enum(raw, field.kind)
    return decode_message(raw, field.kind)


def decode_request(body: bytes, name: str) -> dict[str, Any]:
    """Parse and decode a whole request body (the first JSON value in it)."""
    try:
        if b"\\" in body:
            # Escapes matter to jsonpb's string-encoded integers; only the exact parser keeps them.
            return decode_message(parse_exact(body), name)
        try:
            return decode_message(parse_body(body), name)
        except _NeedExactParse:
            return decode_message(parse_exact(body), name)
    except JsonSyntaxError as exc:
        raise DecodeError(str(exc)) from None


# ------------------------------------------------------------------ domain requests


def range_request(d: dict[str, Any]) -> RangeRequest:
    return RangeRequest(**d)


def put_request(d: dict[str, Any]) -> PutRequest:
    return PutRequest(**d)


def delete_request(d: dict[str, Any]) -> DeleteRangeRequest:
    return DeleteRangeRequest(**d)


def compaction_request(d: dict[str, Any]) -> CompactionRequest:
    return CompactionRequest(**d)


_COMPARE_UNION = ("version", "create_revision", "mod_revision", "value", "lease")


def compare(d: dict[str, Any]) -> Compare:
    cmp = Compare(
        result=d.get("result", 0), target=d.get("target", 0), key=d.get("key", b""),
        range_end=d.get("range_end", b""),
    )
    for name in _COMPARE_UNION:
        if name in d:
            cmp.union, cmp.operand = name, d[name]
    return cmp


def request_op(d: dict[str, Any]) -> RequestOp:
    if "request_range" in d:
        return range_request(d["request_range"])
    if "request_put" in d:
        return put_request(d["request_put"])
    if "request_delete_range" in d:
        return delete_request(d["request_delete_range"])
    if "request_txn" in d:
        return txn_request(d["request_txn"])
    return None


def txn_request(d: dict[str, Any]) -> TxnRequest:
    return TxnRequest(
        compare=[compare(c) for c in d.get("compare", ())],
        success=[request_op(op) for op in d.get("success", ())],
        failure=[request_op(op) for op in d.get("failure", ())],
    )


# ------------------------------------------------------------------ proto sizing


def varint_size(value: int) -> int:
    if value < 0:
        return 10
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def proto_size(d: dict[str, Any], name: str) -> int:
    """Size of the message as protobuf would encode it (etcd's request limits count these bytes)."""
    total = 0
    for field in MESSAGES[name]:
        if field.name not in d:
            continue
        values = d[field.name] if field.repeated else [d[field.name]]
        for value in values:
            tag = varint_size(field.number << 3)
            if field.kind in ("bytes", "string"):
                n = len(value)
                if n or field.oneof:
                    total += tag + varint_size(n) + n
            elif field.kind == "bool":
                total += tag + 1 if value else 0
            elif field.is_message:
                n = proto_size(value, field.kind)
                total += tag + varint_size(n) + n
            elif value or field.oneof:
                total += tag + varint_size(value)
    return total


# ------------------------------------------------------------------ responses


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kv_json(kv: KeyValue) -> dict[str, Any]:
    out: dict[str, Any] = {"key": b64(kv.key)}
    if kv.create_revision:
        out["create_revision"] = str(kv.create_revision)
    if kv.mod_revision:
        out["mod_revision"] = str(kv.mod_revision)
    if kv.version:
        out["version"] = str(kv.version)
    if kv.value:
        out["value"] = b64(kv.value)
    if kv.lease:
        out["lease"] = str(kv.lease)
    return out


def range_json(res: RangeResult, header: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header}
    if res.kvs:
        out["kvs"] = [kv_json(kv) for kv in res.kvs]
    if res.more:
        out["more"] = True
    if res.count:
        out["count"] = str(res.count)
    return out


def put_json(res: PutResult, header: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header}
    if res.prev_kv is not None:
        out["prev_kv"] = kv_json(res.prev_kv)
    return out


def delete_json(res: DeleteRangeResult, header: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header}
    if res.deleted:
        out["deleted"] = str(res.deleted)
    if res.prev_kvs:
        out["prev_kvs"] = [kv_json(kv) for kv in res.prev_kvs]
    return out


def txn_json(res: TxnResult, header: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header}
    if res.succeeded:
        out["succeeded"] = True
    if res.responses:
        out["responses"] = [_response_op(r) for r in res.responses]
    return out


def _response_op(res: RangeResult | PutResult | DeleteRangeResult | TxnResult) -> dict[str, Any]:
    # Inside a txn each response's header carries only the revision as that op saw it; a nested txn's
    # header is empty.
    if isinstance(res, TxnResult):
        return {"response_txn": txn_json(res, {})}
    header = {"revision": str(res.revision)}
    if isinstance(res, RangeResult):
        return {"response_range": range_json(res, header)}
    if isinstance(res, PutResult):
        return {"response_put": put_json(res, header)}
    return {"response_delete_range": delete_json(res, header)}


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        # orjson stops at 255 levels; a txn nested 128 deep (etcd's limit) answers ~390 levels deep.
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_json(message: str, code: int) -> bytes:
    return orjson.dumps({"error": message, "message": message, "code": code})


def stream_error_json(message: str, code: int, http_status: int, reason: str) -> bytes:
    """A server stream's own error (not its request's), as grpc-gateway v1 words it."""
    return orjson.dumps({"error": {"grpc_code": code, "http_code": http_status, "message": message,
                                   "http_status": reason}})
