"""Request decoding, bad input and HTTP transport cases (gateway-api.md §1, §2.2, §4.3, §11).

Every case ends with the harness's whole-keyspace range, which shows that a rejected request wrote
nothing (same keys, same relative revision on both servers).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from tests.conformance.harness import Keys, Registry, Step, b64
from tests.conformance.steps import put, rng

RANGE = "/v3/kv/range"
PUT = "/v3/kv/put"
CORS_PREFLIGHT = (("Origin", "http://example.test"), ("Access-Control-Request-Method", "POST"))
MAX_REQUEST_BYTES = 1_572_864


def raw(path: str, body: bytes | str, expect: int | None = 400, **kw: Any) -> Step:
    return Step(path, body, expect=expect, **kw)


def seeded(k: Keys, *steps: Step) -> list[Step]:
    """Write one key first, so a later error has state (and a revision) that it must not change."""
    return [put(k("a"), "1"), *steps]


def seeded_error(k: Keys, path: str, body: bytes | str) -> list[Step]:
    return seeded(k, raw(path, body))


def register(reg: Registry) -> None:
    register_json_errors(reg)
    register_field_forms(reg)
    register_transport(reg)
    register_sizes(reg)


def register_json_errors(reg: Registry) -> None:
    cases: list[tuple[str, str, bytes | str, str]] = [
        ("bad-json-invalid", PUT, '{"key": "Zm9v", "value": }', "invalid character '}'"),
        ("bad-json-truncated", PUT, '{"key":"Zm9v","value":"YmFy"', "unexpected EOF"),
        ("bad-json-unquoted-key", PUT, "{key:1}", "looking for beginning of object key string"),
        ("bad-json-bom", RANGE, b'\xef\xbb\xbf{"key":"Zm9v"}', "UTF-8 BOM is rejected"),
        ("bad-json-array-body", RANGE, "[1,2]", "cannot unmarshal array into map"),
        ("bad-json-string-body", RANGE, '"Zm9v"', "a JSON string instead of an object"),
        ("bad-json-number-for-bytes", PUT, '{"key":1,"value":"YmFy"}', "number into []uint8"),
        ("bad-json-array-for-bytes", RANGE, '{"key":["Zm9v"]}', "array into []uint8"),
        ("bad-json-string-for-bool", RANGE, '{"key":"Zm9v","keys_only":"yes"}', "string into bool"),
        ("bad-json-number-for-bool", PUT, '{"key":"Zm9v","value":"YmFy","prev_kv":1}', "number into bool"),
        ("bad-json-bool-for-int", RANGE, '{"key":"Zm9v","limit":true}', "bool into int64"),
        ("bad-json-fraction", RANGE, '{"key":"Zm9v","limit":1.5}', "fraction into int64"),
        ("bad-json-exponent", RANGE, '{"key":"Zm9v","limit":1e2}', "exponent into int64"),
        ("bad-json-overflow", RANGE, '{"key":"Zm9v","limit":9223372036854775808}', "int64 overflow"),
        ("bad-json-overflow-string", PUT, '{"key":"Zm9v","lease":"9223372036854775808"}', "overflow, string"),
        ("bad-json-limit-abc", RANGE, '{"key":"Zm9v","limit":"abc"}', "string contents parsed as a number"),
        ("bad-json-limit-hex", RANGE, '{"key":"Zm9v","limit":"0x10"}', "after top-level value"),
        ("bad-json-limit-fraction-string", RANGE, '{"key":"Zm9v","limit":"1.5"}', "string fraction"),
        ("bad-json-enum-name", RANGE, '{"key":"Zm9v","sort_order":"SIDEWAYS"}', "unknown enum name"),
        ("bad-json-enum-lowercase", RANGE, '{"key":"Zm9v","sort_order":"descend"}', "case-sensitive"),
        ("bad-json-compare-enum", "/v3/kv/txn",
         '{"compare":[{"key":"Zm9v","target":"SIZE","result":"EQUAL"}]}', "unknown Compare target"),
        ("bad-base64-unpadded", PUT, '{"key":"Zm9vYg","value":"YmFy"}', "illegal base64 at byte 4"),
        ("bad-base64-urlsafe", PUT, '{"key":"-_8=","value":"YmFy"}', "URL-safe alphabet rejected"),
        ("bad-base64-value", PUT, '{"key":"Zm9v","value":"Y*Fy"}', "error offset inside value"),
        ("bad-base64-in-txn", "/v3/kv/txn", '{"success":[{"request_put":{"key":"Zm9","value":"YmFy"}}]}',
         "base64 inside a nested message"),
        ("bad-json-success-object", "/v3/kv/txn", '{"success":{"request_range":{"key":"Zm9v"}}}',
         "object where a list is expected"),
        ("bad-json-empty-body-range", RANGE, b"", "empty body = all defaults → key is not provided"),
        ("bad-json-null-body", RANGE, "null", "null body = all defaults"),
        ("bad-json-null-key", PUT, '{"key":null,"value":"YmFy"}', "null = absent"),
        ("bad-json-uppercase-field", PUT, '{"KEY":"Zm9v","value":"YmFy"}', "names are case-sensitive"),
    ]
    for case_id, path, body, why in cases:
        reg.add(case_id, partial(seeded_error, path=path, body=body), why)


def register_field_forms(reg: Registry) -> None:
    reg.add("input-unknown-fields-ignored", lambda k: [
        raw(PUT, f'{{"key":"{k("a")}","value":"{b64("1")}","bogus":{{"x":[1,2]}},"ttl":60}}', 200),
        raw(RANGE, f'{{"key":"{k("a")}","extra":null}}', 200)])
    reg.add("input-camel-case-fields", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"),
        raw(RANGE, f'{{"key":"{k()}","rangeEnd":"{k.end}","keysOnly":true,"sortOrder":"DESCEND"}}', 200),
        raw(PUT, f'{{"key":"{k("a")}","value":"{b64("3")}","prevKv":true}}', 200),
        raw(RANGE, f'{{"key":"{k()}","rangeEnd":"{k.end}","countOnly":true,'
                   '"minModRevision":"${rev+2}"}', 200),
        raw("/v3/kv/txn", f'{{"success":[{{"requestRange":{{"key":"{k("a")}"}}}},'
                          f'{{"requestDeleteRange":{{"key":"{k("b")}","prevKv":true}}}}]}}', 200)])
    reg.add("input-int64-number-and-string", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"), put(k("c"), "3"),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","limit":2}}', 200),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","limit":"1"}}', 200),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","limit":"-1"}}', 200),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","revision":${{rev+1}}}}', 200)])
    reg.add("input-null-fields", lambda k: [
        raw(PUT, f'{{"key":"{k("a")}","value":null,"lease":null,"prev_kv":null}}', 200),
        raw(RANGE, f'{{"key":"{k("a")}","range_end":null,"limit":null,"sort_order":null}}', 200),
        raw("/v3/kv/txn", '{"compare":null,"success":null,"failure":null}', 200)])
    reg.add("input-duplicate-member-last-wins", lambda k: [
        raw(PUT, f'{{"key":"{b64("x")}","key":"{k("a")}","value":"{b64("1")}"}}', 200),
        raw(RANGE, f'{{"key":"{k("a")}","key":"{k("zz")}"}}', 200)])
    reg.add("input-trailing-garbage", lambda k: [
        raw(PUT, f'{{"key":"{k("a")}","value":"{b64("1")}"}} trailing garbage', 200),
        raw(RANGE, f'{{"key":"{k("a")}"}}{{"key":"{k("b")}"}}', 200)],
            "only the first JSON value is read")
    reg.add("input-whitespace-and-escapes", lambda k: [
        raw(PUT, f' \n{{ "key" : "{k("a")}" ,\t"value" : "{b64("1")}" }}\n', 200),
        raw(RANGE, '{"key":"' + k("a").replace("/", "\\/") + '"}', 200)],
            "JSON whitespace and escaped slashes inside base64")
    reg.add("input-enum-by-number", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","sort_order":2,"sort_target":"KEY"}}', 200),
        raw(RANGE, f'{{"key":"{k()}","range_end":"{k.end}","sort_order":"1","sort_target":0}}')],
            "enums by number work, but a number inside a string is an unknown enum name")
    reg.add("input-empty-object", lambda k: [
        raw(RANGE, "{}"), raw(PUT, "{}"), raw("/v3/kv/deleterange", "{}"), raw("/v3/kv/txn", "", 200)],
            "empty object = defaults: key is not provided for KV; empty txn succeeds")


def register_transport(reg: Registry) -> None:
    def put_then_range(k: Keys, put_type: str | None, range_type: str | None) -> list[Step]:
        return [Step(PUT, put_body_text(k), content_type=put_type),
                Step(RANGE, f'{{"key":"{k("a")}"}}', content_type=range_type)]

    reg.add("content-type-none", partial(put_then_range, put_type=None, range_type=None))
    reg.add("content-type-form", partial(put_then_range, put_type="application/x-www-form-urlencoded",
                                         range_type="text/plain"), "the request Content-Type is ignored")
    reg.add("content-type-json-charset", partial(put_then_range, put_type="application/json; charset=utf-8",
                                                 range_type="application/grpc"))
    reg.add("expect-100-continue", lambda k: [
        Step(PUT, put_body_text(k), headers=(("Expect", "100-continue"),)),
        Step(RANGE, f'{{"key":"{k("a")}"}}', headers=(("Expect", "100-continue"),))],
            "curl sends Expect: 100-continue for bodies over 1 MiB")
    reg.add("invalid-utf8-in-string", lambda k: [
        *seeded(k, raw(PUT, b'{"key":"\xff\xfe/+","value":"YmFy"}'),
                raw(RANGE, b'{"key":"' + k("a").encode() + b'","x":"\xc3"}', 200))],
            "Go replaces invalid UTF-8 in strings instead of rejecting the document")
    reg.add("v3beta-alias", lambda k: [Step("/v3beta/kv/put", put_body_text(k)),
                                       Step("/v3beta/kv/range", f'{{"key":"{k("a")}"}}'),
                                       Step("/v3beta/kv/nope", "{}", expect=404)])
    reg.add("v3alpha-not-found", lambda k: [Step("/v3alpha/kv/range", f'{{"key":"{k("a")}"}}', expect=404),
                                            Step("/v3alpha/kv/put", put_body_text(k), expect=404)])
    reg.add("unknown-path", lambda k: [
        Step("/v3/kv/nope", "{}", expect=404), Step("/v3/maintenance/nope", "{}", expect=404),
        Step("/v3/kv/lease/grant", '{"TTL":60}', expect=404), Step("/v3/auth/nope", "{}", expect=404),
        Step("/v3/kv/range/", f'{{"key":"{k("a")}"}}', expect=404), Step("/v3/", "{}", expect=404),
        Step("/v3", "{}", expect=301, compare_headers=("location",))],
            "text/plain 'Not Found'; POST /v3 redirects to /v3/")
    reg.add("path-forms", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"),
        Step("//v3/kv/range", f'{{"key":"{k("a")}"}}', expect=301, compare_headers=("location",)),
        Step("/v3/kv//range", f'{{"key":"{k("a")}"}}', expect=301, compare_headers=("location",)),
        Step("/v3/kv/%72ange", f'{{"key":"{k("a")}"}}'),
        Step("/V3/kv/range", f'{{"key":"{k("a")}"}}', expect=404)],
            "Go's mux cleans paths with a 301 and decodes %-escapes; paths are case-sensitive")
    reg.add("query-string-ignored", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"),
        Step(f"/v3/kv/range?limit=1&keys_only=true&key={k('b')}", f'{{"key":"{k()}","range_end":"{k.end}"}}'),
        Step("/v3/kv/put?prev_kv=true", f'{{"key":"{k("a")}","value":"{b64("3")}"}}')],
            "with a JSON body the gateway takes no fields from the query string")
    reg.add("grpc-timeout-header", lambda k: [
        Step(PUT, put_body_text(k), headers=(("Grpc-Timeout", "5S"),)),
        Step(RANGE, f'{{"key":"{k("a")}"}}', headers=(("Grpc-Timeout", "soon"),), expect=400)],
            "Grpc-Timeout is the call deadline; an unparsable one is rejected before the call")
    reg.add("wrong-method", lambda k: [
        Step(RANGE, None, method="GET", content_type=None, expect=405),
        Step(PUT, put_body_text(k), method="PUT", expect=405),
        Step("/v3/kv/deleterange", f'{{"key":"{k("a")}"}}', method="DELETE", expect=405),
        Step("/v3/kv/txn", "{}", method="PATCH", expect=405),
        Step(RANGE, None, method="HEAD", content_type=None, expect=405),
        Step("/v3/kv/nope", None, method="GET", content_type=None, expect=404)])
    reg.add("options-preflight", lambda k: [
        Step(RANGE, None, method="OPTIONS", content_type=None, headers=CORS_PREFLIGHT),
        Step("/v3/kv/nope", None, method="OPTIONS", content_type=None),
        Step("/v3alpha/x", None, method="OPTIONS", content_type=None)],
            "OPTIONS is answered (200, empty) before routing")
    reg.add("cors-and-grpc-headers", lambda k: [
        Step(PUT, put_body_text(k), headers=(("Origin", "http://example.test"),),
             compare_headers=("grpc-metadata-content-type",)),
        Step(RANGE, "{}", expect=400, compare_headers=("grpc-metadata-content-type",)),
        Step(RANGE, "{", expect=400, compare_headers=("grpc-metadata-content-type",))],
            "success carries Grpc-Metadata-Content-Type, errors do not; CORS headers always")


def put_body_text(k: Keys) -> str:
    return f'{{"key":"{k("a")}","value":"{b64("1")}"}}'


def register_sizes(reg: Registry) -> None:
    # Sizes are of the protobuf-encoded PutRequest, not of the JSON. The 429 message contains that
    # encoded size ("N vs. 2097152"); the key and value here are fixed, so it is compared exactly.
    def big_put(k: Keys, value_len: int, expect: int) -> Step:
        return Step(PUT, f'{{"key":"{k("big")}","value":"{b64(b"x" * value_len)}"}}', expect=expect)

    reg.add("size-accepted", lambda k: [big_put(k, 1_500_000, 200),
                                        rng(k("big"), keys_only=True)],
            "a 1.5 MB value (2 MB of JSON) is under max-request-bytes")
    reg.add("size-too-large", lambda k: [big_put(k, MAX_REQUEST_BYTES, 400), big_put(k, 1_600_000, 400)],
            "etcdserver: request is too large")
    reg.add("size-grpc-limit", lambda k: [big_put(k, 2_200_000, 429)],
            "grpc: received message larger than max (N vs. 2097152)")
