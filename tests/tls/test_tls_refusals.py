"""Mis-configured TLS is refused at start as etcd 3.4 refuses it: the same one-line message (etcd logs it
as `etcdmain: <message>`) and exit status 1. Each case runs /usr/bin/etcd and etcdpy with the same flags.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import _two_free_ports
from tests.tls.conftest import member_argv
from tests.tls_certs import TLSFiles

CLI_TIMEOUT_S = 30.0

# name -> (https client URL?, https peer URL?, flags from the certificates)
Case = tuple[bool, bool, Callable[[TLSFiles, Path], list[str]]]
CASES: dict[str, Case] = {
    "https client url without a certificate": (True, False, lambda c, t: []),
    "https peer url without a certificate": (False, True, lambda c, t: []),
    "client key without a certificate": (True, False, lambda c, t: ["--key-file", str(c.key)]),
    "peer certificate without a key": (False, True, lambda c, t: ["--peer-cert-file", str(c.cert)]),
    "peer key without a certificate on an http peer url": (False, False,
                                                           lambda c, t: ["--peer-key-file", str(c.key)]),
    "missing client CA file": (True, False, lambda c, t: [
        "--cert-file", str(c.cert), "--key-file", str(c.key), "--trusted-ca-file", str(t / "no-ca.pem"),
        "--client-cert-auth"]),
    "missing peer CA file on an http peer url": (False, False, lambda c, t: [
        "--peer-trusted-ca-file", str(t / "no-ca.pem")]),
    "missing certificate file": (True, False, lambda c, t: [
        "--cert-file", str(t / "no.crt"), "--key-file", str(c.key)]),
    "key of another certificate": (False, True, lambda c, t: [
        "--peer-cert-file", str(c.client_cert("someone")[0]), "--peer-key-file", str(c.key)]),
    "unknown cipher suite": (True, False, lambda c, t: [
        "--cert-file", str(c.cert), "--key-file", str(c.key), "--cipher-suites", "TLS_FANCY"]),
}


def run(kind: str, tmp: Path, client_https: bool, peer_https: bool, flags: list[str],
        ports: tuple[int, int]) -> tuple[int, str]:
    client_url = f"{'https' if client_https else 'http'}://127.0.0.1:{ports[0]}"
    peer_url = f"{'https' if peer_https else 'http'}://127.0.0.1:{ports[1]}"
    argv, env = member_argv(kind, kind, tmp / f"{kind}.data", client_url, peer_url, flags)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, env=env, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, lines[-1] if lines else ""


@pytest.mark.parametrize("case", list(CASES))
def test_refused_like_etcd(case: str, certs: TLSFiles, tmp_path: Path) -> None:
    client_https, peer_https, make_flags = CASES[case]
    flags = make_flags(certs, tmp_path)
    ports = _two_free_ports()
    etcd_code, etcd_line = run("etcd", tmp_path, client_https, peer_https, flags, ports)
    code, line = run("etcdpy", tmp_path, client_https, peer_https, flags, ports)
    assert "etcdmain: " in etcd_line, etcd_line
    expected = etcd_line.split("etcdmain: ", 1)[1]
    assert (code, line) == (etcd_code, expected) == (1, expected)
    assert not (tmp_path / "etcdpy.data" / "member").exists()  # refused before the member was created
