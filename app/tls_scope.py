"""The verified client certificate of a TLS client connection, in each request's ASGI scope.

uvicorn's httptools protocol tells the app nothing about TLS. On a client listener that verifies client
certificates (`--client-cert-auth`), `expose_client_certs` swaps in protocol subclasses that note each
connection's certificate when the handshake is done, and wraps the app so every request (HTTP and
WebSocket) on that connection carries it as the ASGI TLS extension:

    scope["extensions"]["tls"] = {
        "server_cert": None,
        "client_cert_chain": [leaf certificate PEM],
        "client_cert_name": "CN=alice,O=…" (RFC 4514),
        "client_cert_error": None,
        "tls_version": 0x0304, "cipher_suite": None,
        "client_cert_cn": "alice",     # etcdpy's addition: the subject's CommonName, or None
    }

Only certificates OpenSSL verified against the trusted CA get here (the listener requires one), so the
CN may name the user, as etcd's AuthInfoFromTLS does (`client_cert_cn(scope)`). Plain-HTTP listeners and
the peer listener never use this (their scopes have no "tls" extension): a request forwarded by another
member is never taken for a client with the member's certificate's name. Nothing here runs per request
but one dict lookup on TLS client listeners.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

Registry = dict[tuple[str, int], dict[str, Any]]


def client_cert_cn(scope: Scope) -> str | None:
    """The CommonName of the request's verified client certificate; None without one (or without TLS)."""
    extensions = scope.get("extensions")  # plain HTTP (httptools) sets none: one lookup, no allocation
    tls = extensions.get("tls") if extensions else None
    return tls.get("client_cert_cn") if tls else None


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for a finished handshake; None when no certificate was verified."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    # Go's pkix.Name keeps the last CommonName of the subject; so does etcd's user name.
    cn = cns[-1].value if cns else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)],
        "client_cert_name": cert.subject.rfc4514_string(),
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "client_cert_cn": cn if isinstance(cn, str) and cn else None,
    }


def _recording(base: type[asyncio.Protocol], registry: Registry) -> type[asyncio.Protocol]:
    """`base` (uvicorn's HTTP or WebSocket protocol) noting its connection's certificate by client address."""

    class Recording(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if self.client is not None:
                ext = tls_extension(transport.get_extra_info("ssl_object"))
                if ext is not None:
                    registry[tuple(self.client)] = ext

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None:
                registry.pop(tuple(self.client), None)
            super().connection_lost(exc)

    Recording.__name__ = f"ClientCert{base.__name__}"
    return Recording


class _WithTLSScope:
    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client is not None:
            ext = self.registry.get(tuple(client))
            if ext is not None:
                scope["extensions"] = {**(scope.get("extensions") or {}), "tls": ext}
        await self.app(scope, receive, send)


def expose_client_certs(config: uvicorn.Config) -> None:
    """On a loaded uvicorn config: record client certificates and put them in every scope (module doc).

    A WebSocket upgrade hands the connection to the WebSocket protocol, whose `connection_lost` then
    forgets the entry (the HTTP protocol's is never called after the hand-over)."""
    registry: Registry = {}
    config.http_protocol_class = _recording(config.http_protocol_class, registry)
    if config.ws_protocol_class is not None:
        config.ws_protocol_class = _recording(config.ws_protocol_class, registry)
    config.loaded_app = _WithTLSScope(config.loaded_app, registry)
