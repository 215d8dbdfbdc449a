"""app/config.py and the `python -m app` command line: etcd's flag syntax, defaults, errors, config files.

Expected messages are Go's flag package texts as etcd 3.4 prints them (checked against /usr/bin/etcd):
`flag provided but not defined: -foo`, `flag needs an argument: -name`,
`invalid value "abc" for flag -heartbeat-interval: parse error`, all with exit status 2.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from etcdpy.app.config import Config, ConfigError, load_file, parse_args
from etcdpy.app.server.identity import member_id
from etcdpy.bench.servers import _server_env as bench_server_env
from tests.servers import Server, _launch, etcdpy_env, etcdpy_ready, free_port

CLI_TIMEOUT_S = 30.0


def run_cli(*args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` (with `env` added) for argument errors, which must exit before serving."""
    env = etcdpy_env(env)
    return subprocess.run([sys.executable, "-m", "etcdpy.app", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


# ------------------------------------------------------------------------------------ flag syntax

@pytest.mark.parametrize("argv", [
    ["--name", "x"], ["--name=x"], ["-name", "x"], ["-name=x"],
])
def test_flag_syntaxes(argv: list[str]) -> None:
    cfg = parse_args(argv)
    assert cfg.name == "x"
    assert cfg.data_dir == "x.etcdpy"  # etcd's default data dir is ${name}.etcd


def test_value_may_contain_equals_and_start_with_dash() -> None:
    cfg = parse_args(["--initial-cluster-token=a=b", "--cors", "-weird-"])
    assert cfg.initial_cluster_token == "a=b"
    assert cfg.cors == "-weird-"


def test_last_occurrence_wins() -> None:
    assert parse_args(["--name", "a", "--name=b"]).name == "b"


def test_defaults() -> None:
    cfg = parse_args([])
    assert cfg == Config()
    assert cfg.name == "default"
    assert cfg.data_dir == "default.etcdpy"
    assert cfg.listen_client_urls == ["http://localhost:2379"]
    assert cfg.advertise_client_urls == ["http://localhost:2379"]
    assert cfg.listen_peer_urls == ["http://localhost:2380"]
    assert cfg.initial_advertise_peer_urls == ["http://localhost:2380"]
    assert cfg.initial_cluster_state == "new"
    assert cfg.initial_cluster_token == "etcd-cluster"
    assert (cfg.heartbeat_interval, cfg.election_timeout) == (100, 1000)
    assert (cfg.max_request_bytes, cfg.max_txn_ops) == (1572864, 128)
    assert cfg.snapshot_count == 100000
    # A lone member names itself with its advertised peer URLs.
    assert cfg.cluster_members == {"default": ["http://localhost:2380"]}


def test_explicit_data_dir_wins_over_name() -> None:
    cfg = parse_args(["--name", "n1", "--data-dir", "/tmp/somewhere"])
    assert (cfg.name, cfg.data_dir) == ("n1", "/tmp/somewhere")


def test_types_and_lists() -> None:
    cfg = parse_args([
        "--heartbeat-interval", "50", "--election-timeout=500", "--max-txn-ops", "7",
        "--max-request-bytes=1024", "--snapshot-count", "10", "--quota-backend-bytes", "4096",
        "--listen-client-urls", "http://127.0.0.1:1,http://127.0.0.2:2",
        "--advertise-client-urls", "http://127.0.0.1:1",
        "--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000",
        "--initial-cluster-state", "existing",
    ])
    assert (cfg.heartbeat_interval, cfg.election_timeout, cfg.max_txn_ops) == (50, 500, 7)
    assert (cfg.max_request_bytes, cfg.snapshot_count, cfg.quota_backend_bytes) == (1024, 10, 4096)
    assert all(isinstance(v, int) for v in (cfg.heartbeat_interval, cfg.max_txn_ops))
    assert cfg.listen_client_urls == ["http://127.0.0.1:1", "http://127.0.0.2:2"]
    assert cfg.advertise_client_urls == ["http://127.0.0.1:1"]
    assert (cfg.auto_compaction_mode, cfg.auto_compaction_retention) == ("revision", "1000")
    assert cfg.initial_cluster_state == "existing"


# ------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize(("argv", "message"), [
    (["--foo"], "flag provided but not defined: -foo"),
    (["-foo=1"], "flag provided but not defined: -foo"),
    (["--name", "x", "--nope", "1"], "flag provided but not defined: -nope"),
    (["--name"], "flag needs an argument: -name"),
    (["-data-dir"], "flag needs an argument: -data-dir"),
    (["--heartbeat-interval", "abc"], 'invalid value "abc" for flag -heartbeat-interval: parse error'),
    (["--max-txn-ops=1.5"], 'invalid value "1.5" for flag -max-txn-ops: parse error'),
    (["--election-timeout="], 'invalid value "" for flag -election-timeout: parse error'),
])
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_args(argv)
    assert str(info.value) == message


@pytest.mark.parametrize("argv", [
    ["positional"],
    ["--max-txn-ops", "0"],
    ["--max-request-bytes=-1"],
    ["--initial-cluster-state", "bogus"],
    ["--listen-client-urls", "foo"],
    ["--advertise-client-urls", "ftp://127.0.0.1:1"],
    ["--initial-cluster", "garbage"],
])
def test_invalid_values_rejected(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_args(argv)


@pytest.mark.parametrize(("args", "message"), [
    (["--foo"], "flag provided but not defined: -foo"),
    (["--name"], "flag needs an argument: -name"),
    (["--heartbeat-interval", "abc"], 'invalid value "abc" for flag -heartbeat-interval: parse error'),
])
def test_cli_reports_flag_errors_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.splitlines()
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing was created: no data dir for a refused start


# ------------------------------------------------------------------------------ --initial-cluster

def test_initial_cluster_naming_itself_with_matching_urls() -> None:
    cfg = parse_args([
        "--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", "n1=http://127.0.0.1:2380,n2=http://127.0.0.2:2380,n3=http://127.0.0.3:2380",
    ])
    assert cfg.cluster_members == {
        "n1": ["http://127.0.0.1:2380"], "n2": ["http://127.0.0.2:2380"], "n3": ["http://127.0.0.3:2380"],
    }


def test_initial_cluster_member_with_several_urls_in_any_order() -> None:
    cfg = parse_args([
        "--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2,http://127.0.0.1:1",
        "--initial-cluster", "n1=http://127.0.0.1:1,n1=http://127.0.0.1:2",
    ])
    assert sorted(cfg.cluster_members["n1"]) == ["http://127.0.0.1:1", "http://127.0.0.1:2"]


@pytest.mark.parametrize("argv", [
    # The member's entry has other URLs than it advertises.
    ["--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
     "--initial-cluster", "n1=http://127.0.0.1:9999"],
    # The member is not in the initial cluster at all.
    ["--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
     "--initial-cluster", "n2=http://127.0.0.1:2380"],
    # Default advertise URL (localhost:2380) does not match.
    ["--initial-cluster", "default=http://127.0.0.1:2380"],
])
def test_initial_cluster_mismatch_rejected(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_args(argv)


def test_cli_rejects_initial_cluster_mismatch(tmp_path: Path) -> None:
    proc = run_cli("--name", "a", "--initial-cluster", "a=http://127.0.0.1:1",
                   "--initial-advertise-peer-urls", "http://127.0.0.1:2", cwd=tmp_path)
    assert proc.returncode == 2
    assert "initial-cluster" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- config files

def write_yaml(path: Path, doc: dict[str, object]) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_config_file_uses_flag_names(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "cfg.yaml", {
        "name": "node1",
        "data-dir": "/var/lib/x",
        "listen-client-urls": "http://127.0.0.1:4001,http://127.0.0.1:4002",
        "advertise-client-urls": ["http://127.0.0.1:4001"],
        "initial-advertise-peer-urls": "http://127.0.0.1:4003",
        "initial-cluster": "node1=http://127.0.0.1:4003",
        "initial-cluster-token": "tok",
        "heartbeat-interval": 200,
        "election-timeout": "2000",
        "max-txn-ops": 64,
        "auto-compaction-retention": 1,
    })
    cfg = parse_args(["--config-file", path])
    assert cfg.name == "node1" and cfg.data_dir == "/var/lib/x"
    assert cfg.listen_client_urls == ["http://127.0.0.1:4001", "http://127.0.0.1:4002"]
    assert cfg.advertise_client_urls == ["http://127.0.0.1:4001"]
    assert cfg.cluster_members == {"node1": ["http://127.0.0.1:4003"]}
    assert (cfg.heartbeat_interval, cfg.election_timeout, cfg.max_txn_ops) == (200, 2000, 64)
    assert cfg.auto_compaction_retention == "1"
    assert cfg.initial_cluster_token == "tok"
    assert cfg.config_file == path
    assert load_file(path) == cfg


def test_config_file_other_flags_ignored(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "cfg.yaml", {"name": "from-file"})
    for argv in (["--config-file", path, "--name", "from-flag", "--max-txn-ops", "3"],
                 ["--name=from-flag", f"--config-file={path}", "--data-dir", "elsewhere"]):
        cfg = parse_args(argv)
        assert cfg.name == "from-file"
        assert cfg.data_dir == "from-file.etcdpy"  # default from the file's name, not the flag
        assert cfg.max_txn_ops == 128


def test_config_file_defaults_and_null_values(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    assert load_file(str(tmp_path / "empty.yaml")).data_dir == "default.etcdpy"
    path = write_yaml(tmp_path / "nulls.yaml", {"name": None, "data-dir": None, "max-txn-ops": None})
    cfg = load_file(path)
    assert (cfg.name, cfg.data_dir, cfg.max_txn_ops) == ("default", "default.etcdpy", 128)


@pytest.mark.parametrize(("content", "fragment"), [
    ("name: [unclosed", "not valid YAML"),
    ("- a list\n- not a mapping\n", "mapping"),
    ("max-txn-ops: many\n", 'invalid value "many" for flag -max-txn-ops'),
    ("initial-cluster-state: bogus\n", "initial-cluster-state"),
])
def test_config_file_errors(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(ConfigError) as info:
        parse_args(["--config-file", str(tmp_path / "bad.yaml")])
    assert fragment in str(info.value)


def test_missing_config_file_is_a_cli_error(tmp_path: Path) -> None:
    proc = run_cli("--config-file", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "nope.yaml" in proc.stderr


# ------------------------------------------------------------------------- ETCD_* environment variables
# etcd 3.4 (pkg/flags.SetFlagsFromEnv), asked on 127.0.0.1: `ETCD_NAME=x` sets --name and logs
# "recognized and used environment variable ETCD_NAME=x"; an ETCD_ variable no flag has is logged as
# unrecognized; one whose flag is also on the command line stops the start (exit 1); a bad value is
# "error verifying flags, invalid value "abc" for ETCD_SNAPSHOT_COUNT: parse error" (exit 1).

def test_environment_variables_set_flags(caplog: pytest.LogCaptureFixture) -> None:
    env = {"ETCD_NAME": "envname", "ETCD_SNAPSHOT_COUNT": "0x10", "ETCD_CLIENT_CERT_AUTH": "true",
           "ETCD_LISTEN_CLIENT_URLS": "http://127.0.0.1:1,http://127.0.0.1:2", "ETCD_FOO": "bar",
           "ETCD_HEARTBEAT_INTERVAL": "", "ETCDCTL_API": "3", "PATH": "/bin"}
    with caplog.at_level("INFO", logger="etcdpy.config"):
        cfg = parse_args(["--election-timeout", "1500"], environ=env)
    assert (cfg.name, cfg.data_dir, cfg.snapshot_count, cfg.client_cert_auth) == (
        "envname", "envname.etcdpy", 16, True)
    assert cfg.listen_client_urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert cfg.heartbeat_interval == Config().heartbeat_interval  # an empty variable sets nothing
    assert cfg.election_timeout == 1500
    messages = [r.getMessage() for r in caplog.records]
    assert "recognized and used environment variable ETCD_NAME=envname" in messages
    assert "unrecognized environment variable ETCD_FOO=bar" in messages
    assert not any("ETCDCTL_API" in m for m in messages)


def test_an_environment_variable_shadowed_by_a_flag_stops_the_start() -> None:
    with pytest.raises(ConfigError) as err:
        parse_args(["--snapshot-count", "6"], environ={"ETCD_SNAPSHOT_COUNT": "5"})
    assert err.value.exit_code == 1
    assert str(err.value) == ('conflicting environment variable "ETCD_SNAPSHOT_COUNT" is shadowed by '
                              "corresponding command-line flag (either unset environment variable or "
                              "disable flag)")


def test_a_bad_environment_value_is_refused_with_etcds_words(tmp_path: Path) -> None:
    proc = run_cli("--data-dir", str(tmp_path / "d"), cwd=tmp_path, env={"ETCD_SNAPSHOT_COUNT": "abc"})
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith('error verifying flags, invalid value "abc" for ETCD_SNAPSHOT_COUNT: '
                                        "parse error. See 'etcdpy --help'.")


def test_a_config_file_from_the_environment_replaces_flags_and_variables(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "cfg.yaml", {"name": "fromfile"})
    cfg = parse_args(["--name", "fromflag"], environ={"ETCD_CONFIG_FILE": path, "ETCD_SNAPSHOT_COUNT": "7"})
    assert cfg.name == "fromfile" and cfg.config_file == path
    assert cfg.snapshot_count == Config().snapshot_count


# -------------------------------------------------------------------------------------- end to end

def launch(argv: list[str], cwd: Path, url: str, data_dir: Path,
           extra_env: dict[str, str] | None = None) -> Server:
    env = etcdpy_env(extra_env)
    return _launch([sys.executable, "-m", "etcdpy.app", *argv], cwd, url, data_dir, "etcdpy",
                   cwd / "etcdpy.log", etcdpy_ready, env)


def test_environment_variables_end_to_end(tmp_path: Path) -> None:
    port, peer = free_port(), free_port()
    url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    data_dir = tmp_path / "envdata"
    env = {"ETCD_NAME": "envnode", "ETCD_DATA_DIR": str(data_dir), "ETCD_LISTEN_CLIENT_URLS": url,
           "ETCD_ADVERTISE_CLIENT_URLS": url, "ETCD_LISTEN_PEER_URLS": peer_url,
           "ETCD_INITIAL_ADVERTISE_PEER_URLS": peer_url, "ETCD_INITIAL_CLUSTER": f"envnode={peer_url}",
           "ETCD_INITIAL_CLUSTER_TOKEN": "env-token"}
    server = launch([], tmp_path, url, data_dir, env)
    try:
        with httpx.Client(timeout=10) as client:
            resp = client.post(f"{url}/v3/cluster/member/list", json={})
            assert resp.status_code == 200, resp.text
            [member] = resp.json()["members"]
            assert member["name"] == "envnode" and member["peerURLs"] == [peer_url]
            assert member["ID"] == str(member_id([peer_url], "env-token"))
        assert (data_dir / "member").is_dir()
    finally:
        server.stop()
    log = (tmp_path / "etcdpy.log").read_text()
    assert "recognized and used environment variable ETCD_NAME=envnode" in log


def test_config_file_end_to_end(tmp_path: Path) -> None:
    port, peer = free_port(), free_port()
    url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    data_dir = tmp_path / "data" / "here"
    path = write_yaml(tmp_path / "cfg.yaml", {
        "name": "cfgnode",
        "data-dir": str(data_dir),
        "listen-client-urls": url,
        "advertise-client-urls": url,
        "listen-peer-urls": peer_url,
        "initial-advertise-peer-urls": peer_url,
        "initial-cluster": f"cfgnode={peer_url}",
        "initial-cluster-token": "cfg-token",
    })
    # Flags next to --config-file are ignored: this bogus data dir must not be used.
    server = launch(["--config-file", path, "--data-dir", str(tmp_path / "ignored")], tmp_path, url, data_dir)
    try:
        with httpx.Client(timeout=10) as client:
            resp = client.post(f"{url}/v3/kv/put", json={"key": b64("k"), "value": b64("v")})
            assert resp.status_code == 200, resp.text
            header = resp.json()["header"]
            # The member id is derived from the configured peer URLs and cluster token, as etcd does.
            assert header["member_id"] == str(member_id([peer_url], "cfg-token"))
        assert (data_dir / "member").is_dir()
        assert not (tmp_path / "ignored").exists()
        assert not (tmp_path / "cfgnode.etcdpy").exists()
        server = server.restart()
        with httpx.Client(timeout=10) as client:
            kvs = client.post(f"{url}/v3/kv/range", json={"key": b64("k")}).json()["kvs"]
            assert base64.b64decode(kvs[0]["value"]) == b"v"
    finally:
        server.stop()


def port_is_free(port: int) -> bool:
    for host in ("127.0.0.1", "localhost"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def test_no_flags_creates_default_data_dir_in_cwd(tmp_path: Path) -> None:
    """With no flags at all etcdpy serves localhost:2379 from ./default.etcdpy.

    When 2379 is taken (another etcd on this machine), the same default-name logic is checked through
    a config file that sets only the ports: the data dir is still ./default.etcdpy in the cwd.
    """
    if port_is_free(2379) and port_is_free(2380):
        argv: list[str] = []
        url = "http://localhost:2379"
    else:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = ["--config-file", write_yaml(tmp_path / "ports.yaml", {
            "listen-client-urls": url, "advertise-client-urls": url})]
    server = launch(argv, tmp_path, url, tmp_path / "default.etcdpy")
    try:
        with httpx.Client(timeout=10) as client:
            resp = client.post(f"{url}/v3/kv/put", json={"key": b64("k"), "value": b64("v")})
            assert resp.status_code == 200, resp.text
        assert (tmp_path / "default.etcdpy" / "member").is_dir()
    finally:
        server.stop()


# Go flag parsing details, as /usr/bin/etcd 3.4 behaves.
@pytest.mark.parametrize(("argv", "expected"), [
    (["--heartbeat-interval", "0x64"], 100),
    (["--heartbeat-interval", "010"], 8),  # Go reads a leading 0 as octal
    (["--snapshot-count", "1_000"], 1000),
])
def test_integer_flags_take_go_syntax(argv: list[str], expected: int) -> None:
    cfg = parse_args(argv)
    assert getattr(cfg, argv[0][2:].replace("-", "_")) == expected


@pytest.mark.parametrize(("argv", "message", "code"), [
    (["--heartbeat-interval", "-5"], 'invalid value "-5" for flag -heartbeat-interval: parse error', 2),
    (["---name", "x"], "bad flag syntax: ---name", 2),
    (["foo"], "error verifying flags, 'foo' is not a valid flag", 1),
    (["--initial-cluster-state", "bogus"], 'invalid value "bogus" for flag -initial-cluster-state', 2),
])
def test_bad_flags_get_etcds_messages(argv: list[str], message: str, code: int) -> None:
    with pytest.raises(ConfigError) as err:
        parse_args(argv)
    assert message in str(err.value) and err.value.exit_code == code


def test_unknown_config_file_keys_are_ignored_like_etcd(tmp_path) -> None:
    path = tmp_path / "etcd.yaml"
    path.write_text("name: x\nenable-v2: true\nlogger: zap\n")
    assert parse_args(["--config-file", str(path)]).name == "x"


def test_the_benchmarks_servers_ignore_the_callers_etcd_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """`compare` runs both servers with the flags it gives: a developer's exported ETCD_NAME must not
    reach them (both read it). The test run itself drops ETCD_* variables (tests/conftest.py)."""
    monkeypatch.setenv("ETCD_NAME", "from-the-shell")
    monkeypatch.setenv("ETCDPY_CLUSTER_TLS", "0")
    env = bench_server_env()
    assert "ETCD_NAME" not in env and env["ETCDPY_CLUSTER_TLS"] == "0"
