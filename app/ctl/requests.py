"""Building gateway request bodies from get/put/del arguments, shared by those commands and by txn.

The argument checks and their messages are etcdctl's (getGetOp, getPutOp, getDelOp), so a bad ``put``
inside a txn fails the same way a bad ``put`` command does.
"""

from __future__ import annotations

import sys
from typing import Any

from etcdpy.app.ctl.client import JSON, CtlError, b64
from etcdpy.app.ctl.context import bad_args, parse_hex_id
from etcdpy.app.ctl.printers import EXIT_BAD_FEATURE, prefix_end

TOO_MANY = "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"
SORT_TARGETS = {"KEY": "KEY", "CREATE": "CREATE", "MODIFY": "MOD", "VALUE": "VALUE", "VERSION": "VERSION"}


def arg_bytes(text: str) -> bytes:
    # Command-line words arrive decoded with surrogateescape; give the server the original bytes.
    return text.encode("utf-8", "surrogateescape")


def range_end(key: bytes, prefix: bool, from_key: bool) -> tuple[bytes, bytes | None]:
    if prefix:
        if not key:
            return b"\x00", b"\x00"
        return key, prefix_end(key)
    if from_key:
        return (key or b"\x00"), b"\x00"
    return key, None


def get_request(args: tuple[str, ...], p: dict[str, Any]) -> JSON:
    if not args:
        raise bad_args("get command needs one argument as key and an optional argument as range_end")
    if p.get("prefix") and p.get("from_key"):
        raise bad_args("`--prefix` and `--from-key` cannot be set at the same time, choose one")
    key = arg_bytes(args[0])
    req: JSON = {}
    end: bytes | None = None
    if len(args) > 1:
        if p.get("prefix") or p.get("from_key"):
            raise bad_args(TOO_MANY)
        end = arg_bytes(args[1])
    consistency = p.get("consistency", "l")
    if consistency == "s":
        req["serializable"] = True
    elif consistency != "l":
        raise CtlError(f'unknown consistency flag "{consistency}"', EXIT_BAD_FEATURE)
    order = (p.get("order") or "").upper()
    if order not in ("", "ASCEND", "DESCEND"):
        raise CtlError(f"bad sort order {p.get('order')}", EXIT_BAD_FEATURE)
    target = (p.get("sort_by") or "").upper()
    if target and target not in SORT_TARGETS:
        raise CtlError(f"bad sort target {p.get('sort_by')}", EXIT_BAD_FEATURE)
    key, pend = range_end(key, bool(p.get("prefix")), bool(p.get("from_key")))
    end = pend if pend is not None else end
    req["key"] = b64(key)
    if end is not None:
        req["range_end"] = b64(end)
    if p.get("limit"):
        req["limit"] = str(p["limit"])
    if p.get("rev"):
        req["revision"] = str(p["rev"])
    sort_target = SORT_TARGETS.get(target, "KEY")
    # clientv3.WithSort turns (KEY, ASCEND) into the default order, so it is not sent.
    if order and not (sort_target == "KEY" and order == "ASCEND"):
        req["sort_order"] = order
    if sort_target != "KEY":
        req["sort_target"] = sort_target
    if p.get("keys_only"):
        req["keys_only"] = True
    if p.get("count_only"):
        req["count_only"] = True
    return req


def put_request(args: tuple[str, ...], p: dict[str, Any]) -> JSON:
    message = "put command needs 1 argument and input from stdin or 2 arguments"
    if not args:
        raise bad_args(message)
    if p.get("ignore_value") and len(args) > 1:
        raise bad_args("put command needs only 1 argument when 'ignore-value' is set.")
    req: JSON = {"key": b64(arg_bytes(args[0]))}
    if not p.get("ignore_value"):
        if len(args) > 1:
            value = arg_bytes(args[1])
        else:
            value = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
            if not value:
                raise bad_args(message)
        if value:
            req["value"] = b64(value)
    lease = p.get("lease") or "0"
    lease_id = parse_hex_id(lease, "lease")
    if lease_id:
        req["lease"] = str(lease_id)
    for flag in ("prev_kv", "ignore_value", "ignore_lease"):
        if p.get(flag):
            req[flag] = True
    return req


def del_request(args: tuple[str, ...], p: dict[str, Any]) -> JSON:
    if not args:
        raise bad_args("del command needs one argument as key and an optional argument as range_end")
    if p.get("prefix") and p.get("from_key"):
        raise bad_args("`--prefix` and `--from-key` cannot be set at the same time, choose one")
    key = arg_bytes(args[0])
    end: bytes | None = None
    if len(args) > 1:
        if p.get("prefix") or p.get("from_key"):
            raise bad_args(TOO_MANY)
        end = arg_bytes(args[1])
    key, pend = range_end(key, bool(p.get("prefix")), bool(p.get("from_key")))
    end = pend if pend is not None else end
    req: JSON = {"key": b64(key)}
    if end is not None:
        req["range_end"] = b64(end)
    if p.get("prev_kv"):
        req["prev_kv"] = True
    return req
