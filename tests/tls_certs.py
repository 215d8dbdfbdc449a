"""Certificates for TLS tests, made with trustme: one CA, a server certificate for 127.0.0.1 (used by
members on client and peer links, as etcd's own test fixtures do) and client certificates by CN.

`TLSFiles.flags()` are the etcd flags that put a member on TLS; `TLSFiles.client()` an httpx client
that trusts the CA and presents a client certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trustme


@dataclass(frozen=True)
class TLSFiles:
    dir: Path
    ca: Path
    cert: Path  # server (and peer) certificate for 127.0.0.1 and localhost
    key: Path
    client_tls: bool = True  # https client URLs, with --client-cert-auth
    peer_tls: bool = True  # https peer URLs, with --peer-client-cert-auth
    issuer: trustme.CA = field(default_factory=trustme.CA, compare=False, repr=False)

    def client_cert(self, cn: str) -> tuple[Path, Path]:
        """A client certificate (and key) whose subject CN is `cn`, signed by the CA; made once."""
        cert, key = self.dir / f"client-{cn}.crt", self.dir / f"client-{cn}.key"
        if not cert.exists():
            issued = self.issuer.issue_cert(f"{cn}@clients.test", common_name=cn)
            issued.private_key_pem.write_to_path(str(key))
            issued.cert_chain_pems[0].write_to_path(str(cert))
        return cert, key

    def flags(self) -> list[str]:
        out: list[str] = []
        if self.client_tls:
            out += ["--cert-file", str(self.cert), "--key-file", str(self.key),
                    "--trusted-ca-file", str(self.ca), "--client-cert-auth"]
        if self.peer_tls:
            out += ["--peer-cert-file", str(self.cert), "--peer-key-file", str(self.key),
                    "--peer-trusted-ca-file", str(self.ca), "--peer-client-cert-auth"]
        return out

    def context(self, cn: str | None = "root") -> ssl.SSLContext:
        """A client context trusting the CA, presenting the certificate for `cn` (None: no certificate)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if cn is not None:
            cert, key = self.client_cert(cn)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def client(self, cn: str | None = "root", **kwargs: object) -> httpx.Client:
        return httpx.Client(verify=self.context(cn), **kwargs)  # type: ignore[arg-type]


def make_tls(directory: Path, *, client_tls: bool = True, peer_tls: bool = True) -> TLSFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="etcdpy-member")
    files = TLSFiles(directory, directory / "ca.pem", directory / "server.crt", directory / "server.key",
                     client_tls, peer_tls, ca)
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    return files
