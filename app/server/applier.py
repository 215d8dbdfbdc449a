"""Applies committed log entries to MVCC, in order, each in one write batch with its index.

The result of an entry (or the error it failed with) goes back to whoever waits on its request id; an
entry at or below the store's applied index was applied before a crash and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etcdpy.app.server import commands
from etcdpy.app.server.cluster_version import ClusterVersionSetRequest
from etcdpy.app.server.membership import MemberUpdateRequest
from etcdpy.storage import txn as txn_eval
from etcdpy.storage.errors import LeaseNotFoundError
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


class Applier:
    def __init__(self, store: MVCCStore, lessor: Lessor, on_events: EventSink,
                 on_member_update: MemberUpdater) -> None:
        self.store = store
        self.lessor = lessor
        self.on_events = on_events
        # Membership updates belong to the server (they change its peers), not to MVCC.
        self.on_member_update = on_member_update
        self.compactions_scheduled = 0
        # The cluster version is the server's (it may stop the member); set by the server.
        self.on_cluster_version: Callable[[int, ClusterVersionSetRequest], None] = lambda index, cmd: None
        self.leases_granted = 0  # etcd_debugging_lease_{granted,revoked}_total
        self.leases_revoked = 0

    def apply(self, index: int, data: bytes) -> tuple[int, Any]:
        """Apply one entry; returns (request id, result or the exception the request failed with)."""
        if index <= self.store.applied_index:
            # Re-delivered after a restart: MVCC has it already (and decoding it would cost start-up).
            return commands.request_id(data), None
        request_id, cmd = commands.decode(data)
        try:
            return request_id, self._execute(index, cmd)
        except Exception as exc:  # noqa: BLE001 - the waiting request reports it; the entry is consumed
            self.store.record_applied(index)
            return request_id, exc

    def apply_noop(self, index: int) -> None:
        if index > self.store.applied_index:
            self.store.record_applied(index)

    def _execute(self, index: int, cmd: commands.Command) -> Any:
        store = self.store
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
        txn = WriteTxn(store, index)
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
