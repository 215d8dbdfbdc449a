"""Starts the member's front workers on its plain-HTTP client sockets, restarts one that dies, and
stops them all before the member exits (so its port is free when it is gone).

The member keeps the listening sockets but never accepts on them: every client connection goes to a
worker. The member's own HTTP server listens instead on a private abstract Unix socket, which
workers splice the connections they do not answer themselves to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys

from starlette.types import ASGIApp

from etcdpy.app.front.bridge import MemberChannel
from etcdpy.app.gateway.asgi import gateway_routes
from etcdpy.app.gateway.dispatch import Gateway

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.5
STOP_S = 3.0  # a worker's drain (worker.DRAIN_S) and a margin


def default_count() -> int:
    """One worker per core beyond the first (the member's own process keeps one busy); none on a
    single core, where workers would only add a hop."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores - 1


def member_socket() -> tuple[socket.socket, str]:
    """The private socket the member's HTTP server listens on, and its name in the Linux abstract
    namespace (no file to clean up; the name is given without its leading NUL, which argv cannot hold)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"etcdpy-front-{os.getpid()}-{os.urandom(4).hex()}"
    sock.bind("\0" + name)
    sock.listen(2048)
    sock.setblocking(False)
    return sock, name


class WorkerPool:
    """`launch()` starts the workers' processes as soon as the sockets are bound, before the member
    opens its data: a worker's start (an interpreter and its imports, about a tenth of a second) then
    overlaps the member's own instead of following it. Connections a worker accepts meanwhile wait in
    its channel until `start(app)` attaches the member's end."""

    def __init__(self, count: int, listening: list[socket.socket], member_http: str,
                 bare_gateway: bool) -> None:
        self.count = count
        self.listening = listening
        self.member_http = member_http
        # The bare gateway (no CORS filter in front) answers unary RPCs without ASGI and takes the KV
        # bodies the workers decoded; behind a filter every frame goes through the app.
        routes = gateway_routes()
        self.paths = [*routes.rpcs, *sorted(routes.bounded_streams)]
        self.decode = [f"{path}={message}" for path, (message, _) in routes.decoded.items()] \
            if bare_gateway else []
        self.app: ASGIApp | None = None
        self.gateway: Gateway | None = None
        self._launched: list[tuple[subprocess.Popen[bytes], socket.socket]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._stopping = False

    def launch(self) -> None:
        self._launched = [self._popen() for _ in range(self.count)]

    def abort(self) -> None:
        """The member failed to start: kill the launched workers (they would otherwise serve nothing)."""
        for proc, mine in self._launched:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            mine.close()
            self._procs.discard(proc)
        self._launched = []

    async def start(self, app: ASGIApp) -> None:
        self.app = app
        self.gateway = app if isinstance(app, Gateway) else None
        if (self.gateway is not None) != bool(self.decode):
            raise ValueError("the workers decode KV bodies only for the bare gateway")
        if not self._launched:
            self.launch()
        launched, self._launched = self._launched, []
        for slot, first in enumerate(launched):
            started = asyncio.get_running_loop().create_future()
            self._tasks.append(asyncio.create_task(self._keep(slot, started, first)))
            await started

    async def _keep(self, slot: int, started: asyncio.Future[None],
                    launched: tuple[subprocess.Popen[bytes], socket.socket] | None) -> None:
        """Run worker `slot`, starting it again whenever it exits while the member still serves."""
        while not self._stopping:
            try:
                proc, mine = launched or self._popen()
                launched = None
                channel = await self._attach(mine)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise
            if not started.done():
                started.set_result(None)
            try:
                await channel.closed
            finally:
                await self._reap(proc)
            if not self._stopping:
                log.warning("front worker %d exited (status %s); starting another", slot, proc.returncode)
                await asyncio.sleep(RESTART_DELAY_S)

    def _popen(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = [sock.fileno() for sock in self.listening]
        cmd = [sys.executable, "-m", "etcdpy.app.front.worker", "--channel-fd", str(theirs.fileno()),
               "--member-http", self.member_http, "--paths", ",".join(self.paths),
               "--decode", ",".join(self.decode),
               "--parent", str(os.getpid())]
        for fd in fds:
            cmd += ["--listen-fd", str(fd)]
        proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(), *fds))
        theirs.close()
        self._procs.add(proc)
        return proc, mine

    async def _attach(self, mine: socket.socket) -> MemberChannel:
        assert self.app is not None
        app, gateway = self.app, self.gateway
        first = self.listening[0].getsockname() if self.listening else None
        _, channel = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: MemberChannel(app, first if isinstance(first, tuple) else None, gateway), mine)
        return channel

    async def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.get_running_loop().run_in_executor(None, proc.wait)
        self._procs.discard(proc)

    async def stop(self) -> None:
        """Stop the workers: SIGTERM lets each close its sockets and finish the answers it owes
        (this member still serves them); any still running after STOP_S is killed."""
        self._stopping = True
        procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        loop = asyncio.get_running_loop()
        exits = [loop.run_in_executor(None, proc.wait) for proc in procs]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*exits), STOP_S)
        for proc in list(self._procs):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proc in list(self._procs):
            proc.wait()
        self._procs.clear()
