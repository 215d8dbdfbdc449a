"""The simulated cluster: complete members (real `EtcdServer`s) on a simulated network, disk and clock.

- **Clock**: the `SimLoop`'s virtual time is every member's monotonic clock (and, offset, its wall clock).
- **Disk**: each member's WAL is on a `PowerLossDisk` (tests/power_loss.py); `run_io` makes each
  fdatasync take simulated time (so proposals batch behind it), and a crash drops unsynced bytes (or
  leaves a torn tail). An armed fault makes an fdatasync fail with EIO or a write with ENOSPC; the
  member then stops (its `fatal`) as the real one exits. RocksDB keeps what was written (a process
  crash; it is rebuilt from the WAL anyway).
- **Network**: `SimTransport` stands in for the peer transport: every message is encoded with the real
  wire format and delivered after a random delay (so reordered), or dropped, or duplicated; links can be
  cut one way or both. Snapshots are dumped by the sender and installed through `receive_snapshot`.
- **Crashes**: every task a member created is cancelled, requests waiting on it fail, unsynced WAL
  bytes are lost, and the member restarts on what survived.

Everything random comes from one `random.Random` made from the seed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etcdpy.app.config import Config
from etcdpy.app.peer.wire import decode_messages, encode_messages
from etcdpy.app.server.env import ServerEnv
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.raft import Message, MessageType
from etcdpy.storage.kv_types import Event
from tests.power_loss import FaultPlan, PowerCut, PowerLossDisk
from tests.sim.loop import OWNER, SimLoop

log = logging.getLogger("sim")

WALL_EPOCH = 1_700_000_000.0


class MemberDown(Exception):
    """The member a request waited on crashed: the request's outcome is unknown."""


@dataclass
class NetParams:
    delay_min: float = 0.0005
    delay_max: float = 0.004
    slow_p: float = 0.05  # a message delayed up to slow_max instead
    slow_max: float = 0.15
    drop_p: float = 0.02
    dup_p: float = 0.02


@dataclass
class Trace:
    """What the members did, as the checkers see it (recorded outside the code under test)."""

    # revision -> (member name, events, virtual time) as each member applied it
    applied: dict[int, list[tuple[str, list[Event], float]]] = field(default_factory=dict)
    revokes: dict[int, float] = field(default_factory=dict)  # lease id -> first time a member applied it
    notes: list[str] = field(default_factory=list)  # the nemesis' actions, for a failing seed's output
    problems: list[str] = field(default_factory=list)  # failures seen while running (a refused restart)


class SimTransport:
    """One member's peer link on the simulated network (app.peer.transport.PeerTransport's shape)."""

    def __init__(self, member: SimMember, local_id: int, unreachable: Callable[[int], None],
                 snapshot_done: Callable[[int, bool], None], dump_snapshot: Callable[[str], int],
                 removed: Callable[[], None], ssl: object = None, local_url: str = "") -> None:
        self.member = member
        self.local_id = local_id
        self.unreachable = unreachable
        self.snapshot_done = snapshot_done
        self.dump_snapshot = dump_snapshot
        self.removed = removed
        self.urls: dict[int, str] = {}
        self.members: dict[int, str] = {}
        self.remotes: dict[int, str] = {}
        self.senders: dict[int, Any] = {}

    def set_peers(self, urls: dict[int, str]) -> None:
        self.members = dict(urls)
        self.remotes = {pid: url for pid, url in self.remotes.items() if pid not in urls}
        merged = {**self.remotes, **urls}
        self.urls = {pid: url for pid, url in merged.items() if pid != self.local_id}

    def add_remote(self, peer_id: int, url: str) -> None:
        if peer_id != self.local_id and peer_id not in self.members:
            self.remotes[peer_id] = url
            self.set_peers(self.members)

    def send(self, messages: list[Message]) -> None:
        for msg in messages:
            if msg.to in self.urls:
                self.member.cluster.net_send(self, msg)

    async def close(self) -> None:
        pass


class SimMember:
    def __init__(self, cluster: SimCluster, name: str, url: str, joined: dict[str, Any] | None) -> None:
        self.cluster = cluster
        self.name = name
        self.url = url
        self.joined = joined
        self.dir = os.path.join(cluster.base, name)
        self.disk = PowerLossDisk(random.Random(cluster.rng.getrandbits(32)))
        self.server: EtcdServer | None = None
        self.alive = False
        self.removed = False
        self.restarts = 0
        self.tasks: dict[asyncio.Task[Any], None] = {}
        self.member_id = 0

    @property
    def config(self) -> Config:
        c = self.cluster
        return Config(name=self.name, data_dir=self.dir, initial_cluster=c.initial_cluster,
                      initial_advertise_peer_urls=[self.url], listen_peer_urls=[self.url],
                      heartbeat_interval=c.heartbeat_ms, election_timeout=c.election_ms,
                      snapshot_count=c.snapshot_count,
                      experimental_snapshot_catchup_entries=c.catch_up_entries,
                      initial_cluster_state="new" if self.joined is None else "existing")

    def start(self) -> bool:
        """Open the member on its data and start it; False (and a recorded problem) if it refuses."""
        cluster = self.cluster
        env = ServerEnv(
            monotonic=cluster.loop.time,
            wall=lambda: WALL_EPOCH + cluster.loop.time() + self.restarts,
            rng=random.Random(cluster.rng.getrandbits(32)),
            run_io=self._run_io,
            fatal=self._fatal,
            on_removed=self._on_removed,
            transport=lambda *a, **kw: SimTransport(self, *a, **kw),
        )
        token = OWNER.set(self)
        try:
            server = EtcdServer(self.config, joined=self.joined, wal_files=self.disk, env=env)
        except Exception as exc:  # noqa: BLE001 - a member refusing its own data is a finding
            cluster.trace.problems.append(f"{self.name} refused to restart: {exc!r}")
            OWNER.reset(token)
            return False
        try:
            self.member_id = server.member_id
            self._tap(server)
            self.server = server
            self.alive = True
            server.start()
        finally:
            OWNER.reset(token)
        return True

    def _tap(self, server: EtcdServer) -> None:
        """Record what this member applies (before the watch hub sees it) and when leases are revoked."""
        trace, loop, name = self.cluster.trace, self.cluster.loop, self.name
        on_events = server.applier.on_events

        def tapped(events: list[Event], revision: int) -> None:
            trace.applied.setdefault(revision, []).append((name, list(events), loop.time()))
            on_events(events, revision)
        server.applier.on_events = tapped
        lessor = server.leases.lessor
        apply_revoke = lessor.apply_revoke

        def revoke(index: int, lease_id: int) -> list[Event]:
            if lease_id in lessor.leases:
                trace.revokes.setdefault(lease_id, loop.time())
            return apply_revoke(index, lease_id)
        lessor.apply_revoke = revoke  # type: ignore[method-assign]

    async def _run_io(self, io: Callable[[], None]) -> None:
        await asyncio.sleep(self.cluster.disk_latency())
        io()

    def _fatal(self, reason: str) -> None:
        self.cluster.note(f"{self.name} stops: {reason}")
        if not reason.startswith("disk failure"):
            # Only the disk may stop a member; anything else failing its Raft loop is a bug.
            self.cluster.trace.problems.append(f"{self.name} stopped at {self.cluster.loop.time():.3f}: "
                                               f"{reason}")
        self.cluster.loop.spawn(self.crash("fatal"))

    def _on_removed(self) -> None:
        self.removed = True
        self.cluster.note(f"{self.name} learns it was removed")
        self.cluster.loop.spawn(self.crash("removed"))

    async def crash(self, why: str) -> None:
        if not self.alive or self.server is None:
            return
        self.alive = False
        server = self.server
        self.cluster.note(f"crash {self.name} ({why})")
        self.disk.cut_power()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        # Requests from clients (their own tasks) waiting on this member fail: outcome unknown.
        down = MemberDown(f"{self.name} crashed")
        for settle in server._pending.take_all():
            settle(down)
        server.node.fail_reads(down)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        server.watch_service.stop()
        server.wal.close()
        self.disk.power_loss()
        server.store.close()  # (collects cycles: the member reopens the path on restart)
        self.server = None

    def arm_disk_fault(self, rng: random.Random) -> None:
        if rng.random() < 0.5:
            self.disk.plan = FaultPlan("fdatasync", nth=rng.randint(1, 30), error=errno.EIO)
        else:
            self.disk.plan = FaultPlan("write", nth=rng.randint(1, 60), error=errno.ENOSPC)


class SimCluster:
    def __init__(self, loop: SimLoop, rng: random.Random, base: str, size: int, *, net: NetParams,
                 snapshot_count: int, catch_up_entries: int) -> None:
        self.loop = loop
        self.rng = rng
        self.base = base
        self.net = net
        self.heartbeat_ms = 100
        self.election_ms = 1000
        self.snapshot_count = snapshot_count
        self.catch_up_entries = catch_up_entries
        self.trace = Trace()
        self.cut: set[tuple[str, str]] = set()  # (from, to) links that deliver nothing
        self.members: dict[str, SimMember] = {}
        names = [f"m{i}" for i in range(size)]
        self.initial_cluster = ",".join(f"{n}=http://{n}:2380" for n in names)
        for n in names:
            self.members[n] = SimMember(self, n, f"http://{n}:2380", None)
        self.next_name = size
        self.by_id: dict[int, SimMember] = {}

    # ------------------------------------------------------------------ bookkeeping

    def note(self, text: str) -> None:
        self.trace.notes.append(f"{self.loop.time():8.3f} {text}")

    def start_all(self) -> None:
        for m in self.members.values():
            self.start(m)

    def start(self, m: SimMember) -> None:
        if m.alive or m.removed:
            return
        if m.server is None and m.start():
            self.by_id[m.member_id] = m
            m.restarts += 1
            self.note(f"start {m.name}")

    def live(self) -> list[SimMember]:
        return [m for m in self.members.values() if m.alive and m.server is not None]

    def leader(self) -> SimMember | None:
        for m in self.live():
            assert m.server is not None
            if m.server.node.is_leader:
                return m
        return None

    def disk_latency(self) -> float:
        r = self.rng.random()
        if r < 0.03:
            return self.rng.uniform(0.02, 0.2)  # a slow fdatasync: proposals pile up behind it
        return self.rng.uniform(0.0002, 0.003)

    async def shutdown(self) -> None:
        for m in list(self.members.values()):
            await m.crash("end of run")
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------ network

    def net_send(self, src: SimTransport, msg: Message) -> None:
        sender = src.member
        target = self.by_id.get(msg.to)
        if target is None:
            return
        if msg.type == MessageType.MsgSnap:
            self._send_snapshot(src, target, msg)
            return
        rng, net = self.rng, self.net
        if (sender.name, target.name) in self.cut or rng.random() < net.drop_p:
            return
        data = encode_messages([msg])
        copies = 2 if rng.random() < net.dup_p else 1
        for _ in range(copies):
            self.loop.call_later(self._delay(), self._deliver, src, target, data)

    def _delay(self) -> float:
        rng, net = self.rng, self.net
        if rng.random() < net.slow_p:
            return rng.uniform(net.delay_max, net.slow_max)
        return rng.uniform(net.delay_min, net.delay_max)

    def _deliver(self, src: SimTransport, target: SimMember, data: bytes) -> None:
        sender = src.member
        server = target.server
        if not target.alive or server is None or (sender.name, target.name) in self.cut:
            return
        messages = decode_messages(data)
        if any(msg.frm in server.membership.removed for msg in messages):
            # The receiver answers 410: the sender learns it was removed (PeerApp's answer).
            if sender.alive and sender.server is not None and sender.server.transport is src:
                self._as(sender, src.removed)
            return
        token = OWNER.set(target)
        try:
            if messages:  # as PeerApp: the request names its sender's URL
                server.add_remote_peer(messages[0].frm, sender.url)
            for msg in messages:
                server.node.step(msg)
        finally:
            OWNER.reset(token)

    def _as(self, member: SimMember, fn: Callable[[], None]) -> None:
        token = OWNER.set(member)
        try:
            fn()
        finally:
            OWNER.reset(token)

    def _send_snapshot(self, src: SimTransport, target: SimMember, msg: Message) -> None:
        sender = src.member
        path = os.path.join(self.base, f"snap-{sender.name}-{target.name}-{self.rng.getrandbits(40):x}")
        src.dump_snapshot(path)
        lost = (sender.name, target.name) in self.cut or self.rng.random() < self.net.drop_p
        incarnation = sender.server

        def deliver() -> None:
            ok = False
            server = target.server
            if not lost and target.alive and server is not None:
                snap_dir = os.path.join(server.member_dir, "snap")
                os.makedirs(snap_dir, exist_ok=True)
                dest = os.path.join(snap_dir, os.path.basename(path))
                shutil.move(path, dest)
                token = OWNER.set(target)
                try:
                    server.receive_snapshot(decode_messages(encode_messages([msg]))[0], dest)
                finally:
                    OWNER.reset(token)
                ok = True
            elif os.path.exists(path):
                os.unlink(path)
            if sender.alive and sender.server is incarnation:
                self._as(sender, lambda: src.snapshot_done(msg.to, ok))
        self.loop.call_later(self._delay() + 0.01, deliver)

    # ------------------------------------------------------------------ membership

    def new_member(self) -> SimMember:
        """A member not yet in the cluster: add it with a conf change, then `join` it."""
        name = f"m{self.next_name}"
        self.next_name += 1
        m = SimMember(self, name, f"http://{name}:2380", None)
        m.removed = True  # not startable until it has been added
        self.members[name] = m
        return m


__all__ = ["SimCluster", "SimMember", "NetParams", "MemberDown", "Trace", "PowerCut"]
