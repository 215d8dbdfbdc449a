"""Reading a request body as etcd's gateway does, with Go's encoding/json error texts.

The gateway decodes the first JSON value of the body and ignores anything after it; an empty body
means "all defaults". Clients see Go's messages (`unexpected EOF`, `invalid character 'k' looking for
beginning of object key string`), so malformed input is diagnosed by a small scanner that follows Go's
scanner states. Well-formed bodies take the fast path through orjson.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from typing import Any

import orjson


class JsonSyntaxError(Exception):
    """The body is not JSON; the message is Go's."""


class FloatText(str):
    """A JSON number that is not an integer, kept as its source text (Go quotes it in errors)."""


class RawStr(str):
    """A decoded JSON string that also keeps the text between its quotes, escapes and all."""

    raw: bytes


_WS = b" \t\r\n"
# Go's scanner refuses a value nested deeper than this ("exceeded max depth").
MAX_DEPTH = 10000
# Parsing and decoding recurse once per nesting level (a few frames each); with MAX_DEPTH bounding
# the depth, this limit makes a RecursionError impossible. Python 3.11 runs Python-to-Python calls
# without growing the C stack, so a high limit costs nothing until it is used.
_RECURSION_NEEDED = 8 * MAX_DEPTH + 1000
if sys.getrecursionlimit() < _RECURSION_NEEDED:
    sys.setrecursionlimit(_RECURSION_NEEDED)


def _go_replace(exc: UnicodeError) -> tuple[str, int]:
    """Go replaces every byte of invalid UTF-8 with U+FFFD (Python's "replace" does so per sequence)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd" * (exc.end - exc.start), exc.end


codecs.register_error("go-replace", _go_replace)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def go_unquote(text: bytes) -> str:
    """The contents of a JSON string (between the quotes) as Go decodes them: invalid UTF-8 and
    lone surrogate escapes (`\\ud800`) become U+FFFD."""
    decoded = text.decode("utf-8", "go-replace")
    if "\\" not in decoded:
        return decoded
    # json.loads pairs valid surrogate escapes; any surrogate left over is a lone one.
    return _LONE_SURROGATE.sub("\ufffd", json.loads('"' + decoded + '"'))


def parse_body(body: bytes) -> Any:
    """The first JSON value of `body` (None for an empty body), or JsonSyntaxError with Go's text."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        pass
    return parse_exact(body)


def parse_exact(body: bytes) -> Any:
    """Slow path: the first value only; ints of any size exact, non-integers as FloatText and strings
    as RawStr, which remembers its source text (jsonpb parses string-encoded integers from it)."""
    if not body.strip(_WS):
        return None
    return _Scanner(body).parse()


def parse_number_text(text: bytes) -> Any:
    """Parse a whole buffer as one JSON value, as Go's json.Unmarshal does (trailing data is an error).

    jsonpb decodes an int64 given as a string by unmarshalling the string's contents, so `"abc"` and
    `"0x10"` fail with these scanner messages.
    """
    scanner = _Scanner(text, whole=True)
    value = scanner.parse()
    rest = text[scanner.pos :].lstrip(_WS)
    if rest:
        raise JsonSyntaxError(f"invalid character {quote_char(rest[0])} after top-level value")
    return value


def quote_char(c: int) -> str:
    """Go's scanner quoteChar: a byte shown as a quoted rune."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    if c == ord("\\"):
        return "'\\\\'"
    ch = chr(c)
    if ch.isprintable():
        return f"'{ch}'"
    return "'" + json.dumps(ch)[1:-1].replace("\\u00", "\\x") + "'"


class _Scanner:
    """Go's JSON scanner states, building Python values as it goes.

    `whole` mimics json.Unmarshal (the buffer is one value; the end of input inside a number or
    literal is reported as a space, elsewhere as "unexpected end of JSON input"); otherwise it mimics
    json.Decoder reading the first value of a stream ("unexpected EOF").
    """

    def __init__(self, data: bytes, whole: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.whole = whole
        self.depth = 0

    def parse(self) -> Any:
        self._skip_ws()
        return self._value()

    def _skip_ws(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] in _WS:
            self.pos += 1

    def _peek(self, token: str = "") -> int:
        if self.pos >= len(self.data):
            if not self.whole:
                raise JsonSyntaxError("unexpected EOF")
            if token:
                raise JsonSyntaxError(f"invalid character ' ' {token}")
            raise JsonSyntaxError("unexpected end of JSON input")
        return self.data[self.pos]

    def _fail(self, context: str) -> JsonSyntaxError:
        return JsonSyntaxError(f"invalid character {quote_char(self.data[self.pos])} {context}")

    def _value(self) -> Any:
        c = self._peek()
        if c == ord("{"):
            return self._object()
        if c == ord("["):
            return self._array()
        if c == ord('"'):
            return self._string()
        if c == ord("-") or ord("0") <= c <= ord("9"):
            return self._number()
        if c in b"tfn":
            return self._literal()
        raise self._fail("looking for beginning of value")

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail("exceeded max depth")

    def _object(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self._enter()
        self.pos += 1
        self._skip_ws()
        if self._peek() == ord("}"):
            self.pos += 1
            self.depth -= 1
            return out
        while True:
            self._skip_ws()
            if self._peek() != ord('"'):
                raise self._fail("looking for beginning of object key string")
            key = str(self._string())
            self._skip_ws()
            if self._peek() != ord(":"):
                raise self._fail("after object key")
            self.pos += 1
            self._skip_ws()
            out[key] = self._value()
            self._skip_ws()
            c = self._peek()
            if c == ord(","):
                self.pos += 1
                continue
            if c == ord("}"):
                self.pos += 1
                self.depth -= 1
                return out
            raise self._fail("after object key:value pair")

    def _array(self) -> list[Any]:
        out: list[Any] = []
        self._enter()
        self.pos += 1
        self._skip_ws()
        if self._peek() == ord("]"):
            self.pos += 1
            self.depth -= 1
            return out
        while True:
            self._skip_ws()
            out.append(self._value())
            self._skip_ws()
            c = self._peek()
            if c == ord(","):
                self.pos += 1
                continue
            if c == ord("]"):
                self.pos += 1
                self.depth -= 1
                return out
            raise self._fail("after array element")

    def _string(self) -> RawStr:
        start = self.pos
        self.pos += 1
        while True:
            c = self._peek()
            if c == ord('"'):
                self.pos += 1
                text = self.data[start : self.pos]
                value = RawStr(go_unquote(text[1:-1]))
                value.raw = text[1:-1]
                return value
            if c == ord("\\"):
                self.pos += 1
                e = self._peek()
                if e == ord("u"):
                    self.pos += 1
                    for _ in range(4):
                        h = self._peek()
                        if chr(h) not in "0123456789abcdefABCDEF":
                            raise self._fail("in \\u hexadecimal character escape")
                        self.pos += 1
                    continue
                if e not in b'"\\/bfnrt':
                    raise self._fail("in string escape code")
                self.pos += 1
                continue
            if c < 0x20:
                raise self._fail("in string literal")
            self.pos += 1

    def _number(self) -> int | FloatText:
        start = self.pos
        if self._peek() == ord("-"):
            self.pos += 1
            c = self._peek("in numeric literal")
            if not ord("0") <= c <= ord("9"):
                raise self._fail("in numeric literal")
        integer = True
        if self._peek() == ord("0"):
            self.pos += 1
        else:
            self._digits()
        if self._at(b"."):
            integer = False
            self.pos += 1
            if not self._at_digit():
                self._peek("after decimal point in numeric literal")
                raise self._fail("after decimal point in numeric literal")
            self._digits()
        if self._at(b"eE"):
            integer = False
            self.pos += 1
            if self._at(b"+-"):
                self.pos += 1
            if not self._at_digit():
                self._peek("in exponent of numeric literal")
                raise self._fail("in exponent of numeric literal")
            self._digits()
        text = self.data[start : self.pos].decode("ascii")
        return int(text) if integer else FloatText(text)

    def _at(self, chars: bytes) -> bool:
        return self.pos < len(self.data) and self.data[self.pos] in chars

    def _at_digit(self) -> bool:
        return self.pos < len(self.data) and ord("0") <= self.data[self.pos] <= ord("9")

    def _digits(self) -> None:
        while self._at_digit():
            self.pos += 1

    def _literal(self) -> bool | None:
        word = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}[self.data[self.pos]]
        for expected in word:
            context = f"in literal {word.decode()} (expecting {quote_char(expected)})"
            if self._peek(context) != expected:
                raise self._fail(context)
            self.pos += 1
        return {b"true": True, b"false": False, b"null": None}[word]
