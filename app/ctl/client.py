"""The gateway HTTP client behind etcdpyctl: endpoint failover, auth token, TLS, timeouts, streams.

It speaks only etcd's v3 JSON gateway (POST /v3/...), so it works against etcdpy and real etcd alike.
Unary calls try the endpoints in order and move on when one cannot be reached (connection refused,
timeout); a server that *answers* with an error is not retried elsewhere, because the answer is the
cluster's (etcdctl's balancer behaves the same way). Responses are returned as the gateway's JSON
(int64 as strings, bytes base64); conversion to etcdctl's shapes is the printers' job.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

JSON = dict[str, Any]


class CtlError(Exception):
    """An error etcdctl would print as ``Error: <message>`` and exit with ``code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class GatewayError(CtlError):
    """The server answered with etcd's error object ({"error","message","code"})."""

    def __init__(self, message: str, grpc_code: int, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)
        self.grpc_code = grpc_code


class Unreachable(CtlError):
    """No endpoint could be reached; etcdctl reports the expired deadline."""

    def __init__(self) -> None:
        super().__init__("context deadline exceeded", 1)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def base_url(endpoint: str, tls: bool) -> str:
    """etcdctl accepts ``host:port`` as well as full URLs; a bare address means plain HTTP unless TLS
    material was given."""
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'https' if tls else 'http'}://{endpoint}"


@dataclass
class ClientConfig:
    endpoints: list[str]
    dial_timeout: float = 2.0
    command_timeout: float = 5.0
    user: str | None = None
    password: str | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure_skip_verify: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


class GatewayClient:
    """One client per command run; the token (if any) is fetched once, on the endpoint that answered."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        tls = bool(config.cacert or config.cert or config.insecure_skip_verify)
        self.urls = [base_url(ep, tls) for ep in config.endpoints]
        verify: bool | str = True
        if config.insecure_skip_verify:
            verify = False
        elif config.cacert:
            verify = config.cacert
        cert = (config.cert, config.key) if config.cert and config.key else None
        self.timeout = httpx.Timeout(config.command_timeout, connect=config.dial_timeout)
        self.http = httpx.Client(verify=verify, cert=cert, timeout=self.timeout)
        self.token: str | None = None
        self._preferred = 0
        if config.user is not None:
            self._authenticate()

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        headers = dict(self.config.extra_headers)
        if self.token:
            headers["Authorization"] = self.token
        return headers

    def _authenticate(self) -> None:
        user = self.config.user or ""
        password = self.config.password
        if password is None:
            user, _, password = user.partition(":")
        try:
            resp = self.call("/v3/auth/authenticate", {"name": user, "password": password})
        except GatewayError as exc:
            # etcdctl fails while creating its client here, which it reports as a connection error.
            raise GatewayError(exc.message, exc.grpc_code, exit_code=2) from exc
        self.token = resp.get("token")

    def _order(self) -> list[int]:
        n = len(self.urls)
        return [(self._preferred + i) % n for i in range(n)]

    def call(self, path: str, body: JSON | None = None, url: str | None = None) -> JSON:
        """POST one unary RPC; with ``url`` only that endpoint is asked (endpoint status, defrag...)."""
        payload = json.dumps(body or {}).encode()
        targets = [url] if url else [self.urls[i] for i in self._order()]
        for index, target in enumerate(targets):
            try:
                resp = self.http.post(target + path, content=payload, headers=self._headers())
            except httpx.TimeoutException as exc:
                if index + 1 < len(targets):
                    continue
                raise Unreachable() from exc
            except httpx.TransportError as exc:
                if index + 1 < len(targets):
                    continue
                raise Unreachable() from exc
            if url is None:
                self._preferred = self.urls.index(target)
            return decode(resp)
        raise Unreachable()

    def stream(self, path: str, body: JSON | bytes, url: str | None = None,
               read_timeout: float | None = None) -> Iterator[JSON]:
        """POST a streaming RPC and yield each ``result`` object; a stream error raises GatewayError."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        targets = [url] if url else [self.urls[i] for i in self._order()]
        timeout = httpx.Timeout(read_timeout, connect=self.config.dial_timeout)
        last: Exception | None = None
        for target in targets:
            try:
                with self.http.stream("POST", target + path, content=payload, headers=self._headers(),
                                      timeout=timeout) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        decode(resp)
                    for line in resp.iter_lines():
                        if not line.strip():
                            continue
                        msg = json.loads(line)
                        if "error" in msg:
                            err = msg["error"]
                            if isinstance(err, dict):
                                raise GatewayError(err.get("message", ""), int(err.get("grpc_code", 2)))
                            raise GatewayError(msg.get("message", str(err)), int(msg.get("code", 2)))
                        yield msg.get("result", {})
                    return
            except httpx.TransportError as exc:
                last = exc
                continue
        raise Unreachable() from last


def decode(resp: httpx.Response) -> JSON:
    """The JSON body of a unary answer, or GatewayError carrying etcd's message and gRPC code."""
    try:
        data = resp.json()
    except ValueError:
        text = resp.text.strip()
        raise GatewayError(text or f"HTTP {resp.status_code}", 12 if resp.status_code == 404 else 2) from None
    if resp.status_code != 200 or (isinstance(data, dict) and "code" in data and "error" in data
                                   and "message" in data):
        if isinstance(data, dict):
            raise GatewayError(str(data.get("message") or data.get("error")), int(data.get("code", 2)))
        raise GatewayError(str(data), 2)
    return data if isinstance(data, dict) else {}
