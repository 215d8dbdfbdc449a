"""A fault-injecting network for peer traffic: one TCP proxy in front of every member's peer port.

Members listen for peers on their real port (``--listen-peer-urls``) but advertise the proxy's address
(``--initial-advertise-peer-urls`` and ``--initial-cluster``), so every Raft message and snapshot between
members goes through :class:`FaultNet`. Server code is not touched.

Peer URLs are shared by all senders, so a proxy in front of member B cannot tell from the address alone
whether a connection comes from A or C. It finds out from the kernel: the accepted connection's remote
port is the sender's local port; ``/proc/net/tcp`` maps that port to a socket inode, and the member
process holding that inode in ``/proc/<pid>/fd`` is the sender. A connection therefore belongs to one
directed link ``src -> dst`` for its whole life (an HTTP keep-alive connection is only ever used by the
process that opened it).

Per directed link the test can:

- cut it, as ``drop`` (connections are reset at once and new ones refused: the sender sees errors) or
  ``blackhole`` (connections are accepted and the bytes swallowed: the sender sees a hang, then its own
  timeout). A link is the connections its sender opens: cutting ``A -> B`` stops A's messages to B while
  B's messages to A (on B's own connections, answered with an empty 204) still arrive, which is a
  one-way partition as Raft sees it; `partition()` cuts both directions;
- delay it (every chunk is forwarded ``delay`` seconds after it arrived, order kept);
- make it lossy (each chunk resets its connection with probability ``loss``: TCP cannot lose bytes in the
  middle of a stream, so loss is modelled as the connection breaking, which Raft must survive).

All rule changes run on the proxy's event loop and return only once existing connections on a newly cut
link are reset or swallowing: when ``partition()`` returns, no further byte crosses the cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["ok", "drop", "blackhole"]
CHUNK = 64 * 1024


@dataclass
class LinkRule:
    mode: Mode = "ok"
    delay: float = 0.0
    loss: float = 0.0


@dataclass(eq=False)
class _Conn:
    src: str | None  # None: a process that is not a member (a test client, or one not identified)
    dst: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    swallowing: bool = False  # blackholed: once bytes are swallowed the stream is broken for good
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for w in (self.client, self.upstream):
            if w is not None:
                w.transport.abort()
        for t in self.tasks:
            t.cancel()


def _proc_socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the TCP socket whose local port is ``local_port`` and remote ``remote_port``."""
    want_local, want_remote = f":{local_port:04X}", f":{remote_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[1].endswith(want_local) and cols[2].endswith(want_remote):
                        return int(cols[9])
        except OSError:
            continue
    return None


def _pid_holds_inode(pid: int, inode: int) -> bool:
    target = f"socket:[{inode}]"
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") == target:
                return True
        except OSError:
            continue
    return False


class FaultNet:
    """Proxies for the members' peer ports, and the rules for every directed link between members."""

    def __init__(self, pids: Callable[[], dict[str, int]], seed: int = 0) -> None:
        """``pids()`` gives the current process id of every member by name (used to identify senders)."""
        self._pids = pids
        self._rng = random.Random(seed)
        self._rules: dict[tuple[str, str], LinkRule] = {}
        self._conns: set[_Conn] = set()
        self._servers: dict[str, asyncio.base_events.Server] = {}
        self._upstream: dict[str, int] = {}
        self.stats = {"connections": 0, "refused": 0, "lost": 0, "unidentified": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultnet", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ lifecycle

    def _call(self, fn: Callable[[], object]) -> None:
        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def add_member(self, name: str, upstream_port: int) -> int:
        """Start a proxy forwarding to ``127.0.0.1:upstream_port``; returns the proxy's port."""

        async def start() -> int:
            server = await asyncio.start_server(
                lambda r, w: self._accept(name, r, w), host="127.0.0.1", port=0, reuse_address=True)
            self._servers[name] = server
            self._upstream[name] = upstream_port
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers.values():
                server.close()
            for conn in list(self._conns):
                conn.abort()
            self._conns.clear()
            # Aborted connections end their handlers; give them a moment rather than cancel them (asyncio's
            # stream callback reports cancelled connection handlers as errors).
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=2)
                for task in pending:
                    task.cancel()

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    # ------------------------------------------------------------------ rules

    def rule(self, src: str | None, dst: str) -> LinkRule:
        if src is None:
            return LinkRule()
        return self._rules.get((src, dst), LinkRule())

    def set_link(self, src: str, dst: str, *, mode: Mode | None = None, delay: float | None = None,
                 loss: float | None = None) -> None:
        self.set_links([(src, dst)], mode=mode, delay=delay, loss=loss)

    def set_links(self, links: Iterable[tuple[str, str]], *, mode: Mode | None = None,
                  delay: float | None = None, loss: float | None = None) -> None:
        links = list(links)

        def apply() -> None:
            for src, dst in links:
                old = self._rules.get((src, dst), LinkRule())
                self._rules[(src, dst)] = LinkRule(
                    mode if mode is not None else old.mode,
                    delay if delay is not None else old.delay,
                    loss if loss is not None else old.loss,
                )
            self._enforce()

        self._call(apply)

    def partition(self, *groups: Iterable[str], mode: Mode = "drop") -> None:
        """Cut every link between members of different groups (both directions); heal all others."""
        sets = [set(g) for g in groups]
        names = set().union(*sets)
        cut = [(a, b) for a in names for b in names
               if a != b and not any(a in s and b in s for s in sets)]

        def apply() -> None:
            for key in list(self._rules):
                self._rules[key] = LinkRule("ok", self._rules[key].delay, self._rules[key].loss)
            for link in cut:
                old = self._rules.get(link, LinkRule())
                self._rules[link] = LinkRule(mode, old.delay, old.loss)
            self._enforce()

        self._call(apply)

    def isolate(self, name: str, others: Iterable[str], mode: Mode = "drop") -> None:
        """Cut ``name`` off from every member in ``others``, both directions."""
        rest = [o for o in others if o != name]
        self.set_links([(name, o) for o in rest] + [(o, name) for o in rest], mode=mode)

    def heal(self) -> None:
        """Every link back to normal: no cut, no delay, no loss."""

        def apply() -> None:
            self._rules.clear()

        self._call(apply)

    def cut_links(self) -> list[tuple[str, str]]:
        return sorted(k for k, r in self._rules.items() if r.mode != "ok")

    def _enforce(self) -> None:
        """Reset (drop) or start swallowing (blackhole) the live connections of newly cut links."""
        for conn in list(self._conns):
            modes = self._modes(conn.src, conn.dst)
            if "drop" in modes:
                conn.abort()
                self._conns.discard(conn)
            elif "blackhole" in modes:
                conn.swallowing = True

    # ------------------------------------------------------------------ connections

    def _identify(self, remote_port: int, proxy_port: int) -> str | None:
        inode = _proc_socket_inode(remote_port, proxy_port)
        if inode is None:
            return None
        for name, pid in self._pids().items():
            if _pid_holds_inode(pid, inode):
                return name
        return None

    async def _accept(self, dst: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        remote_port = writer.get_extra_info("peername")[1]
        proxy_port = writer.get_extra_info("sockname")[1]
        src = self._identify(remote_port, proxy_port)
        if src is None:
            self.stats["unidentified"] += 1
        conn = _Conn(src, dst, writer)
        modes = self._modes(src, dst)
        if "drop" in modes:
            self.stats["refused"] += 1
            writer.transport.abort()
            return
        self._conns.add(conn)
        try:
            if "blackhole" in modes:
                conn.swallowing = True
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream[dst])
            except OSError:
                writer.transport.abort()
                return
            conn.upstream = up_writer
            if conn not in self._conns:  # the link was cut while we were connecting
                conn.abort()
                return
            loop = asyncio.get_running_loop()
            conn.tasks = [
                loop.create_task(self._pump(conn, reader, up_writer, src, dst)),
                loop.create_task(self._pump(conn, up_reader, writer, dst, src)),
            ]
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            self._conns.discard(conn)
            conn.abort()

    def _modes(self, src: str | None, dst: str) -> set[Mode]:
        return {self.rule(src, dst).mode}

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(CHUNK):
                pass

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    src: str | None, dst: str | None) -> None:
        """Copy one direction of a connection, applying the rule of the link ``src -> dst``."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            try:
                while True:
                    due, chunk = await queue.get()
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not chunk:
                        if writer.can_write_eof() and not conn.swallowing:
                            writer.write_eof()
                        return
                    if not conn.swallowing:
                        writer.write(chunk)
                        await writer.drain()
            except OSError:
                conn.abort()

        sender = asyncio.get_running_loop().create_task(deliver())
        try:
            while True:
                chunk = await reader.read(CHUNK)
                rule = self.rule(src, dst) if src is not None and dst is not None else LinkRule()
                if chunk and rule.loss and self._rng.random() < rule.loss:
                    self.stats["lost"] += 1
                    conn.abort()
                    return
                queue.put_nowait((time.monotonic() + rule.delay, chunk))
                if not chunk:
                    break
            await sender
        except OSError:
            conn.abort()
        finally:
            sender.cancel()
