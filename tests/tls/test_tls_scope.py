"""The verified client certificate reaches the app (app/tls_scope.py), on the uvicorn server the
`etcdpy` command builds for an https client URL; never on the peer listener or a plain one.

etcd's rule: with --client-cert-auth, the CommonName of the verified client certificate names the user
when a request carries no token (auth reads `client_cert_cn(scope)`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from etcdpy.app.cli import _uvicorn
from etcdpy.app.config import Config
from etcdpy.app.tls import TLSInfo, server_context
from etcdpy.app.tls_scope import client_cert_cn
from tests.tls_certs import TLSFiles


async def echo_tls(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what the app learns about the caller's certificate."""
    tls = scope.get("extensions", {}).get("tls")
    body = orjson.dumps({"cn": client_cert_cn(scope), "name": tls and tls["client_cert_name"],
                         "version": tls and tls["tls_version"], "scheme": scope["scheme"]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve_and_ask(certs: TLSFiles, tls: ssl.SSLContext | None, client_certs: bool,
                  callers: list[str | None]) -> list[dict[str, Any]]:
    """Serve echo_tls as `etcdpy` serves a client URL; ask it once as each caller (a CN or None), each
    on its own connection."""

    async def main() -> list[dict[str, Any]]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        server = _uvicorn(echo_tls, Config(log_level="warn"), tls, client_certs)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)  # uvicorn sets a flag, no event, once it listens
            answers = []
            scheme = "https" if tls is not None else "http"
            for cn in callers:
                async with httpx.AsyncClient(verify=certs.context(cn)) as client:
                    resp = await client.get(f"{scheme}://127.0.0.1:{port}/")
                    answers.append(resp.json())
            return answers
        finally:
            server.should_exit = True
            await task

    return asyncio.run(main())


def test_the_client_certificate_cn_is_in_every_request_scope(certs: TLSFiles) -> None:
    ctx = server_context(TLSInfo(str(certs.cert), str(certs.key), str(certs.ca), client_cert_auth=True))
    alice, bob = serve_and_ask(certs, ctx, True, ["alice", "bob"])
    assert alice["cn"] == "alice" and bob["cn"] == "bob"
    assert "CN=alice" in alice["name"]
    assert alice["scheme"] == "https" and alice["version"] in (0x0303, 0x0304)


@pytest.mark.parametrize("listener", ["peer", "plain"])
def test_no_certificate_name_off_the_client_tls_listener(certs: TLSFiles, listener: str) -> None:
    """The peer listener verifies members' certificates but never hands their names to the gateway (a
    forwarded request must not run as the member's CN); plain HTTP has no certificate at all."""
    ctx = None
    if listener == "peer":
        ctx = server_context(TLSInfo(str(certs.cert), str(certs.key), str(certs.ca), client_cert_auth=True))
    (answer,) = serve_and_ask(certs, ctx, False, ["alice"])
    assert answer["cn"] is None and answer["name"] is None
