"""TLS on the client URLs, on a real member process: who gets an answer and who is refused.

The behaviour on the wire is etcd 3.4's (checked against /usr/bin/etcd where the case exists there):
a plain-HTTP request to an https port gets no answer at all (etcd's TLS listener drops the connection,
it does not reply "400 Client sent an HTTP request to an HTTPS server"); without a client certificate,
or with one from another CA, the handshake fails under --client-cert-auth.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.servers import _launch, _two_free_ports
from tests.tls.conftest import Start, member_argv
from tests.tls_certs import TLSFiles, make_tls

PUT = {"key": "YQ==", "value": "Yg=="}


def client_flags(certs: TLSFiles) -> list[str]:
    return ["--cert-file", str(certs.cert), "--key-file", str(certs.key), "--trusted-ca-file", str(certs.ca),
            "--client-cert-auth"]


def raw_answer(url: str, data: bytes, context: ssl.SSLContext | None = None) -> bytes:
    """Everything the server sends back for `data` until it closes (or 5 s pass)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        stream: socket.socket = context.wrap_socket(sock, server_hostname=parts.hostname) if context else sock
        stream.sendall(data)
        out = b""
        try:
            while chunk := stream.recv(65536):
                out += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        return out


def test_https_with_a_trusted_ca_and_a_client_certificate(start: Start, certs: TLSFiles) -> None:
    with certs.client("root") as client:
        member = start(client_flags(certs), ready=client)
        assert member.url.startswith("https://")
        assert client.post(f"{member.url}/v3/kv/put", json=PUT).status_code == 200
        data = client.post(f"{member.url}/v3/kv/range", json={"key": "YQ=="}).json()
    assert data["kvs"][0]["value"] == "Yg=="


@pytest.mark.parametrize("kind", ["etcd", "etcdpy"])
def test_plain_http_to_an_https_port_gets_no_answer(start: Start, certs: TLSFiles, kind: str) -> None:
    with certs.client("root") as client:
        member = start(client_flags(certs), kind=kind, ready=client)
    http_url = member.url.replace("https://", "http://")
    request = (f"POST /v3/kv/range HTTP/1.1\r\nHost: {urlsplit(http_url).netloc}\r\n"
               "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").encode()
    assert raw_answer(http_url, request) == b""  # as etcd: the connection closes, no HTTP status
    with httpx.Client() as plain, pytest.raises(httpx.HTTPError):
        plain.post(f"{http_url}/v3/kv/range", json={"key": "YQ=="})


@pytest.mark.parametrize("kind", ["etcd", "etcdpy"])
def test_refused_without_a_client_certificate_or_with_one_from_an_unknown_ca(
        start: Start, certs: TLSFiles, tmp_path: Path, kind: str) -> None:
    with certs.client("root") as client:
        member = start(client_flags(certs), kind=kind, ready=client)
    with certs.client(None) as anonymous, pytest.raises((httpx.ConnectError, httpx.ReadError,
                                                         httpx.RemoteProtocolError)):
        anonymous.post(f"{member.url}/v3/kv/range", json={"key": "YQ=="})
    stranger_ca = trustme.CA()
    stranger = stranger_ca.issue_cert("eve@clients.test", common_name="root")
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    stranger.configure_cert(ctx)
    with httpx.Client(verify=ctx) as client, pytest.raises((httpx.ConnectError, httpx.ReadError,
                                                            httpx.RemoteProtocolError)):
        client.post(f"{member.url}/v3/kv/range", json={"key": "YQ=="})


def test_client_refuses_a_server_certificate_of_an_unknown_ca(start: Start, certs: TLSFiles,
                                                              tmp_path: Path) -> None:
    with certs.client("root") as client:
        member = start(client_flags(certs), ready=client)
    other = make_tls(tmp_path / "other")
    with httpx.Client(verify=other.context(None)) as client, pytest.raises(httpx.ConnectError) as err:
        client.get(f"{member.url}/health")
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_without_client_cert_auth_no_certificate_is_asked(start: Start, certs: TLSFiles) -> None:
    flags = ["--cert-file", str(certs.cert), "--key-file", str(certs.key)]
    with certs.client(None) as client:
        member = start(flags, ready=client)
        assert client.post(f"{member.url}/v3/kv/put", json=PUT).status_code == 200


def test_auto_tls_writes_a_self_signed_certificate_like_etcd(start: Start, tmp_path: Path) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with httpx.Client(verify=insecure) as client:
        member = start(["--auto-tls"], ready=client)
        assert client.post(f"{member.url}/v3/kv/put", json=PUT).status_code == 200
    fixtures = member.data_dir / "fixtures" / "client"
    assert (fixtures / "key.pem").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((fixtures / "cert.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "etcd"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    with pytest.raises(httpx.ConnectError):  # self-signed: a verifying client refuses it
        httpx.get(f"{member.url}/health")
    # A restart keeps the certificate it wrote.
    before = (fixtures / "cert.pem").read_bytes()
    member.stop()
    with httpx.Client(verify=insecure) as client:
        again = start(["--auto-tls", "--data-dir", str(member.data_dir)], ready=client)
        assert client.post(f"{again.url}/v3/kv/range", json={"key": "YQ=="}).json()["count"] == "1"
    assert (fixtures / "cert.pem").read_bytes() == before


def _tls12_client(certs: TLSFiles, openssl_cipher: str) -> ssl.SSLContext:
    ctx = certs.context("root")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(openssl_cipher)
    return ctx


def test_cipher_suites_limit_tls12(start: Start, certs: TLSFiles) -> None:
    flags = client_flags(certs) + ["--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
    with certs.client("root") as client:  # TLS 1.3 is not limited by --cipher-suites (as in Go)
        member = start(flags, ready=client)
    with httpx.Client(verify=_tls12_client(certs, "ECDHE-ECDSA-AES128-GCM-SHA256")) as client:
        assert client.get(f"{member.url}/health").status_code == 200
    with httpx.Client(verify=_tls12_client(certs, "ECDHE-ECDSA-AES256-GCM-SHA384")) as client, \
            pytest.raises(httpx.ConnectError):
        client.get(f"{member.url}/health")


def test_tls_min_version_13_refuses_a_tls12_client(start: Start, certs: TLSFiles) -> None:
    with certs.client("root") as client:
        member = start(client_flags(certs) + ["--tls-min-version", "TLS1.3"], ready=client)
    ctx = certs.context("root")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=ctx) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{member.url}/health")


def test_yaml_transport_security_sections(certs: TLSFiles, tmp_path: Path) -> None:
    """The config file's transport-security sections, as etcd's YAML has them, turn TLS on both links."""
    client_port, peer_port = _two_free_ports()
    client_url, peer_url = f"https://127.0.0.1:{client_port}", f"https://127.0.0.1:{peer_port}"
    section = {"cert-file": str(certs.cert), "key-file": str(certs.key), "trusted-ca-file": str(certs.ca),
               "client-cert-auth": True}
    doc = {
        "name": "y", "data-dir": str(tmp_path / "y.data"),
        "listen-client-urls": client_url, "advertise-client-urls": client_url,
        "listen-peer-urls": peer_url, "initial-advertise-peer-urls": peer_url,
        "initial-cluster": f"y={peer_url}",
        "client-transport-security": section, "peer-transport-security": section,
        "cipher-suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
    }
    path = tmp_path / "etcd.yaml"
    path.write_text(yaml.safe_dump(doc))
    argv, env = member_argv("etcdpy", "y", tmp_path / "y.data", client_url, peer_url, [])
    argv = argv[:3] + ["--config-file", str(path)]
    with certs.client("root") as client:

        def ready(_: httpx.Client, url: str) -> bool:
            try:
                return client.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        member = _launch(argv, tmp_path, client_url, tmp_path / "y.data", "y", tmp_path / "y.log", ready, env)
        try:
            assert client.post(f"{client_url}/v3/kv/put", json=PUT).status_code == 200
            with certs.client(None) as anonymous:
                for url in (client_url, peer_url):  # both links now want a client certificate
                    with pytest.raises(httpx.HTTPError):
                        anonymous.get(f"{url}/health")
        finally:
            member.kill()
