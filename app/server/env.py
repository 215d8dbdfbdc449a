"""What one member takes from the world around it, in one place so it can be substituted.

Clocks (monotonic seconds for leases and timeouts, wall seconds for request ids), the randomness of
election timeouts, where blocking durability I/O runs, what ends the member (a fatal disk error, being
removed from the cluster) and how it reaches its peers. The defaults are the real process's; the
whole-server simulation (tests/sim) gives a virtual clock, a seeded `random.Random`, a simulated disk
and network, and crashes the simulated member instead of the process.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ssl import SSLContext
from typing import Protocol

from etcdpy.app.peer.transport import PeerTransport
from etcdpy.app.server.raft_node import Fatal, RunIO, exit_process
from etcdpy.raft import Message


class PeerHealth(Protocol):
    @property
    def healthy(self) -> bool: ...


class PeerLink(Protocol):
    """The member's side of its peer network (app.peer.transport.PeerTransport in a real process)."""

    @property
    def senders(self) -> Mapping[int, PeerHealth]: ...  # per peer: is the link healthy (member health)

    def set_peers(self, urls: dict[int, str]) -> None: ...

    def send(self, messages: list[Message]) -> None: ...

    def add_remote(self, peer_id: int, url: str) -> None: ...

    async def close(self) -> None: ...


class PeerLinkFactory(Protocol):
    def __call__(self, local_id: int, unreachable: Callable[[int], None],
                 snapshot_done: Callable[[int, bool], None], dump_snapshot: Callable[[str], int],
                 removed: Callable[[], None], ssl: SSLContext | None = None,
                 local_url: str = "") -> PeerLink: ...


def terminate_process() -> None:
    """etcd exits once it learns it was removed: a SIGTERM to ourselves runs the orderly shutdown."""
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class ServerEnv:
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    rng: random.Random | None = None  # None: seeded from the OS
    run_io: RunIO | None = None  # None: Linux AIO for the WAL's syncs where it can, else a sync thread
    fatal: Fatal = exit_process
    on_removed: Callable[[], None] = terminate_process
    transport: PeerLinkFactory = PeerTransport


DEFAULT_ENV = ServerEnv()
