"""Start-up steps an operator can make fail, each failing as etcd 3.4 fails: one line and an exit code.

etcd logs one critical `etcdmain: …` line and exits; etcdpy raises `StartupError` with the same words
and the command prints `etcdpy: …` (never a traceback). The steps run in etcd's order: the data dir is
listed first, then the peer and the client URLs are bound, then the data dir is created and checked
writable, then the database and the log are opened. A database locked by another process is waited
for, as etcd waits for bbolt's lock, with a warning saying so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from etcdpy.app.config import Config
from etcdpy.app.server.etcd_server import DataDirError, EtcdServer
from etcdpy.storage.mvcc import DatabaseLockedError, DatabaseOpenError
from etcdpy.storage.wal import WalCorruptError

log = logging.getLogger("etcdpy")

LOCK_RETRY_S = 0.5  # how often to try the lock another process holds (RocksDB cannot wait for it)


class StartupError(Exception):
    """The member cannot start; the message is etcd's for the same condition."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def os_error_text(exc: OSError) -> str:
    """An errno as Go words it (`permission denied`, `address already in use`): strerror, lower case."""
    return (exc.strerror or str(exc)).lower()


def _path_error(op: str, exc: OSError, path: str) -> str:
    """Go's *PathError text: `mkdir /x: permission denied`."""
    return f"{op} {exc.filename or path}: {os_error_text(exc)}"


def check_data_dir_listable(path: str) -> None:
    """etcd lists the data dir before anything else: absent is fine (a new member), unlistable is fatal."""
    try:
        os.listdir(path)
    except FileNotFoundError:
        return
    except OSError:
        raise StartupError(f"error listing data dir: {path}") from None


def touch_data_dir(path: str) -> None:
    """etcd's fileutil.TouchDirAll: create the data dir (0700) and prove it writable with a `.touch` file."""
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot access data directory: {_path_error('mkdir', exc, path)}") from None
    probe = os.path.join(path, ".touch")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise StartupError(f"cannot access data directory: {_path_error('open', exc, probe)}") from None


def bind(url: str) -> socket.socket:
    """A listening socket for a listen URL, or etcd's `listen tcp 127.0.0.1:2379: bind: …` error."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 2379
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4]
    except socket.gaierror:
        raise StartupError(f"listen tcp: lookup {host}: no such host") from None
    # Go names the resolved address (`localhost:2379` is reported as `127.0.0.1:2379`).
    shown = f"[{address[0]}]:{port}" if family == socket.AF_INET6 else f"{address[0]}:{port}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"listen tcp {shown}: bind: {os_error_text(exc)}") from None
    sock.setblocking(False)
    return sock


def bind_all(urls: list[str], bound: list[socket.socket]) -> list[socket.socket]:
    """Bind every URL, appending to `bound` as it goes so the caller can close them all on failure."""
    sockets = []
    for url in urls:
        sock = bind(url)
        bound.append(sock)
        sockets.append(sock)
    return sockets


async def open_server(config: Config, joined: dict[str, Any] | None,
                      peer_ssl: ssl.SSLContext | None = None) -> EtcdServer:
    """Open the member's database and log; wait while another process holds the database."""
    warned = False
    db_path = os.path.join(config.data_dir, "member", "db")
    while True:
        try:
            return EtcdServer(config, joined=joined, peer_ssl=peer_ssl)
        except DatabaseLockedError:
            if not warned:
                # etcd's words when bbolt's lock is held; it too waits rather than exits.
                log.warning('another etcdpy process is using "%s" and holds the file lock; waiting for it to '
                            "exit before starting...", db_path)
                warned = True
            await asyncio.sleep(LOCK_RETRY_S)
        except DatabaseOpenError as exc:
            # etcd panics (exit status 2) with `cannot open database at <path> (<bbolt's reason>)`.
            raise StartupError(f"cannot open database at {db_path} ({exc})", exit_code=2) from None
        except WalCorruptError as exc:
            raise StartupError(f"read wal error ({exc}) and cannot be repaired") from None
        except DataDirError as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(f"cannot access data directory: {_path_error('open', exc, config.data_dir)}") \
                from None
