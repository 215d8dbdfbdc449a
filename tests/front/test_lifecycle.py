"""Front workers live and die with their member: they are its children and accept its clients; one
that dies is replaced; a member stopped or killed leaves none behind, so its port is free at once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.front import procs
from tests.front.raw_http import Conn, b64, post
from tests.servers import Server, start_etcdpy
from tests.stream_client import StreamConn

PUT = post("/v3/kv/put", {"key": b64("life"), "value": b64("1")})


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def workers_of(server: Server, count: int) -> list[int]:
    """The member's children, once there are `count` of them; each must be one of its front workers."""
    member = server.proc.pid
    procs.wait_for(lambda: len(procs.children(member)) == count, f"{count} workers running")
    found = procs.children(member)
    assert all(procs.is_worker_of(pid, member) for pid in found), [procs.cmdline(p) for p in found]
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_etcdpy(tmp_path_factory.mktemp("front-life"), extra=["--client-workers", "2"])
    try:
        yield started
    finally:
        started.stop()


def test_the_members_children_are_its_workers_and_they_accept(server: Server) -> None:
    workers = workers_of(server, 2)
    # The listening socket is shared (the member keeps it to hand to new workers); a client's
    # connection is accepted by a worker and only a worker holds it.
    with Conn(server.url) as conn:
        conn.send(PUT)
        assert conn.read_response().status == 200
        held = procs.holder([server.proc.pid, *workers], port_of(server), conn.local_port)
        assert len(held) == 1 and held[0] in workers


def test_the_member_and_its_workers_run_under_batch_scheduling(server: Server) -> None:
    """app/interpreter.py: a serving process woken by another's hand-off must not preempt it."""
    for pid in (server.proc.pid, *workers_of(server, 2)):
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH, procs.cmdline(pid)
    assert os.sched_getscheduler(0) != os.SCHED_BATCH  # set by the servers, not inherited from here


def test_killed_workers_are_replaced(server: Server) -> None:
    old = workers_of(server, 2)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    procs.wait_for(lambda: not any(procs.alive(pid) for pid in old), "the killed workers gone")
    # With no worker accepting, a new client waits in the listening socket's queue until the pool has
    # started new ones; then it is answered.
    with Conn(server.url) as conn:
        conn.send(PUT)
        assert conn.read_response().status == 200
    new = workers_of(server, 2)
    assert not set(new) & set(old)


def test_sigterm_leaves_no_worker(server: Server) -> None:
    workers = workers_of(server, 2)
    server.stop()
    assert server.proc.returncode is not None
    assert not [pid for pid in workers if procs.alive(pid)]


def test_a_killed_member_takes_its_workers_along(tmp_path: Path) -> None:
    """kill -9 of the member: its workers die with it (they must not hold its port) and the clients they
    served see their connections end; a new etcdpy binds the same ports at once."""
    server = start_etcdpy(tmp_path, extra=["--client-workers", "1"])
    try:
        (worker,) = workers_of(server, 1)
        keep_alive = Conn(server.url)
        keep_alive.send(PUT)
        assert keep_alive.read_response().status == 200
        watch = StreamConn(server.url)
        watch.send({"create_request": {"key": b64("life")}})
        assert watch.read_json()["result"]["created"] is True
        server.kill()
        procs.wait_for(lambda: not procs.alive(worker), "the worker gone with its member", timeout=5)
        assert keep_alive.closed_by_server(5)
        watch.sock.settimeout(5)
        assert watch.sock.recv(65536) == b""
        keep_alive.close()
        watch.close()
        # Same flags, same ports, same data dir; start_etcdpy's own deadline bounds the wait.
        server = server.restart()
        with httpx.Client(timeout=10) as client:
            got = client.post(f"{server.url}/v3/kv/range", json={"key": b64("life")}).json()
        assert got["kvs"][0]["value"] == b64("1")
        workers_of(server, 1)
    finally:
        server.stop()

