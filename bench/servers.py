"""Starting, stopping and measuring the servers under test: real etcd 3.4 and etcdpy, single node or
an N-member cluster on loopback, each member on free 127.0.0.1 ports with its own data dir and log.

Both are started with the same etcd flag names (etcdpy accepts etcd's flags), so "equivalent settings"
means literally the same command-line flags.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from etcdpy.app.peer.http_client import host_port

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"
KINDS = ("etcd", "etcdpy")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ServerStartError(RuntimeError):
    pass


def etcdpy_available() -> bool:
    return importlib.util.find_spec("etcdpy.app") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(endpoint: str, path: str, body: dict[str, object], timeout: float = 5.0) -> tuple[int, bytes]:
    host, port = host_port(endpoint)
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        out = resp.status, resp.read()
        c.close()
        return out
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e).encode()


def health(endpoint: str, timeout: float = 1.0) -> bool:
    host, port = host_port(endpoint)
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


@dataclass
class Member:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None


def _server_env() -> dict[str, str]:
    """The servers' environment: this one, except that Python may keep its compiled bytecode. A shell
    with PYTHONDONTWRITEBYTECODE (as some CI images set) would make every etcdpy start recompile all
    of its modules, which no installed copy does (pip compiles at install); restart times would then
    measure the compiler, not the server. ETCD_* variables go too: both servers read them as flags,
    and the comparison must run both with the flags the tool gives."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("ETCD_")}


class Cluster:
    """One server kind, `size` members. Members are independent processes; stop() stops only them."""

    def __init__(self, kind: str, size: int, base_dir: Path) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown server kind {kind}")
        self.kind = kind
        self.size = size
        self.token = f"bench-{kind}-{os.getpid()}"
        base_dir.mkdir(parents=True, exist_ok=True)
        self.members = []
        for i in range(size):
            name = "bench" if size == 1 else f"bench{i}"
            self.members.append(Member(
                name=name,
                client_url=f"http://127.0.0.1:{free_port()}",
                peer_url=f"http://127.0.0.1:{free_port()}",
                data_dir=base_dir / f"{name}.{kind}",
                log_path=base_dir / f"{name}.{kind}.log",
            ))

    @property
    def label(self) -> str:
        return self.kind if self.size == 1 else f"{self.kind} x{self.size}"

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def pids(self) -> list[int]:
        return [m.popen.pid for m in self.members if m.popen is not None and m.popen.poll() is None]

    def argv(self, m: Member) -> list[str]:
        cluster = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        flags = [
            "--name", m.name, "--data-dir", str(m.data_dir),
            "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", cluster, "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new",
        ]
        if self.kind == "etcd":
            return [ETCD_BIN, *flags]
        return [sys.executable, "-m", "etcdpy.app", *flags]

    def spawn(self) -> float:
        """Start every member; returns the monotonic spawn time."""
        t0 = time.monotonic()
        for m in self.members:
            log = open(m.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
            try:
                m.popen = subprocess.Popen(self.argv(m), stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True,
                                           env=_server_env())
            finally:
                log.close()
        return t0

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.members)
        while pending:
            for m in list(pending):
                if m.popen is not None and m.popen.poll() is not None:
                    raise ServerStartError(f"{self.label}: member {m.name} exited with code "
                                           f"{m.popen.returncode}\n{self.log_tail(m)}")
                if health(m.client_url):
                    pending.remove(m)
            if pending and time.monotonic() > deadline:
                raise ServerStartError(f"{self.label}: member {pending[0].name} not healthy after "
                                       f"{timeout:.0f}s\n{self.log_tail(pending[0])}")
            if pending:
                time.sleep(0.05)

    def start(self, timeout: float = 60.0) -> None:
        if self.kind == "etcdpy" and not etcdpy_available():
            raise ServerStartError("etcdpy is not installed (no etcdpy.app package)")
        self.spawn()
        try:
            self.wait_healthy(timeout)
            if self.size > 1:
                self.check_replication()
        except ServerStartError:
            self.stop()
            raise

    def check_replication(self, timeout: float = 10.0) -> None:
        """Healthy members are not necessarily one cluster (a server may ignore --initial-cluster and run
        N independent nodes): a key written through member 0 must become readable on every member."""
        key = base64.b64encode(f"etcdpy-bench/cluster-check/{os.getpid()}".encode()).decode()
        value = base64.b64encode(str(time.time_ns()).encode()).decode()
        deadline = time.monotonic() + timeout
        while True:  # /health may answer before a leader is elected: retry until the deadline
            status, body = _post(self.members[0].client_url, "/v3/kv/put", {"key": key, "value": value})
            if status == 200:
                break
            if time.monotonic() > deadline:
                raise ServerStartError(f"{self.label}: put on member 0 failed ({status}) {body[:200]!r}")
            time.sleep(0.1)
        for m in self.members[1:]:
            while True:
                status, body = _post(m.client_url, "/v3/kv/range", {"key": key})
                if status == 200 and value.encode() in body:
                    break
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"{self.label}: not a {self.size}-member cluster — a key written through "
                        f"{self.members[0].name} is not readable on {m.name} (HTTP {status})")
                time.sleep(0.1)
        _post(self.members[0].client_url, "/v3/kv/deleterange", {"key": key})

    def pause(self) -> None:
        """SIGSTOP every process of the cluster (front workers too), so that a server not under test
        takes no CPU from the one that is: idle, an etcd member took ~1.4 % of a core and an etcdpy
        member ~2 %, and their timers' wake-ups preempt the measured server mid-request."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        for pid in self.pids:
            for p in descendants(pid):
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass

    def stop(self, timeout: float = 15.0) -> None:
        self.resume()  # a stopped process would not act on SIGTERM
        for m in self.members:
            p = m.popen
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log_tail(self, m: Member, lines: int = 15) -> str:
        try:
            text = m.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + ln for ln in text[-lines:])

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def descendants(pid: int) -> list[int]:
    """pid and all its descendants (a server may fork workers)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None:
                children.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid and its live descendants, from /proc/<pid>/stat."""
    return sum(process_cpu_seconds(p) for p in descendants(pid))


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of pid alone (all its threads): for a process known to have no children. Finding
    descendants reads every /proc/<pid>/stat of the machine, which the client's sampler did ten times
    a second per wrk process (~0.07 of a core taken from the servers under test)."""
    f = _stat_fields(pid)
    return 0.0 if f is None else (int(f[11]) + int(f[12])) / _TICK  # fields 14 and 15 of stat(5)


def rss_bytes(pid: int) -> int:
    total = 0
    for p in descendants(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total
