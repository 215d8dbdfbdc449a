"""Edge cases of etcd's JSON decoding (Go encoding/json + jsonpb), beyond gateway-api.md §4.3.

int64 fields given as strings are parsed as JSON number text by Go, so Python's int() is too lenient
(it takes "+1", "1_0", "01"); Go's base64 skips CR/LF but nothing else. Each body runs after two
writes under the case prefix, and the final whole-keyspace range shows nothing else was written.

Placeholders in bodies: @KEY = the case's key 'a', @PFX / @END = its prefix range.
Deliberately absent, because etcd 3.4.23 has no answer to compare: a negative sort_target with a
sort_order crashes the etcd process (nil pointer in the range handler), and a null entry in a txn list
(`{"success":[null]}`, `{"compare":[null]}`) drops the connection without a response.
"""

from __future__ import annotations

from functools import partial

from tests.conformance.harness import Keys, Registry, Step
from tests.conformance.steps import put

RANGE = "/v3/kv/range"
PUT = "/v3/kv/put"

# (case id, path, body, status etcd answers)
TABLE: list[tuple[str, str, str, int]] = [
    ("int64-string-leading-zero", RANGE, '{"key":@KEY,"limit":"01"}', 400),
    ("int64-number-leading-zero", RANGE, '{"key":@KEY,"limit":01}', 400),
    ("int64-string-plus-sign", RANGE, '{"key":@KEY,"limit":"+1"}', 400),
    ("int64-string-underscore", RANGE, '{"key":@KEY,"limit":"1_0"}', 400),
    ("int64-string-empty", RANGE, '{"key":@KEY,"limit":""}', 400),
    ("int64-string-minus-only", RANGE, '{"key":@KEY,"limit":"-"}', 400),
    ("int64-string-escaped-digit", RANGE, '{"key":@KEY,"limit":"\\u0031"}', 400),
    ("int64-string-fullwidth-digit", RANGE, '{"key":@KEY,"limit":"\uff11"}', 400),
    ("int64-string-exponent", RANGE, '{"key":@KEY,"limit":"1e2"}', 400),
    ("int64-number-one-point-zero", RANGE, '{"key":@KEY,"limit":1.0}', 400),
    ("int64-string-zero-point-zero", RANGE, '{"key":@KEY,"limit":"0.0"}', 400),
    ("int64-underflow", RANGE, '{"key":@KEY,"limit":-9223372036854775809}', 400),
    ("int64-object", RANGE, '{"key":@KEY,"limit":{}}', 400),
    ("int64-array", RANGE, '{"key":@KEY,"limit":[]}', 400),
    ("int64-string-padded", RANGE, '{"key":@PFX,"range_end":@END,"limit":" 1"}', 200),
    ("int64-string-trailing-space", RANGE, '{"key":@PFX,"range_end":@END,"limit":"1 "}', 200),
    ("int64-string-max", RANGE, '{"key":@PFX,"range_end":@END,"limit":"9223372036854775807"}', 200),
    ("int64-negative-zero", RANGE, '{"key":@PFX,"range_end":@END,"limit":-0,"revision":"-0"}', 200),
    ("int64-negative-revision", RANGE, '{"key":@PFX,"range_end":@END,"revision":-5}', 200),
    ("bool-string-true", RANGE, '{"key":@KEY,"count_only":"true"}', 400),
    ("bool-string-false", RANGE, '{"key":@KEY,"serializable":"false"}', 400),
    ("enum-trailing-space", RANGE, '{"key":@KEY,"sort_order":"ASCEND "}', 400),
    ("enum-bool", RANGE, '{"key":@KEY,"sort_order":true}', 400),
    ("enum-fraction", RANGE, '{"key":@KEY,"sort_order":1.5}', 400),
    ("enum-numeric-string", RANGE, '{"key":@KEY,"sort_order":"2"}', 400),
    ("enum-out-of-range-number", RANGE, '{"key":@PFX,"range_end":@END,"sort_order":7}', 200),
    ("bytes-object", RANGE, '{"key":{}}', 400),
    ("bytes-bool", RANGE, '{"key":true}', 400),
    ("bytes-number-range-end", RANGE, '{"key":@KEY,"range_end":1}', 400),
    ("bytes-non-ascii", PUT, '{"key":"\u00e9","value":"YmFy"}', 400),
    ("base64-inner-space", PUT, '{"key":"Zm9v YmFy","value":"YmFy"}', 400),
    ("base64-extra-padding", PUT, '{"key":"Zm9v=","value":"YmFy"}', 400),
    ("base64-noncanonical-bits", PUT, '{"key":"Zm9=","value":"YmFy"}', 200),
    ("base64-escaped-letter", RANGE, '{"key":"\\u005a' + '@KEY_TAIL"}', 200),
    ("json-trailing-comma", RANGE, '{"key":@KEY,}', 400),
    ("json-single-quotes", RANGE, "{'key':'Zm9v'}", 400),
    ("json-extra-closing-brace", RANGE, '{"key":@KEY}}', 200),
    ("json-whitespace-only-body", RANGE, " \n", 400),
]


def fill(body: str, k: Keys) -> str:
    key = k("a")
    return (body.replace("@KEY_TAIL", key[1:]).replace("@KEY", f'"{key}"')
            .replace("@PFX", f'"{k()}"').replace("@END", f'"{k.end}"'))


def decoding_case(k: Keys, path: str, body: str, expect: int) -> list[Step]:
    return [put(k("a"), "1"), put(k("b"), "2"), Step(path, fill(body, k), expect=expect)]


def base64_line_breaks(k: Keys) -> list[Step]:
    key = k("a")
    # JSON "\n" / "\r\n" escapes put real line breaks into the base64 text; Go's decoder skips them.
    return [put(k("a"), "1"),
            Step(RANGE, f'{{"key":"{key[:4]}\\n{key[4:]}"}}'),
            Step(RANGE, f'{{"key":"{key[:4]}\\r\\n{key[4:]}\\n"}}'),
            Step(PUT, f'{{"key":"{key}","value":"Mj\\nI="}}')]


def register(reg: Registry) -> None:
    for case_id, path, body, expect in TABLE:
        reg.add(f"decode-{case_id}", partial(decoding_case, path=path, body=body, expect=expect))
    reg.add("decode-base64-line-breaks", base64_line_breaks, "CR and LF inside base64 are skipped")
