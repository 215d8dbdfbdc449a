"""Start and stop real etcd and etcdpy server processes for tests.

Both servers take etcd's flag names, so one argv shape serves both; only the command and the readiness
probe differ. Readiness is polled with a bounded deadline (never a fixed sleep), and a server that dies
or never becomes ready raises with the tail of its log, which is where the reason is.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ETCD_BINARY = "/usr/bin/etcd"
REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# A probe answers "is this base URL serving yet?"; it must not raise on connection errors.
Probe = Callable[[httpx.Client, str], bool]


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out as free; good enough for tests on one machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _two_free_ports(host: str = "127.0.0.1") -> tuple[int, int]:
    # Two back-to-back calls may return the same port once the first socket is closed.
    client = free_port(host)
    peer = free_port(host)
    while peer == client:
        peer = free_port(host)
    return client, peer


def etcd_ready(client: httpx.Client, url: str) -> bool:
    """etcd answers the status RPC only once the member has joined and a leader exists."""
    try:
        return client.post(f"{url}/v3/maintenance/status", content=b"{}").status_code == 200
    except httpx.HTTPError:
        return False


def etcdpy_ready(client: httpx.Client, url: str) -> bool:
    try:
        resp = client.get(f"{url}/health")
        return resp.status_code == 200 and resp.json().get("health") == "true"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<no log: {exc}>"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    name: str
    argv: list[str] = field(default_factory=list)
    cwd: Path = field(default_factory=Path.cwd)
    log_path: Path = field(default_factory=Path)
    probe: Probe = etcd_ready
    env: dict[str, str] | None = None

    def stop(self) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if it has not exited in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def restart(self) -> Server:
        """Stop this process (if still running) and start a new one with the same flags and data dir."""
        self.stop()
        return _launch(self.argv, self.cwd, self.url, self.data_dir, self.name, self.log_path, self.probe,
                       self.env)


def _launch(argv: list[str], cwd: Path, url: str, data_dir: Path, name: str, log_path: Path, probe: Probe,
            env: dict[str, str] | None) -> Server:
    # Append, so a restarted server's log follows the previous run's.
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    server = Server(url=url, proc=proc, data_dir=data_dir, name=name, argv=argv, cwd=cwd, log_path=log_path,
                    probe=probe, env=env)
    try:
        _wait_ready(server)
    except BaseException:
        server.kill()
        raise
    return server


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    delay = 0.02
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.probe(client, server.url):
                return
            code = server.proc.poll()
            if code is not None:
                raise RuntimeError(f"{server.name} exited with {code} before becoming ready; log "
                                   f"{server.log_path}:\n{log_tail(server.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready at {server.url} after {READY_TIMEOUT_S} s; "
                                   f"log {server.log_path}:\n{log_tail(server.log_path)}")
            # Short, growing back-off between readiness probes, bounded by the deadline above.
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _cluster_flags(name: str, data_dir: Path, ports: tuple[int, int] | None = None) -> tuple[str, list[str]]:
    client_port, peer_port = ports or _two_free_ports()
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    flags = [
        "--name", name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"{name}={peer_url}",
    ]
    return client_url, flags


def etcdpy_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus `extra`, with the repository importable via PYTHONPATH (an etcdpy started
    with another working directory must import it even when it is not pip-installed). The caller's
    ETCD_* variables are gone for the whole run (tests/conftest.py)."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def start_etcd(tmp: Path, name: str = "ref", extra: list[str] | None = None) -> Server:
    """Start Debian's etcd 3.4 as a single-member cluster in ``tmp`` and wait until it serves."""
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / f"{name}.etcd"
    url, flags = _cluster_flags(name, data_dir)
    argv = [ETCD_BINARY, *flags, *(extra or [])]
    return _launch(argv, tmp, url, data_dir, name, tmp / f"{name}.etcd.log", etcd_ready, dict(os.environ))


def start_etcdpy(tmp: Path, name: str = "default", extra: list[str] | None = None,
                 ports: tuple[int, int] | None = None) -> Server:
    """Start ``python -m app`` (etcdpy) with etcd's flags in ``tmp`` and wait until /health is true.

    `ports` (client, peer) reuses a previous server's ports: the same peer URL gives the same member
    and cluster ids, so two runs' answers can be compared byte for byte."""
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / f"{name}.etcdpy"
    url, flags = _cluster_flags(name, data_dir, ports)
    argv = [sys.executable, "-m", "etcdpy.app", *flags, *(extra or [])]
    return _launch(argv, tmp, url, data_dir, name, tmp / f"{name}.etcdpy.log", etcdpy_ready, etcdpy_env())
