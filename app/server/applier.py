"""Applies committed log entries to MVCC, in order, each in one write batch with its index.

The result of an entry (or the etcd error it failed with) goes back to whoever waits on its request id;
an entry at or below the store's applied index was applied before a crash and is skipped. Any other
exception stops the member without marking the entry applied, as etcd panics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etcdpy.app import errors
from etcdpy.app.errors import EtcdError
from etcdpy.app.server import commands
from etcdpy.app.server.alarms import AlarmRequest, AlarmStore, refusal
from etcdpy.app.server.auth import AuthService, check_command
from etcdpy.app.server.cluster_version import ClusterVersionSetRequest
from etcdpy.app.server.commands import AuthRequest, Stamped
from etcdpy.app.server.downgrade import DowngradeInfoSetRequest, DowngradeState
from etcdpy.app.server.membership import MemberUpdateRequest
from etcdpy.storage import txn as txn_eval
from etcdpy.storage.errors import LeaseNotFoundError, StorageError, UserEmptyError
from etcdpy.storage.kv_types import (
    CompactionRequest,
    CompactionResult,
    DeleteRangeRequest,
    Event,
    PutRequest,
    TxnRequest,
)
from etcdpy.storage.lessor import LeaseCheckpointRequest, LeaseGrantRequest, LeaseRevokeRequest, Lessor
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn

EventSink = Callable[[list[Event], int], None]
MemberUpdater = Callable[[int, MemberUpdateRequest], Any]


class ApplyFailed(Exception):
    """Applying a committed entry raised something other than an etcd apply error: the member must
    stop (the Raft loop exits the process) with the entry not marked applied, so a restart retries it."""

    def __init__(self, index: int) -> None:
        super().__init__(f"applying entry {index} failed")
        self.index = index


class Applier:
    def __init__(self, store: MVCCStore, lessor: Lessor, on_events: EventSink,
                 on_member_update: MemberUpdater, auth: AuthService, alarms: AlarmStore | None = None,
                 downgrade: DowngradeState | None = None,
                 on_cluster_version: Callable[[int, ClusterVersionSetRequest], None] | None = None) -> None:
        self.store = store
        # Alarms and the downgrade job are cluster state decided by the log, like membership.
        self.alarms = alarms if alarms is not None else AlarmStore(store)
        self.downgrade = downgrade if downgrade is not None else DowngradeState(store)
        self.lessor = lessor
        self.auth = auth
        self.on_events = on_events
        # Membership updates belong to the server (they change its peers), not to MVCC.
        self.on_member_update = on_member_update
        # The cluster version is the server's (it decides whether this member may keep running).
        self.on_cluster_version = on_cluster_version or (lambda index, cmd: None)
        self.compactions_scheduled = 0
        # The cluster version is the server's (it may stop the member); set by the server.
        self.leases_granted = 0  # etcd_debugging_lease_{granted,revoked}_total
        self.leases_revoked = 0

    def apply(self, index: int, data: bytes) -> tuple[int, Any]:
        """Apply one entry; returns (request id, result or the exception the request failed with)."""
        if index <= self.store.applied_index:
            # Re-delivered after a restart: MVCC has it already (and decoding it would cost start-up).
            return commands.request_id(data), None
        request_id, cmd = commands.decode(data)
        inner = cmd.inner if isinstance(cmd, Stamped) else cmd
        if not isinstance(inner, PutRequest):
            # Only a put may share the open write group: anything else may read what it holds.
            self.store.flush_group()
        try:
            return request_id, self._execute(index, cmd)
        except (StorageError, EtcdError) as exc:
            # etcd's apply errors (lease not found, compacted, an alarm refusing the write, ...): the
            # waiting request reports it and the entry is consumed, having changed nothing.
            self.store.record_applied(index)
            return request_id, exc
        except Exception as exc:
            # Anything else is a bug with the entry's effect unknown. etcd panics; marking the entry
            # applied would let this member (and only this one) skip it for good, so stop instead.
            raise ApplyFailed(index) from exc

    def apply_noop(self, index: int) -> None:
        if index > self.store.applied_index:
            self.store.record_applied(index)

    def _execute(self, index: int, cmd: commands.Command) -> Any:
        """Check a client command against the auth state at this index, then run it."""
        if isinstance(cmd, Stamped):
            inner = cmd.inner
            if isinstance(inner, AuthRequest):
                return self.auth.apply(index, inner, cmd.username)
            if self.auth.store.enabled:
                check_command(self.auth.store, cmd.username, cmd.auth_revision, inner,
                              self.lessor.attached_keys)
            return self._run(index, inner)
        if isinstance(cmd, AuthRequest):
            return self.auth.apply(index, cmd, None)
        if self.auth.store.enabled and isinstance(cmd, (PutRequest, DeleteRangeRequest, TxnRequest)):
            # Proposed without a user (before auth was enabled, or without a token): etcd's answer.
            raise UserEmptyError()
        return self._run(index, cmd)

    def _run(self, index: int, cmd: commands.Command) -> Any:
        store = self.store
        refused = refusal(self.alarms, cmd)
        if refused is not None:
            # etcd's capped and corrupt appliers: the alarm state at this index decides, on every member.
            raise EtcdError(*(errors.CORRUPT if refused == "CORRUPT" else errors.NO_SPACE))
        if isinstance(cmd, AlarmRequest):
            return self.alarms.apply(index, cmd)
        if isinstance(cmd, DowngradeInfoSetRequest):
            self.downgrade.apply(index, cmd)
            return None
        if isinstance(cmd, CompactionRequest):
            store.schedule_compaction(cmd.revision, index)
            self.compactions_scheduled += 1
            return CompactionResult(store.current_revision)
        if isinstance(cmd, (LeaseGrantRequest, LeaseRevokeRequest, LeaseCheckpointRequest)):
            return self._execute_lease(index, cmd)
        if isinstance(cmd, MemberUpdateRequest):
            return self.on_member_update(index, cmd)
        if isinstance(cmd, ClusterVersionSetRequest):
            self.on_cluster_version(index, cmd)
            return None
        txn = WriteTxn(store, index, grouped=isinstance(cmd, PutRequest))
        if isinstance(cmd, PutRequest):
            if cmd.lease and not store.lease_exists(cmd.lease):
                raise LeaseNotFoundError()
            result: Any = txn_eval.apply_put(txn, cmd)
        elif isinstance(cmd, DeleteRangeRequest):
            result = txn_eval.apply_delete(txn, cmd)
        elif isinstance(cmd, TxnRequest):
            result = txn_eval.apply_txn(txn, cmd, store.lease_exists)
        else:
            raise TypeError(f"unknown command {cmd!r}")
        events = txn.end()
        if events:
            self.on_events(events, store.current_revision)
        return result

    def _execute_lease(self, index: int,
                       cmd: LeaseGrantRequest | LeaseRevokeRequest | LeaseCheckpointRequest) -> Any:
        if isinstance(cmd, LeaseGrantRequest):
            lease = self.lessor.apply_grant(index, cmd.ID, cmd.TTL)
            self.leases_granted += 1
            return lease
        if isinstance(cmd, LeaseCheckpointRequest):
            self.lessor.apply_checkpoint(index, cmd.checkpoints)
            return None
        events = self.lessor.apply_revoke(index, cmd.ID)
        self.leases_revoked += 1
        if events:
            self.on_events(events, self.store.current_revision)
        return self.store.current_revision
