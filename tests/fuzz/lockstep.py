"""Runs one generated session on real etcd and on etcdpy in lockstep and says where they differ.

Each session starts from the harness's reset (every lease revoked, every key deleted; revisions are
then relative to that baseline), sends its steps to both servers in the same order, and ends with a
whole-keyspace range, so a request that one server refused but still wrote shows up as a different
final revision or keyspace. Compared per step: status, content type, CORS headers and the body as
exact text after the harness's normalisation, plus two rewrites of values that legitimately differ:
server-chosen lease IDs and the seconds left on a lease.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from tests.conformance.harness import (
    Answer,
    Case,
    Step,
    Target,
    answer,
    check_reference,
    diff_report,
    state_step,
)
from tests.fuzz.strategies import LEASE_IDS

_LEASE_ID = re.compile(rb'"ID":"(\d+)"')
_TTL_LEFT = re.compile(rb'"TTL":"\d+"')
_CLIENT_IDS = {str(i).encode() for i in LEASE_IDS}


def _normalise_leases(path: str, body: bytes) -> bytes:
    if "lease" not in path:
        return body
    body = _LEASE_ID.sub(
        lambda m: m.group(0) if m.group(1) in _CLIENT_IDS else b'"ID":"<server-chosen>"', body)
    if path.endswith("timetolive"):
        body = _TTL_LEFT.sub(b'"TTL":"<left>"', body)
    return body


def run(target: Target, case: Case) -> list[Answer]:
    baseline = target.reset()
    answers = []
    for step in (*case.steps, state_step()):
        try:
            resp = target.send(step, baseline)
        except httpx.TransportError as exc:
            answers.append(Answer(0, "", (), f"<no response: {type(exc).__name__}>".encode()))
            continue
        got = answer(resp, step, baseline)
        answers.append(replace(got, body=_normalise_leases(step.path, got.body)))
    return answers


# etcd's gateway now and then drops the last answers of a keep-alive stream whose body holds several
# requests: the body's end closes the stream while the server still answers (12 of 40 posts of one
# generated body came back one line short; bodies with a slow-to-decode second request drop most).
# A session with a keep-alive step that differs is run on etcd again, and passes if any of etcd's runs
# answers as etcdpy did; every other step must still match on that run.
_REFERENCE_RETRIES = 8


def _keeps_alive(case: Case) -> bool:
    return any(s.path.endswith("/keepalive") for s in case.steps)


def compare(case: Case, reference: Target, candidate: Target) -> str | None:
    """None when both servers answered every step alike, else a report with both answers."""
    ref = run(reference, case)
    wrong = check_reference(case, ref)
    if wrong:
        return f"session {case.id} does not set up as intended on etcd:\n" + "\n".join(wrong)
    got = run(candidate, case)
    if ref == got:
        return None
    if _keeps_alive(case) and any(run(reference, case) == got for _ in range(_REFERENCE_RETRIES)):
        return None
    return diff_report(case, ref, got, reference.name, candidate.name)


# ------------------------------------------------------------------ regression file format


def step_to_json(step: Step) -> dict[str, Any]:
    body = step.raw_body()
    try:
        text: Any = body.decode("utf-8")
    except UnicodeDecodeError:
        text = {"b64": base64.b64encode(body).decode()}
    out: dict[str, Any] = {"path": step.path, "body": text, "content_type": step.content_type}
    if step.expect is not None:
        out["expect"] = step.expect
    return out


def step_from_json(d: dict[str, Any]) -> Step:
    """A body is text, {"b64": ...} for bytes that are not UTF-8, or {"repeat": [[text, n], ...]} for
    long or deep ones (each text n times, concatenated)."""
    body = d["body"]
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif "b64" in body:
        raw = base64.b64decode(body["b64"])
    else:
        raw = b"".join(text.encode("utf-8") * n for text, n in body["repeat"])
    return Step(d["path"], raw, content_type=d.get("content_type"), expect=d.get("expect"))


def case_to_json(case_id: str, steps: list[Step], why: str = "") -> dict[str, Any]:
    return {"id": case_id, "why": why, "steps": [step_to_json(s) for s in steps]}


def load_cases(path: Path) -> list[Case]:
    entries = json.loads(path.read_text())
    return [Case(e["id"], tuple(step_from_json(s) for s in e["steps"]), e.get("why", "")) for e in entries]
