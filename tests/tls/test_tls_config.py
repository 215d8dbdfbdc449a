"""TLS settings in the one config object: flags, etcd's YAML sections (and their type errors, in etcd's
words), etcd 3.5's --tls-min-version checks, and the contexts `app/tls.py` builds from them."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml

from etcdpy.app.config import ConfigError, load_file, parse_args
from etcdpy.app.local_cluster import member_argv
from etcdpy.app.tls import openssl_ciphers, prepare
from tests.tls_certs import TLSFiles


def write(tmp_path: Path, doc: dict[str, object]) -> str:
    path = tmp_path / "etcd.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_flags() -> None:
    cfg = parse_args(["--cert-file", "c", "--key-file=k", "--client-cert-auth", "--peer-auto-tls",
                      "--cipher-suites", "TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_256_GCM_SHA384",
                      "--tls-min-version", "TLS1.2"])
    assert (cfg.cert_file, cfg.key_file, cfg.client_cert_auth, cfg.peer_auto_tls) == ("c", "k", True, True)
    assert openssl_ciphers(cfg.cipher_suites) == "AES128-GCM-SHA256:AES256-GCM-SHA384"


def test_yaml_sections_as_etcd_reads_them(tmp_path: Path) -> None:
    cfg = load_file(write(tmp_path, {
        "client-transport-security": {"cert-file": "c.crt", "key-file": "c.key", "client-cert-auth": True,
                                      "trusted-ca-file": "ca.pem", "auto-tls": False, "crl-file": "x"},
        "peer-transport-security": {"cert-file": "p.crt", "key-file": "p.key", "auto-tls": True},
        "cipher-suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        "tls-min-version": "TLS1.2",
        "cert-file": "ignored-at-the-top-level.crt",  # etcd reads TLS only from the sections
    }))
    assert (cfg.cert_file, cfg.key_file, cfg.trusted_ca_file, cfg.client_cert_auth) == (
        "c.crt", "c.key", "ca.pem", True)
    assert (cfg.peer_cert_file, cfg.peer_key_file, cfg.peer_auto_tls) == ("p.crt", "p.key", True)
    assert cfg.cipher_suites == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"


@pytest.mark.parametrize("doc, message", [
    ({"client-transport-security": 5}, "cannot unmarshal number into Go struct field "
     "configYAML.client-transport-security of type embed.securityConfig"),
    ({"client-transport-security": {"client-cert-auth": "yes-please"}}, "cannot unmarshal string into Go "
     "struct field securityConfig.client-transport-security.client-cert-auth of type bool"),
    ({"cipher-suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, "cannot unmarshal string into Go struct "
     "field configYAML.cipher-suites of type []string"),
])
def test_yaml_type_errors_in_etcds_words(tmp_path: Path, doc: dict[str, object], message: str) -> None:
    # etcd 3.4: "error verifying flags, error unmarshaling JSON: while decoding JSON: json: <message>.
    # See 'etcd --help'." and exit status 1.
    with pytest.raises(ConfigError) as err:
        load_file(write(tmp_path, doc))
    assert str(err.value) == ("error verifying flags, error unmarshaling JSON: while decoding JSON: json: "
                              f"{message}. See 'etcdpy --help'.")
    assert err.value.exit_code == 1


@pytest.mark.parametrize("argv, message", [
    (["--tls-min-version", "TLS1.1"], 'unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)'),
    (["--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_RSA_WITH_AES_128_GCM_SHA256"],
     "cipher suites cannot be configured when only TLS1.3 is enabled"),
])
def test_tls_min_version_checks_of_etcd_35(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_args(argv)
    assert str(err.value) == f"error verifying flags, {message}. See 'etcdpy --help'."


def test_contexts(certs: TLSFiles, tmp_path: Path) -> None:
    files = ["--cert-file", str(certs.cert), "--key-file", str(certs.key), "--trusted-ca-file", str(certs.ca)]
    plain = prepare(parse_args(["--data-dir", str(tmp_path / "d")]))
    assert (plain.client, plain.peer, plain.peer_client) == (None, None, None)  # nothing to do for http
    setup = prepare(parse_args([
        "--data-dir", str(tmp_path / "d"), *files, "--client-cert-auth", "--tls-min-version", "TLS1.3",
        "--listen-client-urls", "https://127.0.0.1:1", "--advertise-client-urls", "https://127.0.0.1:1",
        "--peer-auto-tls", "--listen-peer-urls", "https://127.0.0.1:2",
        "--initial-advertise-peer-urls", "https://127.0.0.1:2", "--initial-cluster", "default=https://127.0.0.1:2",
    ]))
    assert setup.client is not None and setup.client.verify_mode == ssl.CERT_REQUIRED
    assert setup.client.minimum_version == ssl.TLSVersion.TLSv1_3 and setup.client_cert_auth
    # auto-tls: a self-signed peer certificate, and (as etcd's InsecureSkipVerify) peers are not verified
    assert (tmp_path / "d" / "fixtures" / "peer" / "cert.pem").exists()
    assert setup.peer is not None and setup.peer.verify_mode == ssl.CERT_NONE
    assert setup.peer_client is not None and setup.peer_client.verify_mode == ssl.CERT_NONE


def test_local_cluster_over_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # members' data dirs are relative, auto-tls writes into them
    for i in range(3):
        cfg = parse_args(member_argv(i, "t", ["--auto-tls", "--peer-auto-tls"], "https")[3:])
        assert cfg.listen_client_urls[0].startswith("https://")
        assert all(u.startswith("https://") for urls in cfg.cluster_members.values() for u in urls)
        setup = prepare(cfg)
        assert setup.client is not None and setup.peer is not None and setup.peer_client is not None
