"""Differential harness: send the same raw HTTP requests to two servers and compare the answers.

A case is a list of steps (method, path, raw body bytes, headers). Per server, a case runs in a fresh
state: first the whole keyspace is deleted, and the revision that delete answers with becomes the case's
baseline. Request bodies may say ``${rev+N}`` to mean "baseline + N", and every revision in a response is
rewritten as ``r - baseline``, so two servers with different histories still give identical text.
After the last step a whole-keyspace range is appended, so a case also proves what was (not) written.

Response bodies are compared as exact text: only the values of cluster_id, member_id, raft_term and the
revision fields are rewritten, in place, on the raw bytes. Field order, omitted defaults, whitespace and
string escaping therefore all count. The rewrite keys on ``"name":`` with unescaped quotes, which cannot
occur inside a JSON string value, so it never touches base64 payloads or error messages.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

JSON = "application/json"
# etcd answers every request with these; a browser client depends on them.
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers")
WHOLE_KEYSPACE = {"key": "AA==", "range_end": "AA=="}

_REV_TEMPLATE = re.compile(rb"\$\{rev(?:([+-])(\d+))?\}")
# The optional quotes are captured and kept, so a number where etcd writes a string still differs.
_ID_FIELD = re.compile(rb'"(cluster_id|member_id|raft_term)":("?)\d+("?)')
_REV_FIELD = re.compile(rb'"(revision|create_revision|mod_revision|compact_revision)":("?)(-?\d+)("?)')


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Step:
    """One HTTP request. ``body``: dict/list → compact JSON, str → UTF-8 text, bytes → as is, None → empty."""

    path: str
    body: Any = None
    method: str = "POST"
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = ()
    # Status the *reference* must answer: guards the case against silently testing something else.
    expect: int | None = 200
    # Response headers compared in addition to Content-Type and the CORS set.
    compare_headers: tuple[str, ...] = ()

    def raw_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()

    def render(self, baseline: int) -> bytes:
        def sub(m: re.Match[bytes]) -> bytes:
            offset = int(m.group(2) or 0) * (-1 if m.group(1) == b"-" else 1)
            return str(baseline + offset).encode()

        return _REV_TEMPLATE.sub(sub, self.raw_body())


@dataclass(frozen=True)
class Case:
    id: str
    steps: tuple[Step, ...]
    why: str = ""


class Keys:
    """Base64 keys under a per-case prefix, so cases never share keys even without the reset."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, name: str = "") -> str:
        return b64(f"{self.prefix}/{name}")

    def raw(self, name: str = "") -> str:
        return f"{self.prefix}/{name}"

    @property
    def end(self) -> str:
        """range_end covering every key under the prefix ('/' + 1 == '0')."""
        return b64(f"{self.prefix}0")


@dataclass
class Registry:
    cases: list[Case] = field(default_factory=list)

    def add(self, case_id: str, make: Callable[[Keys], list[Step]], why: str = "") -> None:
        if any(c.id == case_id for c in self.cases):
            raise ValueError(f"duplicate case id {case_id}")
        self.cases.append(Case(case_id, tuple(make(Keys(case_id))), why))


@dataclass(frozen=True)
class Answer:
    """What is compared for one step, already normalised."""

    status: int
    content_type: str
    headers: tuple[tuple[str, str | None], ...]
    body: bytes

    def show(self, headers: bool, limit: int = 1500) -> str:
        # The normalised raw text, not a re-indented copy: whitespace and escaping are part of the contract.
        # repr() only where it is needed to make newlines and other unprintables visible.
        text = self.body.decode(errors="replace")
        if len(text) > limit:
            text = text[:limit] + f"... ({len(self.body)} bytes)"
        if not text.isprintable() or not text:
            text = repr(text)
        hdrs = " [" + "; ".join(f"{k}: {v}" for k, v in self.headers) + "]" if headers else ""
        return f"{self.status} {self.content_type or '<no content-type>'}{hdrs}\n      {text}"


def first_difference(a: bytes, b: bytes, context: int = 40) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, at - context)
    return (f"bodies differ at byte {at}: ...{a[lo:at + context].decode(errors='replace')!r} vs "
            f"...{b[lo:at + context].decode(errors='replace')!r}")


def normalise(body: bytes, baseline: int) -> bytes:
    def rev(m: re.Match[bytes]) -> bytes:
        return b'"%s":%s%d%s' % (m.group(1), m.group(2), int(m.group(3)) - baseline, m.group(4))

    def ident(m: re.Match[bytes]) -> bytes:
        marker = b"<term>" if m.group(1) == b"raft_term" else b"<id>"
        return b'"%s":%s%s%s' % (m.group(1), m.group(2), marker, m.group(3))

    return _REV_FIELD.sub(rev, _ID_FIELD.sub(ident, body))


@dataclass
class Target:
    name: str
    url: str
    client: httpx.Client

    def send(self, step: Step, baseline: int) -> httpx.Response:
        headers = dict(step.headers)
        if step.content_type is not None:
            headers["Content-Type"] = step.content_type
        return self.client.request(step.method, self.url + step.path, content=step.render(baseline),
                                   headers=headers)

    def reset(self) -> int:
        """Revoke every lease and delete every key; the revision after that is the case's baseline.

        Leases go too, so a case may grant its fixed lease ID again when the servers are reused.
        A server without the leases listing is not failed here: its lease cases will show it.
        """
        listing = self.client.post(f"{self.url}/v3/lease/leases", content=b"{}")
        if listing.status_code == 200:
            for lease in listing.json().get("leases", []):
                self.client.post(f"{self.url}/v3/lease/revoke", json={"ID": lease["ID"]})
        resp = self.client.post(f"{self.url}/v3/kv/deleterange", json=WHOLE_KEYSPACE)
        resp.raise_for_status()
        return int(resp.json()["header"]["revision"])

    def run(self, case: Case) -> list[Answer]:
        baseline = self.reset()
        answers = []
        for step in (*case.steps, state_step()):
            try:
                resp = self.send(step, baseline)
            except httpx.TransportError as exc:
                # A dropped connection or a timeout is an answer too; keep going so the diff shows
                # every step rather than one traceback.
                answers.append(Answer(0, "", (), f"<no response: {type(exc).__name__}: {exc}>".encode()))
                continue
            answers.append(answer(resp, step, baseline))
        return answers


def state_step() -> Step:
    return Step("/v3/kv/range", WHOLE_KEYSPACE)


def answer(resp: httpx.Response, step: Step, baseline: int) -> Answer:
    names = CORS_HEADERS + tuple(h.lower() for h in step.compare_headers)
    content_type = resp.headers.get("content-type", "").split(";")[0].strip()
    return Answer(resp.status_code, content_type, tuple((h, resp.headers.get(h)) for h in names),
                  normalise(resp.content, baseline))


def describe(step: Step, limit: int = 300) -> str:
    # The body before ${rev...} substitution: the substituted values differ per server.
    body = step.raw_body()
    shown = body[:limit].decode(errors="replace") + (f"... ({len(body)} bytes)" if len(body) > limit else "")
    ctype = step.content_type or "<none>"
    extra = "".join(f" {k}: {v};" for k, v in step.headers)
    return f"{step.method} {step.path} [Content-Type: {ctype};{extra}] {shown}"


def check_reference(case: Case, ref: list[Answer]) -> list[str]:
    """Steps where the reference did not answer the status the case was written for."""
    return [f"step {i}: reference answered {a.status}, case expects {s.expect}: {describe(s)}\n"
            f"  {a.show(True)}"
            for i, (s, a) in enumerate(zip(case.steps, ref, strict=False))
            if s.expect is not None and a.status != s.expect]


def diff_report(case: Case, ref: list[Answer], got: list[Answer], ref_name: str, got_name: str) -> str:
    """Every step with both answers; differing steps are marked so the first divergence stands out."""
    lines = [f"case {case.id}: {case.why}".rstrip(": ")]
    steps = (*case.steps, state_step())
    for i, (step, a, b) in enumerate(zip(steps, ref, got, strict=True)):
        mark = "DIFF" if a != b else "same"
        label = "final state" if i == len(case.steps) else f"step {i}"
        lines.append(f"[{mark}] {label}: {describe(step)}")
        if a != b:
            # Headers are listed only where they differ; they are the same on most steps.
            lines.append(f"  {ref_name}: {a.show(a.headers != b.headers)}")
            lines.append(f"  {got_name}: {b.show(a.headers != b.headers)}")
            if a.body != b.body:
                lines.append(f"  {first_difference(a.body, b.body)}")
    return "\n".join(lines)


def assert_matches(case: Case, reference: Target, candidate: Target) -> None:
    """Run `case` on both servers; fail unless etcd answers as the case expects and etcdpy answers alike."""
    import pytest

    ref = reference.run(case)
    wrong = check_reference(case, ref)
    # A case whose reference answer is not what it was written for tests nothing; fail it loudly.
    assert not wrong, f"case {case.id} is broken against real etcd:\n" + "\n".join(wrong)
    got = candidate.run(case)
    if ref != got:
        pytest.fail(diff_report(case, ref, got, reference.name, candidate.name), pytrace=False)
