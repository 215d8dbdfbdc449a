"""Real multi-member etcdpy clusters on 127.0.0.1 for process-level tests.

`Cluster` starts N members (``python -m app``) as separate processes with short Raft timings, each
behind a fault-injecting peer proxy (`tests.cluster.netproxy.FaultNet`): members listen for peers on
their real port and advertise the proxy's, so the test can cut, delay or break any directed link
without touching server code. It finds the leader, kills (SIGKILL), stops (SIGTERM), pauses (SIGSTOP),
resumes (SIGCONT) and restarts members, partitions the network, adds members, and waits for conditions
by polling with a deadline, never by sleeping a guessed time.

Every process it starts is tracked by its pid and killed by `Cluster.close()` (tests reach it through
the ``cluster_factory`` fixture, whose finalizer runs even when the test fails).

With `tls=make_tls(...)` (tests/tls_certs.py) members serve https client and peer URLs with
client-certificate auth on both, and `Cluster.http`/`Cluster.client()` present a client certificate;
ETCDPY_CLUSTER_TLS=1 in the environment runs every cluster of the test run that way.

The client side: `rpc()` posts one gateway call with a ``Grpc-Timeout`` and a slightly longer client
timeout, and classifies failures as definite (`Failed`: the request cannot have taken effect) or
indeterminate (`Unknown`: it may have, or may still), which is what a history checker needs.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.cluster.netproxy import FaultNet, Mode
from tests.servers import etcdpy_env, free_port, log_tail
from tests.tls_certs import TLSFiles, make_tls

HEARTBEAT_MS = 50
ELECTION_MS = 500
START_TIMEOUT_S = 30.0
T = TypeVar("T")

# Errors after which the write cannot have been applied: the server refused before proposing.
DEFINITE_ERRORS = frozenset({"etcdserver: no leader", "raft proposal dropped"})


class RpcError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Failed(RpcError):
    """The request certainly had no effect (not delivered, or refused before it was proposed)."""


class Unknown(RpcError):
    """The request may or may not have taken effect (timeout, connection lost, server-side timeout)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def rpc(client: httpx.Client, url: str, path: str, body: dict[str, Any],
        timeout: float = 2.0) -> dict[str, Any]:
    """One gateway call; raises `Failed` or `Unknown` unless the answer is 200."""
    headers = {"Grpc-Timeout": f"{max(1, int(timeout * 1000))}m"}
    try:
        resp = client.post(f"{url}{path}", json=body, headers=headers, timeout=timeout + 1.0)
    except httpx.ConnectError as exc:
        raise Failed(f"connect: {exc}") from None
    except httpx.HTTPError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from None
    if resp.status_code == 200:
        data: dict[str, Any] = resp.json()
        return data
    try:
        message = str(resp.json().get("message", resp.text))
    except ValueError:
        message = resp.text
    if message in DEFINITE_ERRORS:
        raise Failed(message, resp.status_code)
    raise Unknown(message, resp.status_code)


# ---------------------------------------------------------------------- KV helpers


def put(client: httpx.Client, url: str, key: str, value: str, timeout: float = 2.0) -> int:
    """Put; returns the revision of the write."""
    data = rpc(client, url, "/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout)
    return int(data["header"]["revision"])


def get(client: httpx.Client, url: str, key: str, *, serializable: bool = False,
        timeout: float = 2.0) -> str | None:
    body: dict[str, Any] = {"key": b64(key)}
    if serializable:
        body["serializable"] = True
    data = rpc(client, url, "/v3/kv/range", body, timeout)
    kvs = data.get("kvs", [])
    return unb64(kvs[0].get("value", "")) if kvs else None


def cas(client: httpx.Client, url: str, key: str, expected: str, new: str,
        timeout: float = 2.0) -> tuple[bool, str | None]:
    """Set ``key`` to ``new`` if its value is ``expected``; returns (succeeded, value seen on failure)."""
    body = {
        "compare": [{"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expected)}],
        "success": [{"request_put": {"key": b64(key), "value": b64(new)}}],
        "failure": [{"request_range": {"key": b64(key)}}],
    }
    data = rpc(client, url, "/v3/kv/txn", body, timeout)
    if data.get("succeeded"):
        return True, None
    kvs = data.get("responses", [{}])[0].get("response_range", {}).get("kvs", [])
    return False, (unb64(kvs[0].get("value", "")) if kvs else None)


def dump(client: httpx.Client, url: str, *, serializable: bool = True, timeout: float = 5.0,
         prefix: str = "") -> dict[str, tuple[str, int, int, int]]:
    """Every key (under ``prefix``) as {key: (value, create_revision, mod_revision, version)}."""
    if prefix:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body: dict[str, Any] = {"key": b64(prefix), "range_end": b64(end)}
    else:
        body = {"key": b64("\0"), "range_end": b64("\0")}
    if serializable:
        body["serializable"] = True
    data = rpc(client, url, "/v3/kv/range", body, timeout)
    return {
        unb64(kv["key"]): (unb64(kv.get("value", "")), int(kv.get("create_revision", 0)),
                           int(kv.get("mod_revision", 0)), int(kv.get("version", 0)))
        for kv in data.get("kvs", [])
    }


def wait_for(what: str, cond: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll ``cond`` until it returns something other than None/False; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = cond()
            if value is not None and value is not False:
                return value
        except (RpcError, httpx.HTTPError, KeyError, ValueError) as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------- members


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int  # where the member listens for peers
    proxy_port: int  # what it advertises: the FaultNet proxy in front of peer_port
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    id: int = 0
    initial_cluster: str = ""
    state: str = "new"
    extra: list[str] = field(default_factory=list)
    client_scheme: str = "http"
    peer_scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.peer_scheme}://127.0.0.1:{self.proxy_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc is not None else None


class Cluster:
    """N etcdpy member processes with fault injection. Use through the ``cluster_factory`` fixture."""

    def __init__(self, root: Path, size: int = 3, *, seed: int = 0, heartbeat_ms: int = HEARTBEAT_MS,
                 election_ms: int = ELECTION_MS, snapshot_count: int | None = None,
                 extra: Iterable[str] = (), token: str = "etcdpy-cluster-test",
                 tls: TLSFiles | None = None) -> None:
        self.root = root
        if tls is None and os.environ.get("ETCDPY_CLUSTER_TLS") == "1":
            tls = make_tls(root / "tls")
        self.tls = tls
        self.size = size
        self.seed = seed
        self.token = token
        self.election_s = election_ms / 1000
        self.flags = ["--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms)]
        if snapshot_count is not None:
            self.flags += ["--snapshot-count", str(snapshot_count)]
        self.flags += list(extra) + (tls.flags() if tls is not None else [])
        self.members: dict[str, Member] = {}
        self._ports: set[int] = set()
        self.net = FaultNet(self._pids, seed=seed)
        self.http = self.client(timeout=5.0)
        self._closed = False
        root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ set-up

    def _port(self) -> int:
        while True:
            port = free_port()
            if port not in self._ports:
                self._ports.add(port)
                return port

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the members' client URLs (with TLS: trusting the CA, presenting a client
        certificate)."""
        if self.tls is not None and self.tls.client_tls:
            return self.tls.client("root", **kwargs)
        return httpx.Client(**kwargs)

    def _pids(self) -> dict[str, int]:
        return {m.name: m.proc.pid for m in self.members.values() if m.proc is not None}

    def _new_member(self, name: str) -> Member:
        peer_port = self._port()
        proxy_port = self.net.add_member(name, peer_port)
        self._ports.add(proxy_port)
        member = Member(name, self._port(), peer_port, proxy_port, self.root / f"{name}.etcdpy",
                        self.root / f"{name}.log")
        if self.tls is not None:
            member.client_scheme = "https" if self.tls.client_tls else "http"
            member.peer_scheme = "https" if self.tls.peer_tls else "http"
        self.members[name] = member
        return member

    def start(self, size: int | None = None,
              prepare: Callable[[dict[str, Member], str], None] | None = None) -> Cluster:
        """Create and start the members (n1..nN) as a new cluster; wait until they all agree on a leader.

        `prepare(members, initial_cluster)` runs before any member starts (e.g. to restore their data
        directories from a snapshot)."""
        names = [f"n{i + 1}" for i in range(size if size is not None else self.size)]
        for name in names:
            self._new_member(name)
        initial = ",".join(f"{n}={self.members[n].peer_url}" for n in names)
        if prepare is not None:
            prepare(self.members, initial)
        for name in names:
            member = self.members[name]
            member.initial_cluster, member.state = initial, "new"
            self._spawn(member)
        for name in names:
            self.wait_serving(name)
            self.members[name].id = int(self.status(name)["header"]["member_id"])
        self.wait_leader()
        return self

    def _argv(self, m: Member) -> list[str]:
        return [
            sys.executable, "-m", "etcdpy.app",
            "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--listen-client-urls", m.url,
            "--advertise-client-urls", m.url,
            "--listen-peer-urls", f"{m.peer_scheme}://127.0.0.1:{m.peer_port}",
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", m.initial_cluster,
            "--initial-cluster-state", m.state,
            "--initial-cluster-token", self.token,
            *self.flags, *m.extra,
        ]

    def _spawn(self, m: Member) -> None:
        assert not m.running, f"{m.name} is already running"
        env = etcdpy_env()
        with open(m.log_path, "ab") as log:
            log.write(f"==== start {time.strftime('%H:%M:%S')} {' '.join(self._argv(m)[3:])}\n".encode())
            log.flush()
            m.proc = subprocess.Popen(self._argv(m), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env)
        m.paused = False

    # ------------------------------------------------------------------ lifecycle of members

    def kill(self, name: str) -> None:
        """SIGKILL (a paused member is killed too)."""
        m = self.members[name]
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(timeout=10)
        m.paused = False

    def stop(self, name: str) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 10 s."""
        m = self.members[name]
        if m.proc is not None and m.proc.poll() is None:
            if m.paused:
                m.proc.send_signal(signal.SIGCONT)
            m.proc.terminate()
            try:
                m.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(timeout=10)
        m.paused = False

    def pause(self, name: str) -> None:
        m = self.members[name]
        assert m.proc is not None and m.running
        m.proc.send_signal(signal.SIGSTOP)
        m.paused = True

    def resume(self, name: str) -> None:
        m = self.members[name]
        assert m.proc is not None and m.running
        m.proc.send_signal(signal.SIGCONT)
        m.paused = False

    def restart(self, name: str, *, kill: bool = True, wait: str = "serving") -> None:
        """Kill (or stop) the member, start it on the same data dir; ``wait``: serving, healthy or no."""
        if kill:
            self.kill(name)
        else:
            self.stop(name)
        self.start_member(name, wait=wait)

    def start_member(self, name: str, *, wait: str = "serving") -> None:
        m = self.members[name]
        self._spawn(m)
        if wait == "serving":
            self.wait_serving(name)
        elif wait == "healthy":
            self.wait_healthy(name)

    def close(self) -> None:
        """Kill every process this cluster started (by pid), stop the proxies. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for m in self.members.values():
            if m.proc is not None and m.proc.poll() is None:
                if m.paused:
                    m.proc.send_signal(signal.SIGCONT)
                m.proc.kill()
        for m in self.members.values():
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.http.close()
        self.net.close()

    # ------------------------------------------------------------------ observation

    def live(self) -> list[str]:
        """Members whose process runs and is not paused (a copy of the table first: workload threads
        ask while the test adds members)."""
        return [n for n, m in list(self.members.items()) if m.running and not m.paused]

    def url(self, name: str) -> str:
        return self.members[name].url

    def name_of(self, member_id: int) -> str | None:
        return next((n for n, m in self.members.items() if m.id == member_id), None)

    def status(self, name: str, timeout: float = 1.0) -> dict[str, Any]:
        return rpc(self.http, self.url(name), "/v3/maintenance/status", {}, timeout)

    def healthy(self, name: str) -> bool:
        try:
            resp = self.http.get(f"{self.url(name)}/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.json().get("health") == "true"

    def _check_alive(self, name: str) -> None:
        m = self.members[name]
        if m.proc is not None and m.proc.poll() is not None:
            raise AssertionError(f"{name} exited with {m.proc.returncode}; log {m.log_path}:\n"
                                 f"{log_tail(m.log_path)}")

    def wait_serving(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        """Until the member answers HTTP on its client URL (it need not know a leader)."""

        def serving() -> bool:
            self._check_alive(name)
            try:
                self.http.get(f"{self.url(name)}/health", timeout=1.0)
            except httpx.HTTPError:
                return False
            return True

        wait_for(f"{name} to serve", serving, timeout)

    def wait_healthy(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        def ok() -> bool:
            self._check_alive(name)
            return self.healthy(name)

        wait_for(f"{name} to be healthy", ok, timeout)

    def leader_view(self, names: Iterable[str] | None = None) -> dict[str, str | None]:
        """Who each (reachable) member thinks leads: {member: leader name or None}."""
        view: dict[str, str | None] = {}
        for name in names if names is not None else self.live():
            try:
                lead = int(self.status(name, timeout=0.5).get("leader", 0))
            except (RpcError, httpx.HTTPError, ValueError):
                view[name] = None
                continue
            view[name] = self.name_of(lead) if lead else None
        return view

    def wait_leader(self, among: Iterable[str] | None = None, *, exclude: Iterable[str] = (),
                    timeout: float | None = None) -> str:
        """Until every member in ``among`` (default: all live ones) names the same leader, itself one of
        ``among`` and not in ``exclude``; returns its name. Default timeout: 20 election timeouts."""
        names = list(among) if among is not None else None
        excluded = set(exclude)
        bound = timeout if timeout is not None else max(10.0, 20 * self.election_s)

        def agreed() -> str | None:
            group = names if names is not None else self.live()
            view = self.leader_view(group)
            leaders = set(view.values())
            if len(leaders) != 1:
                return None
            (lead,) = leaders
            if lead is None or lead not in group or lead in excluded:
                return None
            return lead

        return wait_for("an agreed leader", agreed, bound)

    def leader(self) -> str:
        return self.wait_leader()

    def followers(self, leader: str | None = None) -> list[str]:
        lead = leader or self.leader()
        return [n for n in self.members if n != lead and self.members[n].running]

    def wait_converged(self, names: Iterable[str] | None = None, timeout: float = 30.0,
                       prefix: str = "") -> dict[str, tuple[str, int, int, int]]:
        """Until the members have applied the same index and hold identical data; returns the data."""
        group = list(names) if names is not None else self.live()
        last: dict[str, Any] = {}

        def same() -> dict[str, tuple[str, int, int, int]] | None:
            applied = {n: int(self.status(n).get("raftAppliedIndex", 0)) for n in group}
            last["applied"] = applied
            if len(set(applied.values())) != 1:
                return None
            dumps = {n: dump(self.http, self.url(n), prefix=prefix) for n in group}
            last["sizes"] = {n: len(d) for n, d in dumps.items()}
            first = dumps[group[0]]
            if any(d != first for d in dumps.values()):
                return None
            return first

        try:
            return wait_for(f"{group} to converge", same, timeout, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last applied {last.get('applied')}, key counts "
                                 f"{last.get('sizes')}") from None

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"---- {n} ({m.log_path})\n{log_tail(m.log_path, lines)}"
                         for n, m in self.members.items())

    # ------------------------------------------------------------------ faults on the network

    def isolate(self, name: str, mode: Mode = "drop") -> None:
        """Cut ``name`` off from every other member (both directions)."""
        self.net.partition([name], [n for n in self.members if n != name], mode=mode)

    def partition(self, *groups: Iterable[str], mode: Mode = "drop") -> None:
        """Cut every link between members of different groups; heal the links within groups."""
        self.net.partition(*groups, mode=mode)

    def heal(self) -> None:
        self.net.heal()

    # ------------------------------------------------------------------ membership

    def member_call(self, name: str, path: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        return rpc(self.http, self.url(name), f"/v3/cluster/member/{path}", body, timeout)

    def add_member(self, name: str, *, via: str, learner: bool = True) -> Member:
        """`member add` for a new member (its proxy is set up first), then start it as ``existing``."""
        member = self._new_member(name)
        resp = self.member_call(via, "add", {"peerURLs": [member.peer_url], "isLearner": learner})
        member.id = int(resp["member"]["ID"])
        everyone = resp["members"]
        parts = []
        for entry in everyone:
            peer_urls = entry.get("peerURLs", [])
            known = self.name_of(int(entry["ID"]))
            label = known if known is not None else entry.get("name") or name
            parts += [f"{label}={u}" for u in peer_urls]
        member.initial_cluster, member.state = ",".join(parts), "existing"
        self._spawn(member)
        return member

    def promote_when_in_sync(self, member_id: int, timeout: float = 30.0) -> None:
        """`member promote`, refused (412) until the learner is in sync with the leader: retry, bounded."""

        def promoted() -> bool:
            try:
                self.member_call(self.leader(), "promote", {"ID": str(member_id)})
            except RpcError as exc:
                if exc.status == 412 and "in sync with leader" in exc.message:
                    return False
                raise
            return True

        wait_for("the learner to be promoted", promoted, timeout=timeout, interval=0.2)

    def forget(self, name: str) -> None:
        """Drop a removed member from the harness (after killing it)."""
        self.kill(name)
        del self.members[name]
