"""The harness's own rules, checked without servers: a normalisation bug would hide differences."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance.harness import Case, Keys, Registry, Step, Target, b64, first_difference, normalise


def test_normalise_rewrites_ids_term_and_revisions_relative_to_baseline() -> None:
    body = (b'{"header":{"cluster_id":"111","member_id":"222","revision":"17","raft_term":"3"},'
            b'"responses":[{"response_put":{"header":{"revision":"17"},"prev_kv":{"key":"YQ==",'
            b'"create_revision":"12","mod_revision":"15","version":"2"}}}],"compact_revision":"10"}')
    assert normalise(body, 10) == (
        b'{"header":{"cluster_id":"<id>","member_id":"<id>","revision":"7","raft_term":"<term>"},'
        b'"responses":[{"response_put":{"header":{"revision":"7"},"prev_kv":{"key":"YQ==",'
        b'"create_revision":"2","mod_revision":"5","version":"2"}}}],"compact_revision":"0"}')


def test_normalise_keeps_the_encoding_of_a_value() -> None:
    # A number where etcd writes a string must still differ after normalisation.
    assert normalise(b'{"revision":17}', 10) == b'{"revision":7}'
    assert normalise(b'{"revision":"17"}', 10) == b'{"revision":"7"}'
    assert normalise(b'{"cluster_id":1,"member_id":"2","raft_term":3}', 0) == (
        b'{"cluster_id":<id>,"member_id":"<id>","raft_term":<term>}')


def test_normalise_leaves_strings_and_layout_alone() -> None:
    # Escaped quotes inside a string value cannot match a field, and whitespace is kept as sent.
    message = b'{"error":"x \\"revision\\":\\"17\\"","code":3}'
    assert normalise(message, 10) == message
    assert normalise(b'{"version":"17", "revision" : "17"}', 10) == b'{"version":"17", "revision" : "17"}'


def test_render_substitutes_revision_templates() -> None:
    step = Step("/v3/kv/range", {"key": "YQ==", "revision": "${rev+2}", "min_mod_revision": "${rev}"})
    assert step.render(40) == b'{"key":"YQ==","revision":"42","min_mod_revision":"40"}'
    assert Step("/x", '{"revision":${rev-1}}').render(40) == b'{"revision":39}'
    assert Step("/x", b"raw \xff").render(1) == b"raw \xff"
    assert Step("/x").render(1) == b""


def test_keys_are_prefixed_and_the_prefix_range_covers_them() -> None:
    k = Keys("case-a")
    assert k("x") == b64("case-a/x")
    assert k.end == b64("case-a0")


def test_registry_rejects_duplicate_ids() -> None:
    reg = Registry()
    reg.add("same", lambda k: [])
    with pytest.raises(ValueError):
        reg.add("same", lambda k: [])


def test_first_difference_points_at_the_first_differing_byte() -> None:
    assert first_difference(b'{"a":1}', b'{"a":2}').startswith("bodies differ at byte 5:")
    assert first_difference(b"abc", b"ab").startswith("bodies differ at byte 2:")


def test_run_records_a_dropped_connection_and_goes_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/kv/put":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(200, json={"header": {"revision": "5"}})

    target = Target("fake", "http://fake", httpx.Client(transport=httpx.MockTransport(handler)))
    case = Case("c", (Step("/v3/kv/put", {"key": "YQ=="}), Step("/v3/kv/range", {"key": "YQ=="})))
    answers = target.run(case)
    assert [a.status for a in answers] == [0, 200, 200]
    assert answers[0].body.startswith(b"<no response: RemoteProtocolError")
    assert answers[1].body == b'{"header":{"revision":"0"}}'
