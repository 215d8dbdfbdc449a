"""A differential runner for auth scenarios: the same requests, with per-user tokens, to two servers.

The conformance harness (tests/conformance) compares fixed requests; auth needs tokens that each
server issues itself. Here a step names the user whose token it carries (`as_="u1"`), `login` steps
fetch and remember a token per server, and answers are compared after rewriting what legitimately
differs (ids, raft term, revisions relative to the scenario's start, and token values).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conformance.harness import normalise

ROOT_PASSWORD = "toor"
_TOKEN = re.compile(rb'"token":"[^"]*"')
_REV_TEMPLATE = re.compile(r"\$\{rev\+(\d+)\}")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Step:
    path: str
    body: Any = None
    as_: str | None = None  # send the token this user got from the last login step
    header: str | None = None  # a raw Authorization header, for forged or malformed tokens
    bearer: bool = False  # send the token as "Bearer <token>"
    login: str | None = None  # remember this step's token under this name
    status_only: bool = False  # compare only the status (answers that name per-server members)


def call(path: str, body: Any = None, as_: str | None = None, **kw: Any) -> Step:
    return Step(path, {} if body is None else body, as_, **kw)


def login(user: str, password: str, name: str | None = None) -> Step:
    return Step("/v3/auth/authenticate", {"name": user, "password": password}, login=name or user)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def __str__(self) -> str:
        return f"{self.status} {self.body.decode(errors='replace')}"


class Runner:
    """Runs steps against one server, keeping that server's tokens."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client
        self.tokens: dict[str, str] = {}
        self.baseline = 0

    def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": token} if token is not None else {}
        return self.client.post(self.url + path, content=json.dumps(body).encode(), headers=headers)

    def reset(self) -> None:
        """Back to a server without auth, users, roles or keys (root's password is always ROOT_PASSWORD).

        Revisions in answers are relative to the revision after this reset; a body may say
        `"${rev+N}"` for baseline + N."""
        token = None
        resp = self.post("/v3/auth/authenticate", {"name": "root", "password": ROOT_PASSWORD})
        if resp.status_code == 200:
            token = resp.json()["token"]
            self.post("/v3/auth/disable", {}, token).raise_for_status()
        for user in self.post("/v3/auth/user/list", {}).json().get("users", []):
            self.post("/v3/auth/user/delete", {"name": user}).raise_for_status()
        for role in self.post("/v3/auth/role/list", {}).json().get("roles", []):
            self.post("/v3/auth/role/delete", {"role": role}).raise_for_status()
        resp = self.post("/v3/kv/deleterange", {"key": "AA==", "range_end": "AA=="})
        resp.raise_for_status()
        self.baseline = int(resp.json()["header"]["revision"])
        self.tokens.clear()

    def run(self, step: Step) -> Answer:
        headers: dict[str, str] = {}
        if step.header is not None:
            headers["Authorization"] = step.header
        elif step.as_ is not None:
            token = self.tokens.get(step.as_, "")
            headers["Authorization"] = f"Bearer {token}" if step.bearer else token
        body = _REV_TEMPLATE.sub(lambda m: str(self.baseline + int(m.group(1))), json.dumps(step.body))
        try:
            resp = self.client.post(self.url + step.path, content=body.encode(), headers=headers)
        except httpx.TransportError as exc:
            return Answer(0, f"<no response: {type(exc).__name__}>".encode())
        if step.login is not None and resp.status_code == 200:
            self.tokens[step.login] = resp.json()["token"]
        if step.status_only:
            return Answer(resp.status_code, b"<not compared>")
        answer = _TOKEN.sub(b'"token":"<token>"', normalise(resp.content, self.baseline))
        return Answer(resp.status_code, answer)


def run_both(steps: list[Step], reference: Runner, candidate: Runner) -> list[str]:
    """Differences between the two servers' answers, one line per differing step (empty: identical)."""
    reference.reset()
    candidate.reset()
    diffs = []
    for i, step in enumerate(steps):
        a, b = reference.run(step), candidate.run(step)
        if a != b:
            who = f" as {step.as_}" if step.as_ else ""
            diffs.append(f"step {i}: {step.path} {json.dumps(step.body)}{who}\n"
                         f"    etcd:   {a}\n    etcdpy: {b}")
    return diffs
