"""etcdctl's txn input language: compares, then success ops, then failure ops, each block ended by a
blank line.

Compares look like ``mod("key") > "5"`` (targets ver/version, c/create, m/mod, val/value, lease; ops
``=`` ``!=`` ``<`` ``>``); ops are ``get``/``put``/``del`` command lines with their own flags, split the
way etcdctl's ``argify`` splits them. Messages and exit codes follow etcdctl's txn_command.go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO

from etcdpy.app.ctl.client import JSON, CtlError, b64
from etcdpy.app.ctl.context import EXIT_INVALID_INPUT

_ARG = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\'"\s]\S*[^\'"\s]?')
_COMPARE = re.compile(r'^("(?:[^"\\]|\\.)*")\)\s+(\S+)\s+("(?:[^"\\]|\\.)*")')
_RESULTS = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
            '"': '"', "'": "'"}


def go_unquote(text: str) -> str:
    """strconv.Unquote of a double-quoted Go string literal (the escapes etcdctl users write)."""
    body = text[1:-1]
    out: list[str] = []
    idx = 0
    while idx < len(body):
        ch = body[idx]
        if ch != "\\":
            out.append(ch)
            idx += 1
            continue
        nxt = body[idx + 1] if idx + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            idx += 2
        elif nxt == "x":
            out.append(chr(int(body[idx + 2: idx + 4], 16)))
            idx += 4
        elif nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            out.append(chr(int(body[idx + 2: idx + 2 + width], 16)))
            idx += 2 + width
        else:
            raise CtlError("invalid syntax", EXIT_INVALID_INPUT)
    return "".join(out)


def argify(line: str) -> list[str]:
    args = _ARG.findall(line)
    result = []
    for arg in args:
        if arg.startswith("'"):
            # etcdctl slices with len(args) instead of len(args[i]); kept for identical behaviour.
            arg = arg[1: len(args) - 1]
        elif arg.startswith('"'):
            arg = go_unquote(arg)
        result.append(arg)
    return result


def parse_compare(line: str) -> JSON:
    target, paren, rest = line.partition("(")
    if not paren:
        raise CtlError(f"malformed comparison: {line}", EXIT_INVALID_INPUT)
    match = _COMPARE.match(rest)
    if not match:
        raise CtlError(f"malformed comparison: {line}", EXIT_INVALID_INPUT)
    key, op, value = go_unquote(match.group(1)), match.group(2), go_unquote(match.group(3))
    if op not in _RESULTS:
        raise CtlError(f"malformed comparison: {line} (unknown op {op})", EXIT_INVALID_INPUT)
    cmp: JSON = {"result": _RESULTS[op], "key": b64(key.encode("utf-8", "surrogateescape"))}
    fields = {"ver": ("VERSION", "version"), "version": ("VERSION", "version"),
              "c": ("CREATE", "create_revision"), "create": ("CREATE", "create_revision"),
              "m": ("MOD", "mod_revision"), "mod": ("MOD", "mod_revision"),
              "val": ("VALUE", "value"), "value": ("VALUE", "value"), "lease": ("LEASE", "lease")}
    if target not in fields:
        raise CtlError(f"malformed comparison: {line} (unknown target {target})", EXIT_INVALID_INPUT)
    name, field = fields[target]
    cmp["target"] = name
    if name == "VALUE":
        cmp[field] = b64(value.encode("utf-8", "surrogateescape"))
    else:
        try:
            number = int(value, 16) if name == "LEASE" else int(value)
        except ValueError:
            raise CtlError(f"malformed comparison: {line} (strconv.ParseInt: parsing {value!r}: "
                           "invalid syntax)", EXIT_INVALID_INPUT) from None
        cmp[field] = str(number)
    return cmp


def read_block(stream: IO[str], parse: Callable[[str], JSON]) -> list[JSON]:
    """Parse lines up to the next blank line, each as soon as it is read (a bad line fails before
    the input ends, as in etcdctl); end of input before the blank line is ``Error: EOF``."""
    items: list[JSON] = []
    while True:
        line = stream.readline()
        if not line.endswith("\n"):
            raise CtlError("EOF", EXIT_INVALID_INPUT)
        if line == "\n":
            return items
        items.append(parse(line.rstrip("\n")))


OpBuilder = Callable[[list[str]], JSON]


def parse_txn(stream: IO[str], interactive: bool, build_op: OpBuilder,
              prompt: Callable[[str], None]) -> JSON:
    """Read the three blocks and return the gateway's txn request body."""
    if interactive:
        prompt("compares:\n")
    compares = read_block(stream, parse_compare)
    if interactive:
        prompt("success requests (get, put, del):\n")
    success = read_block(stream, lambda line: _op(line, build_op))
    if interactive:
        prompt("failure requests (get, put, del):\n")
    failure = read_block(stream, lambda line: _op(line, build_op))
    body: JSON = {}
    if compares:
        body["compare"] = compares
    if success:
        body["success"] = success
    if failure:
        body["failure"] = failure
    return body


def _op(line: str, build_op: OpBuilder) -> JSON:
    args = argify(line)
    if len(args) < 2:
        raise CtlError(f"invalid txn compare request: {line}", EXIT_INVALID_INPUT)
    return build_op(args)
