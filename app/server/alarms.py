"""Cluster alarms (NOSPACE, CORRUPT) and the space quota that raises NOSPACE.

Alarms are decided by the log: an `AlarmRequest` entry activates or deactivates one (member, type) pair,
and the set is persisted in MVCC's `meta` family in the same batch as the applied index, so every member
has the same alarms and they survive restarts. While an alarm is active the applier refuses what etcd's
capped appliers refuse (`refusal`), which keeps the decision deterministic on every member.

The quota mirrors etcd's `quota.go`: a put, a txn with puts or a lease grant is refused before it is
proposed when the backend size plus its estimated cost would pass `--quota-backend-bytes`; the member
that refused then raises NOSPACE for itself through the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from etcdpy.storage.kv_types import CompactionRequest, DeleteRangeRequest, PutRequest, TxnRequest
from etcdpy.storage.lessor import LeaseGrantRequest, LeaseRevokeRequest
from etcdpy.storage.mvcc import MVCCStore

META_ALARMS = b"alarms"

NONE, NOSPACE, CORRUPT = 0, 1, 2
ALARM_NAMES = {NONE: "NONE", NOSPACE: "NOSPACE", CORRUPT: "CORRUPT"}
GET, ACTIVATE, DEACTIVATE = 0, 1, 2

# etcd's quota.go: the default and the largest recommended quota, and the per-request cost estimates.
DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024
MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024
KV_OVERHEAD = 256
LEASE_OVERHEAD = 64


@dataclass
class AlarmRequest:
    """A log command: GET (served locally, never proposed), ACTIVATE or DEACTIVATE one alarm."""

    action: int
    member_id: int
    alarm: int


@dataclass(frozen=True)
class AlarmMember:
    member_id: int
    alarm: int

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"memberID": str(self.member_id)}
        if self.alarm:
            out["alarm"] = ALARM_NAMES.get(self.alarm, str(self.alarm))
        return out

    def __str__(self) -> str:
        # Go's proto text form, which etcd puts in StatusResponse.errors (note the trailing space).
        text = f"memberID:{self.member_id} "
        if self.alarm:
            text += f"alarm:{ALARM_NAMES.get(self.alarm, str(self.alarm))} "
        return text


class AlarmStore:
    """The active alarms in activation order (the log's order, so the same on every member)."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.active: list[AlarmMember] = []
        self.reload()

    def reload(self) -> None:
        data = self.store.get_meta(META_ALARMS)
        self.active = [AlarmMember(m, a) for m, a in msgpack.unpackb(data)] if data else []

    def get(self, alarm: int = NONE) -> list[AlarmMember]:
        """All alarms (NONE) or those of one type, as etcd's alarm GET filters."""
        return [a for a in self.active if alarm == NONE or a.alarm == alarm]

    def has(self, alarm: int) -> bool:
        return any(a.alarm == alarm for a in self.active)

    def apply(self, index: int, req: AlarmRequest) -> list[AlarmMember]:
        """Apply an activate/deactivate entry; returns the alarms changed (etcd's AlarmResponse)."""
        member = AlarmMember(req.member_id, req.alarm)
        changed: list[AlarmMember] = []
        if req.action == ACTIVATE:
            if member not in self.active:
                self.active.append(member)
            changed = [member]
        elif req.action == DEACTIVATE and member in self.active:
            self.active.remove(member)
            changed = [member]
        else:
            changed = self.get(req.alarm) if req.action == GET else []
        packed = msgpack.packb([[a.member_id, a.alarm] for a in self.active])
        self.store.commit_meta(index, {META_ALARMS: packed})
        return changed


def quota_bytes(configured: int) -> int:
    """etcd's rule: 0 means the default; a negative quota disables the check (returns 0)."""
    if configured < 0:
        return 0
    return configured or DEFAULT_QUOTA_BYTES


def cost(cmd: Any) -> int:
    """etcd's cost estimate of a request against the quota; 0 for anything that does not add data."""
    if isinstance(cmd, PutRequest):
        return KV_OVERHEAD + len(cmd.key) + len(cmd.value)
    if isinstance(cmd, TxnRequest):
        success = sum(cost(op) for op in cmd.success if isinstance(op, PutRequest))
        failure = sum(cost(op) for op in cmd.failure if isinstance(op, PutRequest))
        return max(success, failure)
    if isinstance(cmd, LeaseGrantRequest):
        return LEASE_OVERHEAD
    return 0


def is_quota_checked(cmd: Any) -> bool:
    """The requests etcd's quota servers check: put, txn, lease grant."""
    return isinstance(cmd, (PutRequest, TxnRequest, LeaseGrantRequest))


def refusal(alarms: AlarmStore, cmd: Any) -> str | None:
    """Which alarm refuses this command while active ("CORRUPT", "NOSPACE"), or None.

    CORRUPT stops every change of the keyspace and leases (etcd's applierV3Corrupt); NOSPACE stops what
    adds data: puts, txns with puts, lease grants (applierV3Capped). Deletes and compaction go on.
    """
    if not alarms.active:
        return None
    if alarms.has(CORRUPT) and isinstance(
            cmd, (PutRequest, DeleteRangeRequest, TxnRequest, CompactionRequest, LeaseGrantRequest,
                  LeaseRevokeRequest)):
        return "CORRUPT"
    if alarms.has(NOSPACE) and (isinstance(cmd, (PutRequest, LeaseGrantRequest))
                                or (isinstance(cmd, TxnRequest) and cost(cmd) > 0)):
        return "NOSPACE"
    return None
