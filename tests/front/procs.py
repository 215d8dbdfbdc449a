"""What /proc says about a member and its front workers: its child processes, which process holds the
server side of a client's TCP connection, and how many connections the member's private HTTP socket
has (each is a client connection a worker spliced to it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

WORKER_MODULE = "etcdpy.app.front.worker"


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """Running (a zombie, killed and only waiting to be reaped, is not)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """The living processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [part.decode() for part in f.read().split(b"\0") if part]


def is_worker_of(pid: int, member: int) -> bool:
    argv = cmdline(pid)
    return argv[1:3] == ["-m", WORKER_MODULE] and argv[argv.index("--parent") + 1] == str(member)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except FileNotFoundError:
        pass
    return inodes


def _tcp_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the loopback connection client_port -> server_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return fields[9]
    return None


def holder(candidates: list[int], server_port: int, client_port: int) -> list[int]:
    """Which of `candidates` hold the server side of the connection from `client_port`."""
    inode = _tcp_inode(server_port, client_port)
    assert inode is not None, f"no connection {client_port} -> {server_port}"
    return [pid for pid in candidates if inode in _socket_inodes(pid)]


def spliced_connections(member: int) -> int:
    """Open connections to the member's private HTTP socket (its listening socket not counted)."""
    prefix = f"@etcdpy-front-{member}-"
    count = 0
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) == 8 and fields[7].startswith(prefix) and fields[5] == "03":
                count += 1
    return count


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
