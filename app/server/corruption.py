"""Data corruption checks between members (etcd's corrupt.go), behind etcd's experimental flags.

- `--experimental-initial-corrupt-check`: once the member has a leader after starting, compare its
  `hashkv` with every peer's at the same revision; a mismatch at the same compact revision means this
  member's data differs from the cluster's, and it stops (etcd refuses to serve such a member).
- `--experimental-corrupt-check-time D` (0 = off): every D the leader compares its `hashkv` with every
  follower's at its own revision; a follower whose hash differs at the same compact revision gets a
  CORRUPT alarm, raised through the log so every member refuses writes from then on.

Peers answer `hashkv` on their peer URL (forwarded to their gateway), like etcd's `/members/hashkv`.
A peer that cannot answer at that revision (compacted past it, behind, unreachable) is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from etcdpy.app.config import Config, parse_duration
from etcdpy.app.errors import EtcdError
from etcdpy.app.peer.forward import forward
from etcdpy.app.server.alarms import ACTIVATE, CORRUPT, AlarmRequest
from etcdpy.app.server.membership import Membership
from etcdpy.storage.maintenance import hash_kv
from etcdpy.storage.mvcc import MVCCStore

log = logging.getLogger("etcdpy.corruption")

HASHKV_PATH = "/v3/maintenance/hashkv"


class CorruptionChecker:
    def __init__(self, config: Config, store: MVCCStore, membership: Membership, member_id: Callable[[], int],
                 leader: Callable[[], int], propose: Callable[[Any], Awaitable[Any]],
                 peer_ssl: ssl.SSLContext | None = None) -> None:
        self.store = store
        self.peer_ssl = peer_ssl  # for members' https peer URLs
        self.membership = membership
        self.member_id = member_id
        self.leader = leader  # the current leader's id, 0 without one
        self.propose = propose
        self.interval = parse_duration(config.experimental_corrupt_check_time)
        self.initial = config.experimental_initial_corrupt_check

    def start(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks = []
        if self.initial:
            tasks.append(loop.create_task(self._initial_check()))
        if self.interval > 0:
            tasks.append(loop.create_task(self._periodic()))
        return tasks

    async def mismatched_peers(self) -> list[int]:
        """Members whose hashkv at this member's current revision differs at the same compact revision."""
        me = self.member_id()
        mine, compact, rev = hash_kv(self.store, 0)
        body = orjson.dumps({"revision": str(rev)})
        bad: list[int] = []
        for member_id in sorted(self.membership.members):
            url = self.membership.peer_url(member_id)
            if member_id == me or url is None:
                continue
            try:
                answer = await forward(url, HASHKV_PATH, body, ssl=self.peer_ssl)
            except EtcdError as exc:
                log.warning("no hashkv at revision %d from member %x: %s", rev, member_id, exc.message)
                continue
            if int(answer.get("compact_revision", 0)) == compact and int(answer.get("hash", 0)) != mine:
                log.error("member %x has hash %s at revision %d, this member %d (compact revision %d)",
                          member_id, answer.get("hash"), rev, mine, compact)
                bad.append(member_id)
        return bad

    async def check_and_alarm(self) -> list[int]:
        """One leader check; raises a CORRUPT alarm for every mismatched member."""
        bad = await self.mismatched_peers() if self.leader() == self.member_id() else []
        for member_id in bad:
            await self.propose(AlarmRequest(ACTIVATE, member_id, CORRUPT))
        return bad

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_and_alarm()
            except EtcdError as exc:
                log.warning("corruption check failed: %s", exc.message)

    async def _initial_check(self) -> None:
        while not self.leader():
            await asyncio.sleep(0.1)
        if await self.mismatched_peers():
            log.critical("member %x found data inconsistency with peers; stopping", self.member_id())
            os.kill(os.getpid(), signal.SIGTERM)
