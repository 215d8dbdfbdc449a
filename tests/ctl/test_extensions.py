"""etcdpyctl behaviour beyond etcdctl's, and client mechanics the parity script cannot show.

Runs against etcdpy (one server for the module): ``-w yaml``, ``export``/``import`` with ``--dry-run``,
endpoint failover, ETCDCTL_* environment, cobra flag spellings, and the console script itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.ctl.runner import run_in_process
from tests.servers import Server, free_port, start_etcdpy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(tmp_path_factory.mktemp("etcdpy-ctl"))
    try:
        yield srv
    finally:
        srv.stop()


CtlRun = Callable[..., tuple[str, str, int]]


@pytest.fixture
def ctl(server: Server, tmp_path: Path) -> CtlRun:
    endpoint = server.url.removeprefix("http://")

    def run(*args: str, stdin: str = "", endpoints: str | None = None) -> tuple[str, str, int]:
        return run_in_process([f"--endpoints={endpoints or endpoint}", *args], stdin, tmp_path)

    return run


def test_yaml_has_the_json_structure(ctl: CtlRun) -> None:
    assert ctl("put", "y/k", "v")[2] == 0
    as_json = json.loads(ctl("get", "y/k", "-w", "json")[0])
    as_yaml = yaml.safe_load(ctl("get", "y/k", "-w", "yaml")[0])
    assert as_yaml == as_json
    assert as_yaml["kvs"][0]["key"] == "eS9r"


def test_export_import_round_trip_with_dry_run(ctl: CtlRun) -> None:
    ctl("put", "exp/a", "text")
    ctl("put", "exp/b", "two")
    out, err, code = ctl("export", "exp/")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records == [{"key": "exp/a", "value": "text"}, {"key": "exp/b", "value": "two"}]

    changed = [{"key": "exp/a", "value": "text"}, {"key": "exp/b", "value": "2"},
               {"key": "exp/c", "value_b64": "/wA="}]
    data = "".join(json.dumps(r) + "\n" for r in changed)
    out, err, code = ctl("import", "--dry-run", "--prefix", "exp/", "--prune", stdin=data)
    assert (out, code) == ("~ exp/b\n+ exp/c\n", 0), err
    assert ctl("get", "exp/b", "--print-value-only")[0] == "two\n", "dry run changed nothing"

    out, err, code = ctl("import", "--prefix", "exp/", stdin=data)
    assert (out, code) == ("~ exp/b\n+ exp/c\n", 0), err
    assert ctl("get", "exp/b", "--print-value-only")[0] == "2\n"
    exported = [json.loads(line) for line in ctl("export", "exp/")[0].splitlines()]
    assert exported[2] == {"key": "exp/c", "value_b64": "/wA="}, "non-UTF-8 values travel as base64"
    assert ctl("import", "--prefix", "exp/", stdin=data)[0] == "", "a second import has nothing to do"


def test_next_endpoint_is_tried_when_one_is_down(ctl: CtlRun, server: Server) -> None:
    ctl("put", "fo/k", "v")
    dead = f"127.0.0.1:{free_port()}"
    live = server.url.removeprefix("http://")
    assert ctl("get", "fo/k", endpoints=f"{dead},{live}")[0] == "fo/k\nv\n"
    out, err, code = ctl("get", "fo/k", endpoints=dead)
    assert (out, err, code) == ("", "Error: context deadline exceeded\n", 1)


def test_environment_and_cobra_flag_spellings(ctl: CtlRun, server: Server,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ctl("put", "env/k", "v")
    monkeypatch.setenv("ETCDCTL_WRITE_OUT", "json")
    assert json.loads(ctl("get", "env/k")[0])["count"] == 1
    # A flag on the line wins over the environment; global flags may follow the command.
    assert ctl("get", "env/k", "--write-out=simple")[0] == "env/k\nv\n"
    assert ctl("get", "env/k", "-w", "simple", "--hex")[0] == "\\x65\\x6e\\x76\\x2f\\x6b\n\\x76\n"
    monkeypatch.delenv("ETCDCTL_WRITE_OUT")
    monkeypatch.setenv("ETCDCTL_ENDPOINTS", server.url.removeprefix("http://"))
    assert run_in_process(["get", "env/", "--prefix=true", "--keys-only=false"], "", Path.cwd())[0] == \
        "env/k\nv\n"


def test_console_script_is_installed(server: Server) -> None:
    script = Path(sys.executable).parent / "etcdpyctl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL")}
    proc = subprocess.run([str(script), f"--endpoints={server.url}", "put", "cs/k", "v"],
                          capture_output=True, env=env, timeout=30)
    assert (proc.stdout, proc.returncode) == (b"OK\n", 0), proc.stderr


def test_snapshot_save_status_restore_of_an_etcdpy_snapshot(ctl: CtlRun, server: Server,
                                                            tmp_path: Path) -> None:
    """etcdpy's snapshot file is not etcd's bolt database: status and restore read it by its own rules,
    and a restored data dir serves the saved keys at their revisions."""
    assert ctl("put", "snap/a", "1")[2] == 0
    revision = json.loads(ctl("get", "snap/a", "-w", "json")[0])["header"]["revision"]
    out, err, code = ctl("snapshot", "save", "backup.db")
    assert code == 0, err
    doc = json.loads(ctl("snapshot", "status", "backup.db", "-w", "json")[0])
    assert doc["revision"] == revision and doc["totalKey"] > 0
    assert doc["totalSize"] == (tmp_path / "backup.db").stat().st_size - 32  # less the SHA-256
    table = ctl("snapshot", "status", "backup.db", "-w", "table")[0]
    header, row = table.splitlines()[1], table.splitlines()[3]
    assert header.split("|")[1].strip() == "HASH" and "| REVISION | TOTAL KEYS | TOTAL SIZE |" in header
    assert int(row.split("|")[2]) == revision

    restored = tmp_path / "restored.etcdpy"
    out, err, code = ctl("snapshot", "restore", "backup.db", "--name", "r1", f"--data-dir={restored}",
                         "--initial-cluster", "r1=http://127.0.0.1:2390",
                         "--initial-advertise-peer-urls", "http://127.0.0.1:2390")
    assert code == 0, err
    assert (restored / "member").is_dir()
    out, err, code = ctl("snapshot", "restore", "backup.db", "--name", "r1", f"--data-dir={restored}",
                         "--initial-cluster", "r1=http://127.0.0.1:2390",
                         "--initial-advertise-peer-urls", "http://127.0.0.1:2390")
    assert code == 1 and err.startswith("Error: ") and "exists" in err

    (tmp_path / "cut.db").write_bytes((tmp_path / "backup.db").read_bytes()[:100])
    out, err, code = ctl("snapshot", "status", "cut.db")
    assert code == 1 and err == "Error: invalid database\n"
