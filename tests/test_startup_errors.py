"""Start-up failures an operator can cause: one stderr line in etcd 3.4's words, etcd's exit status.

Each message was taken from /usr/bin/etcd under the same condition (etcd prefixes `etcdmain: `, etcdpy
`etcdpy: `); flag-level errors are Go flag package texts, printed bare. No case may print a traceback.
"""

from __future__ import annotations

import logging
import platform
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import IO

import httpx
import pytest

from etcdpy.app.config import FLAGS, LOG_LEVELS, ConfigError, parse_args
from tests.servers import Server, _wait_ready, etcdpy_env, etcdpy_ready, free_port, start_etcdpy
from tests.test_config import run_cli

LOCK_WAIT_S = 30.0


def member_flags(client_port: int | None = None, peer_port: int | None = None) -> list[str]:
    client = f"http://127.0.0.1:{client_port or free_port()}"
    peer = f"http://127.0.0.1:{peer_port or free_port()}"
    return ["--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer, "--initial-cluster", f"default={peer}"]


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [line], proc.stderr
    assert proc.returncode == code, proc.stderr


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process (here: this one) is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# ----------------------------------------------------------------------------------------- data dir

def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    proc = run_cli("--data-dir", "afile", *member_flags(), cwd=tmp_path)
    assert_one_line(proc, 1, "etcdpy: error listing data dir: afile")


def test_data_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    proc = run_cli("--data-dir", "afile/data", *member_flags(), cwd=tmp_path)
    assert_one_line(proc, 1, "etcdpy: error listing data dir: afile/data")


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    proc = run_cli("--data-dir", "/proc/no-such-dir/data", *member_flags(), cwd=tmp_path)
    assert_one_line(proc, 1, "etcdpy: cannot access data directory: mkdir /proc/no-such-dir: no such file or "
                             "directory")


def test_data_dir_not_writable(tmp_path: Path) -> None:
    # sysfs refuses new files even to root, so this is an unwritable directory whoever runs the tests.
    proc = run_cli("--data-dir", "/sys/kernel", *member_flags(), cwd=tmp_path)
    assert_one_line(proc, 1, "etcdpy: cannot access data directory: open /sys/kernel/.touch: permission "
                             "denied")


def test_corrupt_database(tmp_path: Path) -> None:
    db = tmp_path / "m.etcdpy" / "member" / "db"
    db.mkdir(parents=True)
    (db / "CURRENT").write_text("garbage")  # RocksDB's pointer to its manifest, cut short
    proc = run_cli("--data-dir", "m.etcdpy", *member_flags(), cwd=tmp_path)
    # etcd panics (exit status 2) with `cannot open database at <path> (invalid database)`.
    assert_one_line(proc, 2, "etcdpy: cannot open database at m.etcdpy/member/db (Corruption: CURRENT file "
                             "does not end with newline)")


# ------------------------------------------------------------------------------------------- ports

def test_client_port_in_use(tmp_path: Path, held_port: int) -> None:
    proc = run_cli("--data-dir", "m.etcdpy", *member_flags(client_port=held_port), cwd=tmp_path)
    assert_one_line(proc, 1, f"etcdpy: listen tcp 127.0.0.1:{held_port}: bind: address already in use")
    assert list(tmp_path.iterdir()) == []  # as etcd: the URLs are bound before the data dir is made


def test_peer_port_in_use(tmp_path: Path, held_port: int) -> None:
    proc = run_cli("--data-dir", "m.etcdpy", *member_flags(peer_port=held_port), cwd=tmp_path)
    assert_one_line(proc, 1, f"etcdpy: listen tcp 127.0.0.1:{held_port}: bind: address already in use")


def test_localhost_in_use_is_named_by_its_address(tmp_path: Path, held_port: int) -> None:
    flags = member_flags()
    flags[1] = f"http://localhost:{held_port}"
    proc = run_cli("--data-dir", "m.etcdpy", *flags, cwd=tmp_path)
    assert_one_line(proc, 1, f"etcdpy: listen tcp 127.0.0.1:{held_port}: bind: address already in use")


# ------------------------------------------------------------------------------------ locked data dir

def _lines(stream: IO[bytes], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.decode())


def test_data_dir_locked_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """As etcd waits for its database lock: say so once, start as soon as the holder exits."""
    first = start_etcdpy(tmp_path, name="m")
    env = etcdpy_env()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = member_flags(client_port=port)
    second = subprocess.Popen([sys.executable, "-m", "etcdpy.app", "--data-dir", str(first.data_dir), *flags],
                              cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    assert second.stderr is not None
    threading.Thread(target=_lines, args=(second.stderr, lines), daemon=True).start()
    try:
        line = lines.get(timeout=LOCK_WAIT_S)
        # capnslog's format, as etcd 3.4 logs by default: `<time> W | etcdmain: <message>`.
        assert line.rstrip().endswith(
            f' W | etcdmain: another etcdpy process is using "{first.data_dir}/member/db" and holds the '
            "file lock; waiting for it to exit before starting...")
        assert second.poll() is None  # waiting, not exited
        with httpx.Client(timeout=2.0) as client:
            assert not etcdpy_ready(client, url)
        first.stop()
        waiting = Server(url=url, proc=second, data_dir=first.data_dir, name="second", probe=etcdpy_ready)
        _wait_ready(waiting)
    finally:
        first.kill()
        if second.poll() is None:
            second.terminate()
            second.wait(timeout=10)


# ------------------------------------------------------------------------------------ help, version

@pytest.mark.parametrize("flag", ["--help", "-h", "-help", "--h"])
def test_help_lists_every_flag(tmp_path: Path, flag: str) -> None:
    proc = run_cli(flag, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("Usage:\n\n  etcdpy [flags]\n    Start an etcdpy member.\n")
    listed = {line.split()[0][2:] for line in proc.stdout.splitlines() if line.startswith("  --")}
    assert listed == FLAGS - {"config-file"}
    for name in ("--version", "-h | --help", "--config-file"):
        assert f"  etcdpy {name}\n" in proc.stdout
    described = "  --max-txn-ops '128'\n    Maximum number of operations permitted in a transaction.\n"
    assert described in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_help_wins_over_later_flags_but_not_earlier_errors(tmp_path: Path) -> None:
    assert run_cli("--help", "--bogus", cwd=tmp_path).returncode == 0
    proc = run_cli("--bogus", "--help", cwd=tmp_path)
    assert_one_line(proc, 2, "flag provided but not defined: -bogus")


def test_version(tmp_path: Path) -> None:
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"etcdpy Version: {metadata.version('etcdpy')}",
        "etcd API Version: 3.4.23",
        f"Python Version: {platform.python_version()}",
        f"Python OS/Arch: {sys.platform}/{platform.machine()}",
    ]
    # As etcd: --version answers once the flags parse, without validating them or starting anything.
    assert run_cli("--initial-cluster", "garbage", "--version=true", cwd=tmp_path).returncode == 0
    assert run_cli("--version=false", "--log-level", "nope", cwd=tmp_path).returncode == 2
    assert_one_line(run_cli("--version=maybe", cwd=tmp_path), 2,
                    'invalid boolean value "maybe" for -version: parse error')
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- log level

def test_log_levels_are_etcds() -> None:
    expected = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                "error": logging.ERROR, "panic": logging.CRITICAL, "fatal": logging.CRITICAL}
    assert {level: parse_args(["--log-level", level]).python_log_level for level in LOG_LEVELS} == expected


@pytest.mark.parametrize("level", ["bogus", "WARN", "warning"])
def test_unknown_log_level(tmp_path: Path, level: str) -> None:
    proc = run_cli("--log-level", level, cwd=tmp_path)
    assert_one_line(proc, 2, f'unknown level "{level}": --log-level only supports debug, info, warn, error, '
                             "panic, or fatal")


def test_serves_at_log_level_warn(tmp_path: Path) -> None:
    server = start_etcdpy(tmp_path, extra=["--log-level", "warn"])
    try:
        with httpx.Client(timeout=5) as client:
            resp = client.post(f"{server.url}/v3/kv/put", json={"key": "aw==", "value": "dg=="})
            assert resp.status_code == 200, resp.text
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "INFO" not in log, log  # neither etcdpy's nor uvicorn's info lines


# ------------------------------------------------------------------------------------- https w/o TLS

def test_https_client_url_without_certificate(tmp_path: Path) -> None:
    port = free_port()
    flags = member_flags(client_port=port)
    flags[1] = f"https://127.0.0.1:{port}"
    proc = run_cli(*flags, cwd=tmp_path)
    assert_one_line(proc, 1, f"TLS key/cert (--cert-file, --key-file) must be provided for client url "
                             f"https://127.0.0.1:{port} with HTTPS scheme")
    assert list(tmp_path.iterdir()) == []


def test_https_peer_url_without_certificate(tmp_path: Path) -> None:
    port = free_port()
    flags = member_flags()
    flags[5] = f"https://127.0.0.1:{port}"
    proc = run_cli(*flags, cwd=tmp_path)
    assert_one_line(proc, 1, f"cannot listen on TLS for 127.0.0.1:{port}: KeyFile and CertFile are not "
                             "presented")


def test_https_advertised_url_is_only_advertised() -> None:
    # etcd accepts an https advertise URL over an http listener (a TLS proxy in front); so does etcdpy.
    cfg = parse_args(["--advertise-client-urls", "https://db.example:2379"])
    assert cfg.advertise_client_urls == ["https://db.example:2379"]


# ------------------------------------------------------------------------- compaction retention values

@pytest.mark.parametrize(("args", "expected"), [
    (["--auto-compaction-retention", "1"], 3600.0),  # a bare integer counts hours in periodic mode
    (["--auto-compaction-retention", "90m"], 5400.0),
    (["--auto-compaction-retention", "010"], 36000.0),  # strconv.Atoi: decimal, not octal
    (["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"], 1000),
    (["--quota-backend-bytes", "-1"], 0),  # negative disables the quota in etcd: a valid value
])
def test_unimplemented_flags_are_parsed_as_etcd_parses_them(args: list[str], expected: float) -> None:
    cfg = parse_args(args)
    assert cfg.compaction_retention == expected
    assert cfg.quota_backend_bytes == (-1 if "-1" in args else 0)


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--auto-compaction-mode", "bogus"],
     "error verifying flags, unknown auto-compaction-mode \"bogus\". See 'etcdpy --help'.", 1),
    (["--auto-compaction-retention", "abc"],
     'error parsing CompactionRetention: time: invalid duration "abc"', 1),
    (["--auto-compaction-retention", "1.5"],
     'error parsing CompactionRetention: time: missing unit in duration "1.5"', 1),
    (["--auto-compaction-retention", "-1"],
     'error parsing CompactionRetention: time: missing unit in duration "-1"', 1),
    (["--auto-compaction-mode", "revision", "--auto-compaction-retention", "0x10"],
     'error parsing CompactionRetention: time: unknown unit "x" in duration "0x10"', 1),
    (["--quota-backend-bytes", "abc"], 'invalid value "abc" for flag -quota-backend-bytes: parse error', 2),
])
def test_unimplemented_flags_are_validated_as_etcd_validates_them(args: list[str], message: str,
                                                                   code: int) -> None:
    with pytest.raises(ConfigError) as err:
        parse_args(args)
    assert (str(err.value), err.value.exit_code) == (message, code)
