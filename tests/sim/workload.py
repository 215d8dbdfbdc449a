"""The simulation's clients and nemesis: what they do, and the history they record for the checkers.

Clients call the members' real entry points (`EtcdServer.put/delete_range/txn/range/compact`, the
gateway's lease functions) on a random live member, each with a deadline; every call is recorded with
its invocation and completion times (virtual) and its outcome: `ok` with the result, `fail` when it
certainly had no effect (a read that failed), or `unknown` (a write that timed out or whose member
crashed: it may or may not have happened). Watchers consume watch streams straight from a member's
watch hub. The nemesis crashes and restarts members, cuts links one way or both, arms disk faults and
replaces a member (remove, then add a new one that catches up from a snapshot).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from etcdpy.app.gateway.lease import keepalive_once, lease_grant, lease_revoke
from etcdpy.app.server.identity import member_id
from etcdpy.app.server.membership import Member
from etcdpy.raft import ConfChange, ConfChangeType
from etcdpy.storage.kv_types import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from etcdpy.storage.watch_hub import CompactedMsg, EventsMsg
from tests.sim.cluster import WALL_EPOCH, SimCluster, SimMember
from tests.sim.loop import OWNER

KEYS = [b"k%d" % i for i in range(8)]
OP_TIMEOUT = 2.5  # seconds a client waits for an answer (shorter than etcd's request timeout)


@dataclass
class Op:
    seq: int
    kind: str  # put, delete, txn, range, srange, grant, revoke, keepalive, compact
    member: str
    invoke: float
    req: Any
    complete: float = math.inf
    status: str = "unknown"  # ok | fail | unknown
    result: Any = None


@dataclass
class WatchRecord:
    member: str
    key: bytes
    end: bytes
    start: int  # the first revision the stream owes its watcher
    opened: float
    events: list[tuple[int, Any]] = field(default_factory=list)  # (revision, Event)
    compacted: int = 0
    ended: str = ""  # why it ended early ("" = open until the end of the run)


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    watches: list[WatchRecord] = field(default_factory=list)
    leases: dict[int, int] = field(default_factory=dict)  # lease id -> TTL (granted ok)

    def begin(self, kind: str, member: str, now: float, req: Any) -> Op:
        op = Op(len(self.ops), kind, member, now, req)
        self.ops.append(op)
        return op

    @property
    def max_acked_revision(self) -> int:
        return max((op.result.revision for op in self.ops if op.status == "ok"
                    and hasattr(op.result, "revision")), default=1)


WRITES = {"put", "delete", "txn", "revoke", "grant", "compact"}


class Workload:
    def __init__(self, cluster: SimCluster, rng: random.Random, history: History) -> None:
        self.cluster = cluster
        self.rng = rng
        self.history = history
        self.loop = cluster.loop
        self.replaced = False

    def pick(self) -> SimMember | None:
        live = [m for m in self.cluster.live() if not m.removed]
        return self.rng.choice(live) if live else None

    # ------------------------------------------------------------------ clients

    async def client(self, until: float) -> None:
        rng = self.rng
        while self.loop.time() < until:
            await asyncio.sleep(rng.uniform(0.002, 0.06))
            member = self.pick()
            if member is None or member.server is None:
                continue
            kind = rng.choices(
                ["put", "delete", "txn", "range", "srange", "grant", "revoke", "keepalive", "compact"],
                [30, 8, 14, 16, 4, 5, 2, 8, 1])[0]
            await self.run_op(member, kind)

    def _value(self, seq: int) -> bytes:
        return b"v%d" % seq

    def _request(self, kind: str, seq: int) -> Any:
        rng = self.rng
        key = rng.choice(KEYS)
        leases = list(self.history.leases)
        if kind == "put":
            lease = rng.choice(leases) if leases and rng.random() < 0.3 else 0
            return PutRequest(key=key, value=self._value(seq), lease=lease, prev_kv=rng.random() < 0.5)
        if kind == "delete":
            if rng.random() < 0.3:
                a, b = sorted(rng.sample(KEYS, 2))
                return DeleteRangeRequest(key=a, range_end=b, prev_kv=True)
            return DeleteRangeRequest(key=key, prev_kv=rng.random() < 0.5)
        if kind == "txn":
            k1, k2, k3, k4 = rng.sample(KEYS, 4)
            target = rng.choice([CompareTarget.VERSION, CompareTarget.MOD, CompareTarget.VALUE])
            if target == CompareTarget.VALUE:
                cmp = Compare(CompareResult.EQUAL, target, k1, b"", "value",
                              self._value(rng.randrange(max(1, seq))))
            else:
                union = "version" if target == CompareTarget.VERSION else "mod_revision"
                cmp = Compare(rng.choice([CompareResult.EQUAL, CompareResult.GREATER, CompareResult.LESS]),
                              target, k1, b"", union, rng.randint(0, 6 if union == "version" else 60))
            value = self._value(seq)
            return TxnRequest(
                compare=[cmp],
                success=[PutRequest(key=k2, value=value), RangeRequest(key=k3)],
                failure=[PutRequest(key=k3, value=value), DeleteRangeRequest(key=k4),
                         RangeRequest(key=k1)])
        if kind in ("range", "srange"):
            if rng.random() < 0.5:
                return RangeRequest(key=key, serializable=kind == "srange")
            return RangeRequest(key=b"k", range_end=b"l", serializable=kind == "srange")
        if kind == "grant":
            return {"TTL": rng.randint(3, 6)}
        if kind in ("revoke", "keepalive"):
            return {"ID": rng.choice(leases)} if leases else None
        if kind == "compact":
            rev = self.history.max_acked_revision - rng.randint(1, 15)
            return CompactionRequest(revision=rev) if rev > 1 else None
        raise ValueError(kind)

    async def run_op(self, member: SimMember, kind: str) -> None:
        server = member.server
        assert server is not None
        seq = len(self.history.ops)
        req = self._request(kind, seq)
        if req is None:
            return
        if kind == "keepalive" and not server.node.is_leader:
            return  # a follower forwards over HTTP; the simulation asks the leader directly
        op = self.history.begin(kind, member.name, self.loop.time(), req)
        token = OWNER.set(member)
        try:
            result = await asyncio.wait_for(self._call(server, kind, req), OP_TIMEOUT)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - every failure is an outcome
            if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            op.complete = self.loop.time()
            op.status = "fail" if kind in ("range", "srange", "keepalive") else "unknown"
            op.result = repr(exc)  # not the exception: its traceback would keep the member's frames alive
            if "no leader" in op.result:
                await asyncio.sleep(0.2)  # as a client backs off while the cluster elects
            return
        finally:
            OWNER.reset(token)
        op.complete = self.loop.time()
        op.status = "ok"
        op.result = result
        if kind == "grant":
            self.history.leases[int(result["ID"])] = req["TTL"]
        if kind == "keepalive" and not result.get("TTL"):
            op.status = "fail"  # unknown or expired: not renewed

    async def _call(self, server: Any, kind: str, req: Any) -> Any:
        if kind == "put":
            return await server.put(req)
        if kind == "delete":
            return await server.delete_range(req)
        if kind == "txn":
            return await server.txn(req)
        if kind in ("range", "srange"):
            return await server.range(req)
        if kind == "compact":
            return await server.compact(req)
        body = json.dumps(req).encode()
        if kind == "grant":
            return await lease_grant(server, body)
        if kind == "revoke":
            return await lease_revoke(server, body)
        return await keepalive_once(server, req["ID"])

    # ------------------------------------------------------------------ watchers

    async def watcher(self, until: float, end_of_run: float) -> None:
        rng = self.rng
        while self.loop.time() < until:
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            member = self.pick()
            if member is None or member.server is None:
                continue
            server = member.server
            hub = server.watch_service.hub
            if rng.random() < 0.5:
                key, end = rng.choice(KEYS), b""
            else:
                key, end = b"k", b"l"
            start = 0 if rng.random() < 0.5 else max(1, self.history.max_acked_revision - rng.randint(0, 30))
            wake = asyncio.Event()
            stream = hub.open_stream(wakeup=wake.set)
            w = hub.watch(stream, 0, key, end, start)
            rec = WatchRecord(member.name, key, end, w.next_rev, self.loop.time())
            self.history.watches.append(rec)
            close_at = end_of_run if rng.random() < 0.4 else self.loop.time() + rng.uniform(0.2, 3.0)
            while True:
                if member.server is not server or not member.alive:
                    rec.ended = "member crashed"
                    break
                for msg in stream.drain():
                    if isinstance(msg, EventsMsg):
                        rec.events.extend((ev.kv.mod_revision, ev) for ev in msg.batch.events)
                    elif isinstance(msg, CompactedMsg):
                        rec.compacted = msg.compact_revision
                if rec.compacted:
                    rec.ended = "compacted"
                    break
                if self.loop.time() >= close_at:
                    if close_at < end_of_run:
                        rec.ended = "closed"
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 0.25)
                except TimeoutError:
                    pass
            if member.server is server and member.alive:
                hub.close_stream(stream)

    # ------------------------------------------------------------------ nemesis

    async def nemesis(self, until: float) -> None:
        rng, cluster = self.rng, self.cluster
        while self.loop.time() < until:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            if self.loop.time() >= until:
                break
            for m in list(cluster.members.values()):
                if not m.alive and not m.removed and rng.random() < 0.3:
                    cluster.start(m)
            r = rng.random()
            live = [m for m in cluster.live() if not m.removed]
            if r < 0.25 and live:
                victim = rng.choice(live)
                await victim.crash("nemesis")
            elif r < 0.5 and live:
                self._partition(rng.choice(live))
            elif r < 0.62 and live:
                victim = rng.choice(live)
                victim.arm_disk_fault(rng)
                cluster.note(f"disk fault armed on {victim.name}: {victim.disk.plan}")
            elif r < 0.8 and not self.replaced:
                self.replaced = True
                self.loop.spawn(self._replace_member())

    def _partition(self, m: SimMember) -> None:
        rng, cluster = self.rng, self.cluster
        others = [o.name for o in cluster.members.values() if o is not m]
        mode = rng.choice(["isolate", "out", "in", "link"])
        if mode == "isolate":
            links = [(m.name, o) for o in others] + [(o, m.name) for o in others]
        elif mode == "out":
            links = [(m.name, o) for o in others]
        elif mode == "in":
            links = [(o, m.name) for o in others]
        else:
            links = [(m.name, rng.choice(others))]
        new = [link for link in links if link not in cluster.cut]
        cluster.cut.update(new)
        heal_after = rng.uniform(0.3, 2.5)
        cluster.note(f"cut {mode} {m.name} for {heal_after:.2f}s")

        def heal() -> None:
            cluster.cut.difference_update(new)
        self.loop.call_later(heal_after, heal)

    async def _replace_member(self) -> None:
        """Remove a member, then add a new one (it catches up by snapshot: the log is compacted)."""
        cluster = self.cluster
        members = [m for m in cluster.members.values() if not m.removed and m.member_id]
        victim = self.rng.choice(members)
        if not await self._conf_change(ConfChange(ConfChangeType.REMOVE_NODE, victim.member_id, b"")):
            return
        victim.removed = True
        cluster.note(f"removed {victim.name}")
        newcomer = cluster.new_member()
        new_id = member_id([newcomer.url], "", int(WALL_EPOCH + self.loop.time()))
        packed = Member(new_id, "", [newcomer.url], [], False).pack()
        # Until the add commits the newcomer does not exist; if the outcome is unknown it may exist.
        ok = await self._conf_change(ConfChange(ConfChangeType.ADD_NODE, new_id, packed))
        live = cluster.live()
        if not live or live[0].server is None:
            return
        newcomer.joined = {"member_id": new_id, "cluster_id": live[0].server.cluster_id}
        if ok or new_id in live[0].server.membership.members:
            cluster.note(f"added {newcomer.name} ({new_id:x})")
            newcomer.removed = False
            cluster.start(newcomer)

    async def _conf_change(self, cc: ConfChange) -> bool:
        """Propose once a member knows a leader (a conf change is not retried: its outcome may be
        unknown); True when it was acknowledged."""
        for _ in range(20):
            member = self.pick()
            if member is not None and member.server is not None and member.server.node.leader:
                token = OWNER.set(member)
                try:
                    await asyncio.wait_for(member.server.propose_conf_change(cc), OP_TIMEOUT)
                    return True
                except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the outcome is unknown
                    return False
                finally:
                    OWNER.reset(token)
            await asyncio.sleep(0.3)
        return False
