"""The server glue: one member's store, log, applier and the requests waiting on them.

A write is validated, encoded with a request id, handed to the log (the local log on one member; Raft
in a cluster), and answered when the applier has applied the committed entry. Reads are answered from
MVCC once every entry committed before the read has been applied, which makes them linearizable.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from typing import Any

from app import commands, errors
from app.applier import Applier
from app.config import Config
from app.errors import EtcdError, server_error
from app.identity import cluster_id, member_id
from app.local_log import TERM, LocalLog
from app.watch_service import WatchService
from storage import txn as txn_eval
from storage.kv_types import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RangeResult,
    TxnRequest,
    TxnResult,
)
from storage.mvcc import MVCCStore
from storage.wal import WAL, WalEntry
from storage.write_txn import WriteTxn

log = logging.getLogger("etcdpy.server")

VERSION = "3.4.23"  # the etcd API version this server speaks (etcd3gw picks its API prefix from it)
CLUSTER_VERSION = "3.4.0"
REQUEST_TIMEOUT = 7.0  # etcd: 5 s plus 2 × election timeout, at the defaults


class EtcdServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        member_dir = os.path.join(config.data_dir, "member")
        self.store = MVCCStore(os.path.join(member_dir, "db"))
        self.applier = Applier(self.store)
        self.wal = WAL(os.path.join(member_dir, "wal"))
        state = self.wal.open()
        replayed = 0
        for entry in state.entries:
            if entry.index > self.store.applied_index:
                self.applier.apply(entry.index, entry.data)
                replayed += 1
        if replayed:
            log.info("replayed %d WAL entries up to index %d", replayed, self.store.applied_index)
        self.log = LocalLog(self.wal, self._on_commit)

        members = config.cluster_members
        ids = {name: member_id(urls, config.initial_cluster_token) for name, urls in members.items()}
        self.member_id = ids[config.name]
        self.cluster_id = cluster_id(list(ids.values()))
        self.raft_term = TERM
        self._header_prefix = {"cluster_id": str(self.cluster_id), "member_id": str(self.member_id)}
        # etcd's request ids: the member id's low 16 bits, then a millisecond clock, then a counter,
        # so ids stay unique across restarts without persisting a counter.
        base = ((self.member_id & 0xFFFF) << 48) | ((int(time.time() * 1000) & 0xFFFFFFFFFF) << 8)
        self._ids = itertools.count(base)
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._compactor: asyncio.Task[None] | None = None
        self.watch_service = WatchService(self)  # watch hub + lessor (app/watch_service.py)

    # -------------------------------------------------------------- headers

    def header(self, revision: int | None = None) -> dict[str, str]:
        rev = self.store.current_revision if revision is None else revision
        return {**self._header_prefix, "revision": str(rev), "raft_term": str(self.raft_term)}

    # -------------------------------------------------------------- writes

    async def propose(self, cmd: commands.Command) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        self.log.propose(commands.encode(request_id, cmd))
        try:
            result = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise server_error(errors.TIMEOUT) from None
        finally:
            self._waiters.pop(request_id, None)
        if isinstance(result, Exception):
            raise result
        return result

    def _on_commit(self, entries: list[WalEntry]) -> None:
        apply = self.applier.apply
        waiters = self._waiters
        for entry in entries:
            request_id, result = apply(entry.index, entry.data)
            future = waiters.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(result)
        if self.applier.compactions_scheduled and self._compactor is None:
            self._compactor = asyncio.get_running_loop().create_task(self._compact())

    async def put(self, req: PutRequest) -> Any:
        txn_eval.check_put(req)
        return await self.propose(req)

    async def delete_range(self, req: DeleteRangeRequest) -> Any:
        txn_eval.check_delete(req)
        return await self.propose(req)

    async def txn(self, req: TxnRequest) -> TxnResult:
        txn_eval.check_txn(req, self.config.max_txn_ops)
        if txn_eval.is_read_only(req):
            # etcd serves read-only txns without a log entry; they still see every applied write.
            view = WriteTxn(self.store, self.store.applied_index)
            result: TxnResult = txn_eval.apply_txn(view, req, self.store.lease_exists)
            return result
        result = await self.propose(req)
        return result

    async def compact(self, req: CompactionRequest) -> Any:
        result = await self.propose(req)
        if req.physical:
            await self._wait_compacted()
        return result

    # -------------------------------------------------------------- reads

    async def range(self, req: RangeRequest) -> RangeResult:
        txn_eval.check_range(req)
        # One member applies each entry as soon as it is committed, so the applied state already holds
        # every write acknowledged before this read: it is linearizable as it stands.
        return self.store.range(req)

    # -------------------------------------------------------------- compaction

    async def _compact(self) -> None:
        """Delete compacted history in bounded steps, yielding to requests between them."""
        try:
            while not self.store.compaction_step(max_keys=1000):
                await asyncio.sleep(0)
        finally:
            self._compactor = None
            self.applier.compactions_scheduled = 0

    async def _wait_compacted(self) -> None:
        while self.store.compaction_pending:
            task = self._compactor
            if task is None:
                self._compactor = task = asyncio.get_running_loop().create_task(self._compact())
            await asyncio.shield(task)

    def resume_background_work(self) -> None:
        """Start work a crash interrupted (a compaction that was scheduled but not finished)."""
        if self.store.compaction_pending and self._compactor is None:
            self._compactor = asyncio.get_running_loop().create_task(self._compact())
        self.watch_service.start()

    def close(self) -> None:
        self.watch_service.stop()
        self.wal.close()
        self.store.close()


__all__ = ["EtcdServer", "EtcdError", "VERSION", "CLUSTER_VERSION"]
