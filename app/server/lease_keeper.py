"""The member's lessor and the background work that drives it.

The lessor (storage/lessor.py) is pure: grants, revokes and checkpoints are applied from the log, and
expiry is computed from a time passed in. This keeper owns the one `Lessor` of a member and the loops
around it: while this member leads (it is then the lessor's primary), every expired lease gets a revoke
proposal (checked every 500 ms, as etcd does), and remaining TTLs are checkpointed through the log every
5 minutes so a new primary continues them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from etcdpy.storage.lessor import LeaseCheckpointRequest, LeaseRevokeRequest, Lessor
from etcdpy.storage.mvcc import MVCCStore

log = logging.getLogger("etcdpy.lease")

LEASE_REVOKE_INTERVAL_S = 0.5
LEASE_CHECKPOINT_INTERVAL_S = 300.0  # etcd's default lease checkpoint interval

Propose = Callable[[Any], Awaitable[Any]]


def min_lease_ttl(election_timeout_ms: int, heartbeat_ms: int) -> int:
    """etcd's minimum lease TTL: 1.5 election timeouts (in heartbeat ticks), rounded up to seconds."""
    ticks = max(1, election_timeout_ms // max(1, heartbeat_ms))
    return max(1, math.ceil((3 * ticks) // 2 * heartbeat_ms / 1000))


class LeaseKeeper:
    def __init__(self, store: MVCCStore, min_ttl: int, propose: Propose,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lessor = Lessor(store, min_ttl)
        self.now = clock  # monotonic seconds: the lessor's expiry times are on this clock
        self.min_ttl = min_ttl
        self.checkpoint_interval = LEASE_CHECKPOINT_INTERVAL_S
        self._propose = propose
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def lead(self, leading: bool) -> None:
        """The lessor acts as primary (expires leases, answers keepalives) only while this member leads."""
        if leading:
            self.lessor.promote(self.now())
        else:
            self.lessor.demote()

    def reload(self) -> None:
        """The store was replaced by a snapshot: re-read the leases, keeping the primary role."""
        primary = self.lessor.primary
        self.lessor.reload()
        if primary:
            self.lessor.promote(self.now())

    async def _loop(self) -> None:
        last_checkpoint = self.now()
        while True:
            await asyncio.sleep(LEASE_REVOKE_INTERVAL_S)
            now = self.now()
            for lease_id in self.lessor.expired(now):
                self.spawn_proposal(LeaseRevokeRequest(lease_id))
            if now - last_checkpoint >= min(self.checkpoint_interval, 60.0):
                last_checkpoint = now
                due = self.lessor.due_checkpoints(now, self.checkpoint_interval)
                if due:
                    await self._propose_quietly(LeaseCheckpointRequest(due))

    def spawn_proposal(self, cmd: Any) -> None:
        """Propose `cmd` in the background, ignoring failures (checkpoints, expiry revokes)."""
        asyncio.get_running_loop().create_task(self._propose_quietly(cmd))

    async def _propose_quietly(self, cmd: Any) -> None:
        try:
            await self._propose(cmd)
        except Exception as exc:  # noqa: BLE001 - a lost revoke is proposed again after a retry interval
            log.debug("background proposal %r failed: %s", cmd, exc)
