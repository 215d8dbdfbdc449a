"""Leases: etcd's lessor, as pure logic over the `lease` column family.

Persistent state (written in the same batch as the applied index, so replays are no-ops):

| key                          | value                                   |
| ---------------------------- | --------------------------------------- |
| `b"l"` + id (u64 big-endian) | msgpack `[ttl, remaining_ttl]`          |
| `b"k"` + id + user key       | empty: the key is attached to the lease |

The attachments are maintained by `WriteTxn` as keys are put and deleted. Grant, revoke and checkpoint
are log commands (`apply_*`); keepalive (`renew`) is answered by the primary without a log entry, as in
etcd. Expiry lives only in memory and is computed from a monotonic time the caller passes in: a new
primary (`promote`) gives every lease its full TTL again, or the remaining TTL of its last checkpoint.
Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgpack
from rocksdict import WriteBatch

from etcdpy.storage.errors import LeaseExistsError, LeaseNotFoundError, LeaseTTLTooLargeError
from etcdpy.storage.kv_types import Event
from etcdpy.storage.write_txn import WriteTxn

if TYPE_CHECKING:
    from etcdpy.storage.mvcc import MVCCStore

MAX_LEASE_TTL = 9_000_000_000
FOREVER = math.inf
REVOKE_RETRY_S = 3.0  # etcd's expiredLeaseRetryInterval
_MASK = 0xFFFFFFFFFFFFFFFF


def lease_key(lease_id: int) -> bytes:
    return b"l" + (lease_id & _MASK).to_bytes(8, "big")


def attachment_prefix(lease_id: int) -> bytes:
    return b"k" + (lease_id & _MASK).to_bytes(8, "big")


@dataclass(slots=True)
class LeaseGrantRequest:
    ID: int = 0
    TTL: int = 0


@dataclass(slots=True)
class LeaseRevokeRequest:
    ID: int = 0


@dataclass(slots=True)
class LeaseCheckpointRequest:
    checkpoints: list[tuple[int, int]]  # (lease id, remaining TTL in seconds)


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    remaining: int = 0  # checkpointed remaining TTL in seconds; 0 = none
    expiry: float = FOREVER  # monotonic seconds; FOREVER while not primary
    fresh: bool = True  # granted or promoted but its expiry not yet set (needs a `now`)
    revoke_after: float = 0.0  # an expiry revoke was proposed; do not propose again before this
    checkpointed_at: float = 0.0

    def remaining_s(self, now: float) -> float:
        return self.expiry - now


class Lessor:
    def __init__(self, store: MVCCStore, min_ttl: int = 2) -> None:
        self.store = store
        self.min_ttl = min_ttl
        self.primary = False
        self.leases: dict[int, Lease] = {}
        self._heap: list[tuple[float, int]] = []
        self._fresh: list[int] = []
        self.reload()

    def reload(self) -> None:
        """Read the leases from the store again (it was replaced by a snapshot). The lessor is no longer
        primary afterwards: a primary must `promote` again to restart the clocks."""
        self.primary = False
        self.leases = {}
        self._heap = []
        self._fresh = []
        it = self.store.lease.iter()
        it.seek(b"l")
        while it.valid():
            key = it.key()
            if not key.startswith(b"l"):
                break
            ttl, remaining = msgpack.unpackb(it.value())
            lease_id = int.from_bytes(key[1:9], "big")
            if lease_id >= 1 << 63:
                lease_id -= 1 << 64
            self.leases[lease_id] = Lease(lease_id, ttl, remaining)
            it.next()

    # ------------------------------------------------------------------ primary / time

    def promote(self, now: float) -> None:
        """Become the primary (the Raft leader): every lease gets its remaining or full TTL from now."""
        self.primary = True
        self._heap = []
        self._fresh = []
        for lease in self.leases.values():
            self._start(lease, now)

    def demote(self) -> None:
        self.primary = False
        self._heap = []
        self._fresh = []
        for lease in self.leases.values():
            lease.expiry = FOREVER
            lease.fresh = True

    def settle(self, now: float) -> None:
        """Start the clock of leases granted since the last call (grants are applied without a time)."""
        if not self._fresh:
            return
        fresh, self._fresh = self._fresh, []
        for lease_id in fresh:
            lease = self.leases.get(lease_id)
            if lease is not None and lease.fresh:
                self._start(lease, now)

    def _start(self, lease: Lease, now: float) -> None:
        lease.fresh = False
        lease.revoke_after = 0.0
        lease.checkpointed_at = now
        lease.expiry = now + (lease.remaining if lease.remaining > 0 else lease.ttl)
        heapq.heappush(self._heap, (lease.expiry, lease.id))

    # ------------------------------------------------------------------ log commands

    def apply_grant(self, index: int, lease_id: int, ttl: int) -> Lease:
        if ttl > MAX_LEASE_TTL:
            raise LeaseTTLTooLargeError()
        if lease_id in self.leases:
            raise LeaseExistsError()
        ttl = max(ttl, self.min_ttl)
        lease = Lease(lease_id, ttl)
        batch = WriteBatch(raw_mode=True)
        batch.put(lease_key(lease_id), msgpack.packb([ttl, 0]), self.store.handles["lease"])
        self.store.commit_batch(batch, index, self.store.current_revision)
        self.leases[lease_id] = lease
        if self.primary:
            self._fresh.append(lease_id)
        return lease

    def apply_revoke(self, index: int, lease_id: int) -> list[Event]:
        """Delete the lease and every key attached to it, all in one revision (sorted by key, as etcd)."""
        if lease_id not in self.leases:
            raise LeaseNotFoundError()
        txn = WriteTxn(self.store, index)
        h = self.store.handles["lease"]
        for key in sorted(self.attached_keys(lease_id)):
            prev = txn.get(key)
            if prev is not None:
                txn.delete(prev)
            else:
                txn.batch.delete(attachment_prefix(lease_id) + key, h)
        txn.batch.delete(lease_key(lease_id), h)
        del self.leases[lease_id]
        return txn.end()

    def apply_checkpoint(self, index: int, checkpoints: list[tuple[int, int]]) -> None:
        batch = WriteBatch(raw_mode=True)
        h = self.store.handles["lease"]
        for lease_id, remaining in checkpoints:
            lease = self.leases.get(lease_id)
            if lease is None:
                continue
            lease.remaining = remaining
            batch.put(lease_key(lease_id), msgpack.packb([lease.ttl, remaining]), h)
        self.store.commit_batch(batch, index, self.store.current_revision)

    # ------------------------------------------------------------------ primary-only operations

    def renew(self, lease_id: int, now: float) -> tuple[int, bool]:
        """Keepalive: (granted TTL, whether a checkpoint must be cleared by a log entry)."""
        self.settle(now)
        lease = self.leases.get(lease_id)
        if lease is None or (self.primary and lease.expiry <= now):
            raise LeaseNotFoundError()
        lease.expiry = now + lease.ttl
        lease.revoke_after = 0.0
        heapq.heappush(self._heap, (lease.expiry, lease.id))
        return lease.ttl, lease.remaining > 0

    def time_to_live(self, lease_id: int, now: float) -> tuple[int, int] | None:
        """(remaining seconds truncated as etcd does, granted TTL), or None for an unknown lease."""
        self.settle(now)
        lease = self.leases.get(lease_id)
        if lease is None:
            return None
        if lease.expiry == FOREVER:
            return (lease.remaining or lease.ttl), lease.ttl
        return int(lease.expiry - now), lease.ttl

    def attached_keys(self, lease_id: int) -> list[bytes]:
        prefix = attachment_prefix(lease_id)
        out: list[bytes] = []
        it = self.store.lease.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            out.append(key[len(prefix):])
            it.next()
        return out

    def listing(self) -> list[Lease]:
        """Every lease, soonest expiry first (etcd sorts its listing by expiry)."""
        return sorted(self.leases.values(), key=lambda lease: (lease.expiry, lease.id))

    def expired(self, now: float, limit: int = 1000) -> list[int]:
        """Leases past their expiry that need a revoke proposed; each is returned again only after
        REVOKE_RETRY_S if it is still there (the proposal may have been lost)."""
        if not self.primary:
            return []
        self.settle(now)
        out: list[int] = []
        heap = self._heap
        retry: list[tuple[float, int]] = []
        while heap and heap[0][0] <= now and len(out) < limit:
            expiry, lease_id = heapq.heappop(heap)
            lease = self.leases.get(lease_id)
            if lease is None or lease.expiry != expiry:
                continue  # revoked or renewed since: a stale heap entry
            if lease.revoke_after > now:
                retry.append((expiry, lease_id))
                continue
            lease.revoke_after = now + REVOKE_RETRY_S
            out.append(lease_id)
            retry.append((expiry, lease_id))
        for item in retry:
            heapq.heappush(heap, item)
        return out

    def next_deadline(self) -> float:
        return self._heap[0][0] if self._heap else FOREVER

    def due_checkpoints(self, now: float, interval: float, limit: int = 1000) -> list[tuple[int, int]]:
        """Remaining TTLs worth recording in the log, so a new primary does not restart them in full."""
        if not self.primary:
            return []
        out: list[tuple[int, int]] = []
        for lease in self.leases.values():
            if lease.fresh or lease.expiry == FOREVER or now - lease.checkpointed_at < interval:
                continue
            remaining = math.ceil(lease.expiry - now)
            lease.checkpointed_at = now
            if 0 < remaining < lease.ttl:
                out.append((lease.id, remaining))
                if len(out) >= limit:
                    break
        return out
