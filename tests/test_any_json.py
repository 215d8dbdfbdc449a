"""Issue 10 §2, class by class: any JSON in any field gets etcd's answer, never a 500.

Each test covers a whole class (every field of a kind in every request message, not one example);
the expected answers were taken from etcd 3.4.23 (tests/fuzz/regressions.json replays them against
it). The differential fuzzer in tests/fuzz looks for members of these classes nobody listed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from etcdpy.app.config import Config
from etcdpy.app.gateway import codec, dispatch
from etcdpy.app.gateway.asgi import gateway_routes
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.schema import MESSAGES, RPCS, lower_camel
from etcdpy.app.gateway.watch import sse as watch_sse
from etcdpy.app.server.applier import Applier, ApplyFailed
from etcdpy.app.server.auth import AuthService
from etcdpy.app.server.metrics import RequestStats
from etcdpy.storage import txn as txn_eval
from etcdpy.storage.errors import CompactedError, TooManyOpsError
from etcdpy.storage.kv_types import (
    Compare,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from etcdpy.storage.lessor import Lessor
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn

REQUESTS = sorted({rpc.request for rpc in RPCS if rpc.request in MESSAGES} - {"WatchRequest"})


def _fields(kinds: set[str], message_names: list[str] = REQUESTS) -> list[tuple[str, Any]]:
    return [(m, f) for m in message_names for f in MESSAGES[m] if f.kind in kinds and not f.repeated]


INT_FIELDS = _fields({"int64", "uint64", "int32", "uint32"})
BOOL_FIELDS = _fields({"bool"})
BYTES_FIELDS = _fields({"bytes"})


def decode(body: bytes | str, message: str) -> dict[str, Any]:
    return codec.decode_request(body.encode() if isinstance(body, str) else body, message)


# ------------------------------------------------------------------ both spellings


@pytest.mark.parametrize(("message", "field"), [
    (m, f) for m, f in INT_FIELDS + BOOL_FIELDS if lower_camel(f.name) != f.name
], ids=lambda x: getattr(x, "name", x))
def test_given_both_spellings_the_camel_case_one_wins_in_either_order(message: str, field: Any) -> None:
    camel = lower_camel(field.name)
    a, b = ("true", "false") if field.kind == "bool" else ("5", "7")
    want = {"true": True, "false": False}.get(b, int(b) if b.isdigit() else b)
    assert decode(f'{{"{field.name}":{a},"{camel}":{b}}}', message)[field.name] == want
    assert decode(f'{{"{camel}":{b},"{field.name}":{a}}}', message)[field.name] == want
    # A null camelCase spelling wins too: the field is then absent.
    assert field.name not in decode(f'{{"{camel}":null,"{field.name}":{a}}}', message)
    # The orig spelling's bad value is never looked at.
    assert decode(f'{{"{field.name}":[],"{camel}":{b}}}', message)[field.name] == want


# ------------------------------------------------------------------ "null" where a number goes


@pytest.mark.parametrize(("message", "field"), INT_FIELDS, ids=lambda x: getattr(x, "name", x))
def test_the_string_null_in_any_integer_field_is_zero(message: str, field: Any) -> None:
    assert decode(f'{{"{field.name}":"null"}}', message)[field.name] == 0


def test_null_in_a_oneof_member_still_sets_it() -> None:
    # jsonpb sets the member whatever its value; etcd then compares against the zero value.
    assert decode('{"key":"YQ==","lease":null}', "Compare") == {"key": b"a", "lease": 0}
    assert decode('{"key":"YQ==","value":null}', "Compare") == {"key": b"a", "value": b""}
    assert decode('{"key":"YQ==","version":"null"}', "Compare") == {"key": b"a", "version": 0}


# ------------------------------------------------------------------ enums


@pytest.mark.parametrize("message, field", _fields(set(codec.ENUMS), REQUESTS + ["Compare"]),
                         ids=lambda x: getattr(x, "name", x))
def test_enum_names_are_matched_on_the_raw_text(message: str, field: Any) -> None:
    name = sorted(codec.ENUMS[field.kind].values)[-1]
    escaped = name[:-1] + f"\\u{ord(name[-1]):04x}"
    with pytest.raises(DecodeError) as err:
        decode(f'{{"{field.name}":"{escaped}"}}', message)
    assert str(err.value) == f'unknown value "{escaped.replace(chr(92), chr(92) * 2)}" for enum ' \
                             f"{codec.ENUMS[field.kind].go_name}"
    assert decode(f'{{"{field.name}":2147483647}}', message)[field.name] == 2**31 - 1


def test_enum_errors_quote_control_bytes_as_go_does() -> None:
    # etcd 3.4 (asked on 127.0.0.1): a raw DEL inside the name is quoted `\x7f`, as strconv.Quote does,
    # not `\u007f`.
    with pytest.raises(DecodeError) as err:
        decode('{"key":"YQ==","sort_order":"a\x7fb"}', "RangeRequest")
    assert str(err.value) == 'unknown value "a\\x7fb" for enum etcdserverpb.RangeRequest_SortOrder'


@pytest.fixture
def store(tmp_path: Any) -> Any:
    s = MVCCStore(str(tmp_path / "db"))
    yield s
    s.close()


def _txn(store: MVCCStore, req: TxnRequest) -> Any:
    txn = WriteTxn(store, store.applied_index + 1)
    res = txn_eval.apply_txn(txn, req, lambda lease: False)
    txn.end()
    return res


@pytest.mark.parametrize("result", [-1, 4, 2**31 - 1])
@pytest.mark.parametrize("target", [0, 3])
def test_compare_result_outside_the_enum_holds(store: MVCCStore, result: int, target: int) -> None:
    # etcd's compareKV ends `return true` after a switch on the result without a default.
    _txn(store, TxnRequest(success=[PutRequest(key=b"k", value=b"v")]))
    cmp = Compare(result=result, target=target, key=b"k", union="version", operand=99)  # type: ignore[arg-type]
    assert _txn(store, TxnRequest(compare=[cmp])).succeeded


@pytest.mark.parametrize("target", [-7, 5, 2**31 - 1])
def test_compare_target_outside_the_enum_compares_equal(store: MVCCStore, target: int) -> None:
    _txn(store, TxnRequest(success=[PutRequest(key=b"k", value=b"v")]))
    equal = Compare(result=0, target=target, key=b"k", union="version", operand=5)  # type: ignore[arg-type]
    greater = Compare(result=1, target=target, key=b"k")  # type: ignore[arg-type]
    assert _txn(store, TxnRequest(compare=[equal])).succeeded
    assert not _txn(store, TxnRequest(compare=[greater])).succeeded
    assert CompareTarget.VALUE == 3  # the one target that fails on a missing key stays as it was


# ------------------------------------------------------------------ strings and nesting


@pytest.mark.parametrize(("message", "field"), BYTES_FIELDS, ids=lambda x: getattr(x, "name", x))
@pytest.mark.parametrize("text", ["\\ud800", "\\udc00YQ==", "\\ud800\\ud800"])
def test_lone_surrogates_in_any_bytes_field_decode_as_go_does(message: str, field: Any, text: str) -> None:
    with pytest.raises(DecodeError, match=r"^illegal base64 data at input byte 0$"):
        decode(f'{{"{field.name}":"{text}"}}', message)


def test_invalid_utf8_is_one_replacement_per_byte() -> None:
    # Go: "\xe2\x82" is two bad bytes, so "A" after them is at byte 2 + 2*3 = 8 of the string.
    with pytest.raises(DecodeError, match="at input byte 2$"):
        decode(b'{"key":"YQ\xe2\x82A"}', "RangeRequest")


@pytest.mark.parametrize("depth", [5000, 9999])
def test_deep_arrays_get_the_type_error(depth: int) -> None:
    with pytest.raises(DecodeError, match=r"^json: cannot unmarshal array into Go value of type uint8$"):
        decode(b'{"key":' + b"[" * depth + b"]" * depth + b"}", "RangeRequest")


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_unknown_fields_are_ignored_up_to_gos_max_depth(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    inner = b"" if opener == b"[" else b"1"
    ok = b'{"key":"YQ==","zz":' + opener * 9999 + inner + closer * 9999 + b"}"
    assert decode(ok, "RangeRequest") == {"key": b"a"}
    too_deep = b'{"key":"YQ==","zz":' + opener * 10000 + inner + closer * 10000 + b"}"
    with pytest.raises(DecodeError, match=r"exceeded max depth$"):
        decode(too_deep, "RangeRequest")


@pytest.mark.parametrize("depth", [129, 300, 3000])
def test_deeply_nested_txn_is_too_many_operations(depth: int) -> None:
    body = b'{"success":[{"request_txn":' * depth + b"{}" + b"}]}" * depth
    req = codec.txn_request(decode(body, "TxnRequest"))
    with pytest.raises(TooManyOpsError):
        txn_eval.check_txn(req, 128)


def test_a_128_deep_txn_answer_serialises() -> None:
    payload: dict[str, Any] = {}
    for _ in range(128):
        payload = {"header": {}, "succeeded": True, "responses": [{"response_txn": payload}]}
    assert json.loads(codec.dumps(payload)) == payload


# ------------------------------------------------------------------ compaction and revisions


def test_first_compaction_may_be_at_zero_and_only_once(tmp_path: Any) -> None:
    store = MVCCStore(str(tmp_path / "db"))
    assert store.first_revision == -1
    store.schedule_compaction(0, 1)
    with pytest.raises(CompactedError):
        store.schedule_compaction(0, 2)
    store.close()
    reopened = MVCCStore(str(tmp_path / "db"))
    assert reopened.first_revision == 0
    reopened.close()


def test_txn_range_revision_below_the_first_is_compacted(store: MVCCStore) -> None:
    _txn(store, TxnRequest(success=[PutRequest(key=b"k", value=b"v")]))
    _txn(store, TxnRequest(success=[RangeRequest(key=b"k", revision=-1)]))  # first revision is -1
    with pytest.raises(CompactedError):
        _txn(store, TxnRequest(success=[RangeRequest(key=b"k", revision=-2)]))
    store.schedule_compaction(1, store.applied_index + 1)
    with pytest.raises(CompactedError):
        _txn(store, TxnRequest(success=[RangeRequest(key=b"k", revision=-1)]))


# ------------------------------------------------------------------ gateway: unexpected exceptions, sizes


def _gateway(max_request_bytes: int = 1536 * 1024, rpcs: dict[str, dispatch.Handler] | None = None,
             streams: dict[str, dispatch.StreamHandler] | None = None) -> dispatch.Gateway:
    server = SimpleNamespace(config=SimpleNamespace(max_request_bytes=max_request_bytes, access_log=False),
                             is_learner=lambda: False, metrics=SimpleNamespace(requests=RequestStats()))
    served = gateway_routes()
    routes = dispatch.Routes({**served.rpcs, **(rpcs or {})}, {**served.streams, **(streams or {})},
                             served.own_preflight)
    return dispatch.Gateway(server, None, routes)  # type: ignore[arg-type]


async def _call(app: dispatch.Gateway, path: str, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_an_unexpected_exception_is_a_500_in_etcds_shape_with_one_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(server: Any, body: bytes) -> dict[str, Any]:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR):
        status, body = asyncio.run(_call(_gateway(rpcs={"/v3/kv/range": broken}), "/v3/kv/range", b"{}"))
    assert status == 500
    assert json.loads(body) == {"error": "'boom'", "message": "'boom'", "code": 2}
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1 and records[0].exc_info is None
    assert "KeyError" in records[0].getMessage() and "\n" not in records[0].getMessage()


def test_an_unexpected_exception_in_a_stream_before_it_answers_is_a_500() -> None:
    async def broken(server: Any, scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("stream bug")

    app = _gateway(streams={"/v3/lease/keepalive": broken})
    status, body = asyncio.run(_call(app, "/v3/lease/keepalive", b"{}"))
    assert status == 500 and json.loads(body)["code"] == 2


def test_request_too_large_reports_the_real_size(monkeypatch: pytest.MonkeyPatch) -> None:
    value = b"QUFB" * 1_500_000  # 4.5 MB once decoded: more than twice the 2 MiB gRPC limit
    status, body = asyncio.run(_call(_gateway(), "/v3/kv/put", b'{"key":"YQ==","value":"' + value + b'"}'))
    assert status == 429
    assert json.loads(body)["message"] == "grpc: received message larger than max (4500008 vs. 2097152)"


# ------------------------------------------------------------------ applier


class _Boom(Exception):
    pass


def _applier(store: MVCCStore) -> Applier:
    def no_member_updates(index: int, cmd: Any) -> Any:
        raise AssertionError("no membership commands here")

    async def unused(*args: Any) -> Any:
        raise AssertionError("the applier proposes nothing")

    auth = AuthService(store, Config(), unused, unused)
    return Applier(store, Lessor(store), lambda events, revision: None, no_member_updates, auth)


def test_applier_stops_rather_than_marking_a_failed_entry_applied(store: MVCCStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from etcdpy.app.server import commands

    applier = _applier(store)
    data = commands.encode(7, PutRequest(key=b"k", value=b"v"))

    def explode(index: int, cmd: Any) -> Any:
        raise _Boom("disk on fire")

    monkeypatch.setattr(applier, "_execute", explode)
    with pytest.raises(ApplyFailed) as err:
        applier.apply(1, data)
    assert isinstance(err.value.__cause__, _Boom)
    assert store.applied_index == 0  # a restart applies the entry again
    monkeypatch.undo()
    assert applier.apply(1, data)[0] == 7 and store.applied_index == 1


def test_applier_consumes_an_entry_that_fails_with_an_etcd_error(store: MVCCStore) -> None:
    from etcdpy.app.server import commands

    applier = _applier(store)
    request_id, result = applier.apply(1, commands.encode(9, PutRequest(key=b"k", lease=123)))
    assert request_id == 9 and type(result).__name__ == "LeaseNotFoundError"
    assert store.applied_index == 1


def test_applier_flushes_the_puts_group_before_a_command_that_reads_the_store(store: MVCCStore) -> None:
    # Consecutive puts share one write group that only a key's own lookup sees; a delete-range reads
    # RocksDB itself, so it must find the puts written before it runs.
    from etcdpy.app.server import commands

    applier = _applier(store)
    applier.apply(1, commands.encode(1, PutRequest(key=b"a", value=b"1")))
    applier.apply(2, commands.encode(2, PutRequest(key=b"b", value=b"2")))
    request_id, result = applier.apply(3, commands.encode(3, DeleteRangeRequest(key=b"a", range_end=b"c")))
    assert request_id == 3 and result.deleted == 2


# ------------------------------------------------------------------ /watch/sse


@pytest.mark.parametrize("query", ["start_revision=abc", "progress_interval=-1", "prev_kv=maybe"])
def test_sse_parameter_errors_use_etcds_error_object(query: str) -> None:
    api = FastAPI()
    watch_sse.install(api, None, "*")
    resp = TestClient(api).get(f"{watch_sse.SSE_PATH}?key=a&{query}")
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"error", "message", "code"} and body["code"] == 3
    assert body["error"] == body["message"] and query.split("=")[0] in body["message"]


def test_txn_put_reports_a_missing_key_before_a_missing_lease(store: MVCCStore) -> None:
    from etcdpy.storage.errors import KeyNotFoundError

    with pytest.raises(KeyNotFoundError):
        _txn(store, TxnRequest(success=[PutRequest(key=b"k", lease=1, ignore_value=True)]))
