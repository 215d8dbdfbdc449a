"""Distributed locks and leader elections on the keyspace: etcd's v3lock and v3election services.

Both are built as etcd builds them (clientv3/concurrency), on KV and leases only, through `EtcdServer`'s
public txn/range/delete_range (so whatever checks those apply, permissions included, apply here too):

- a contender writes the key `<name>/<lease id in hex>` with its lease (a txn: create it if absent,
  otherwise read it back), and its key's create revision is its place in the queue;
- it holds the lock (is the leader) once every key under the name with a smaller create revision is
  gone: it waits for the deletion of the newest such key, then looks again (etcd's waitDeletes), so
  each contender watches one predecessor and a release wakes one waiter, not all of them.

Waiting costs no polling: it rides on the watch hub, with watchers on this member that start at the
revision the last read saw (nothing in between can be missed). Beyond etcd, a waiter also watches its
own key: when its lease expires or is revoked the key is deleted and the wait ends at once with an
error (etcd 3.4 keeps waiting and may answer with a key that no longer exists). A wait that is
cancelled (the client went away, a deadline) deletes its own key, as etcd's ctx-cancel path does, so no
key is left queued behind others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from etcdpy.app import errors
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.app.server.watch_service import Session
from etcdpy.storage.encoding import prefix_end  # a prefix ends in '/', so it has an end
from etcdpy.storage.errors import CompactedError, LeaseNotFoundError
from etcdpy.storage.kv_types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EventType,
    KeyValue,
    PutRequest,
    RangeRequest,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnRequest,
)
from etcdpy.storage.watch_hub import CompactedMsg, EventsMsg, Watcher

log = logging.getLogger("etcdpy.coordination")


def contender_key(name: bytes, lease: int) -> bytes:
    """`<name>/<lease in hex>`, as Go's `%x` prints an int64 (a negative one with a minus sign)."""
    return name + b"/" + format(lease, "x").encode()


def _created_at(key: bytes, revision: int) -> Compare:
    return Compare(CompareResult.EQUAL, CompareTarget.CREATE, key, union="create_revision", operand=revision)


def _first_created(prefix: bytes) -> RangeRequest:
    """etcd's WithFirstCreate: the key under the prefix with the smallest create revision."""
    return RangeRequest(prefix, prefix_end(prefix), limit=1, sort_order=SortOrder.ASCEND,
                        sort_target=SortTarget.CREATE)


@dataclass(frozen=True, slots=True)
class Held:
    """A lock held or an election won: the contender's key, its create revision, and the revision of
    the header etcd answers with."""

    key: bytes
    create_revision: int
    header_revision: int


class _KeyDeleted(Exception):
    """The watched key was deleted."""


class _Waits(Session):
    """One hub stream for one waiter's watchers; a server shutdown ends its wait with etcd's error."""

    def __init__(self, server: EtcdServer) -> None:
        self.service = server.watch_service
        self.hub = self.service.hub
        self.ready = asyncio.Event()
        self.stream = self.hub.open_stream(wakeup=self.ready.set)
        self.stopping = False
        self._ids = 0
        self.service.sessions.add(self)

    def watch(self, key: bytes, end: bytes = b"", start_rev: int = 0) -> Watcher:
        """A watcher from `start_rev` (0: from the next revision on this member)."""
        self._ids += 1
        return self.hub.watch(self.stream, self._ids, key, end, start_rev)

    def cancel(self, w: Watcher) -> None:
        self.hub.cancel(w)

    async def messages(self) -> list[object]:
        while True:
            if self.stopping or self.service.shutting_down:
                raise errors.server_error(errors.STOPPED)
            out = self.stream.drain()
            if out:
                return out
            await self.ready.wait()
            self.ready.clear()

    def shutdown(self) -> None:
        self.stopping = True
        self.ready.set()

    def close(self) -> None:
        self.service.sessions.discard(self)
        self.hub.close_stream(self.stream)


class Coordinator:
    """Locks and elections for one member (stateless: everything lives in the keyspace)."""

    def __init__(self, server: EtcdServer) -> None:
        self.server = server
        self._cleanups: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lock (etcd's Mutex)

    async def lock(self, name: bytes, lease: int) -> Held:
        """Block until the lock `name` is held under `lease`; answers the owned key."""
        prefix = name + b"/"
        key = contender_key(name, lease)
        res = await self.server.txn(TxnRequest(
            compare=[_created_at(key, 0)],
            success=[PutRequest(key, b"", lease), _first_created(prefix)],
            failure=[RangeRequest(key), _first_created(prefix)],
        ))
        my_rev = res.revision if res.succeeded else _range(res.responses[0]).kvs[0].create_revision
        owner = _range(res.responses[1]).kvs
        if not owner or owner[0].create_revision == my_rev:
            return Held(key, my_rev, res.revision)
        try:
            await self._wait_predecessors(prefix, my_rev, key)
        except _KeyDeleted:
            raise errors.server_error(errors.MUTEX_SESSION_EXPIRED) from None
        except BaseException:
            await self._release(key, my_rev)
            raise
        # The key must still be ours (etcd's final check; its header is the one etcd answers with).
        try:
            got = await self.server.range(RangeRequest(key))
        except BaseException:
            await self._release(key, my_rev)  # as etcd's Mutex does when this read fails
            raise
        if not got.kvs or got.kvs[0].create_revision != my_rev:
            raise errors.server_error(errors.MUTEX_SESSION_EXPIRED)
        return Held(key, my_rev, got.revision)

    async def unlock(self, key: bytes) -> int:
        """Delete the lock key (whoever holds it, as etcd does); the header revision."""
        res = await self.server.delete_range(DeleteRangeRequest(key))
        return int(res.revision)

    # ------------------------------------------------------------------ election (etcd's Election)

    async def campaign(self, name: bytes, value: bytes, lease: int) -> Held:
        """Block until elected leader of `name` under `lease`, with `value` proclaimed."""
        prefix = name + b"/"
        key = contender_key(name, lease)
        res = await self.server.txn(TxnRequest(
            compare=[_created_at(key, 0)],
            success=[PutRequest(key, value, lease)],
            failure=[RangeRequest(key)],
        ))
        my_rev = res.revision
        if not res.succeeded:
            kv = _range(res.responses[0]).kvs[0]
            my_rev = kv.create_revision
            if kv.value != value:
                try:
                    await self.proclaim(key, my_rev, lease, value)
                except BaseException:
                    await self._release(key, my_rev)
                    raise
        try:
            await self._wait_predecessors(prefix, my_rev, key)
        except _KeyDeleted:
            # The lease ended while waiting; etcd 3.4 would go on and answer "elected" for a key that is
            # gone. Answer what a campaign with that lease gets now.
            raise LeaseNotFoundError() from None
        except BaseException:
            await self._release(key, my_rev)
            raise
        # etcd answers with the header of the txn that queued the key, however long it waited.
        return Held(key, my_rev, res.revision)

    async def proclaim(self, key: bytes, rev: int, lease: int, value: bytes) -> int:
        """Put a new value on the leader key if it is still the one created at `rev`."""
        res = await self.server.txn(TxnRequest(
            compare=[_created_at(key, rev)], success=[PutRequest(key, value, lease)]))
        if not res.succeeded:
            raise errors.server_error(errors.ELECTION_NOT_LEADER)
        return res.revision

    async def resign(self, key: bytes, rev: int) -> int:
        """Delete the leader key if it is still the one created at `rev` (no error otherwise)."""
        res = await self.server.txn(TxnRequest(
            compare=[_created_at(key, rev)], success=[DeleteRangeRequest(key)]))
        return res.revision

    async def leader(self, name: bytes) -> tuple[KeyValue, int]:
        """The current leader's key-value and the read's revision; etcd's error when there is none."""
        res = await self.server.range(_first_created(name + b"/"))
        if not res.kvs:
            raise errors.server_error(errors.ELECTION_NO_LEADER)
        return res.kvs[0], res.revision

    async def leader_at(self, name: bytes, revision: int) -> KeyValue | None:
        """The leader as of an earlier revision (None without one, or when it was compacted)."""
        req = _first_created(name + b"/")
        req.revision = revision
        try:
            res = await self.server.range(req)
        except CompactedError:
            return None
        return res.kvs[0] if res.kvs else None

    async def observe(self, name: bytes) -> AsyncIterator[tuple[KeyValue, int]]:
        """The leader now (or the first one to come), then every change: (leader kv, header revision).

        As etcd's Observe: each proclamation of the current leader, and each new leader once the
        previous key is deleted; an interval without a leader is not reported."""
        prefix = name + b"/"
        end = prefix_end(prefix)
        waits = _Waits(self.server)
        try:
            while True:
                res = await self.server.range(_first_created(prefix))
                if res.kvs:
                    kv, rev = res.kvs[0], res.revision
                else:
                    found = await self._first_put(waits, prefix, end, res.revision + 1)
                    if found is None:
                        continue  # history was compacted under the watcher: look again
                    kv, rev = found
                yield kv, rev
                w = waits.watch(kv.key, b"", rev + 1)
                deleted = False
                while not deleted:
                    for msg in await waits.messages():
                        if isinstance(msg, CompactedMsg):
                            deleted = True  # the read that follows tells what became of the key
                            break
                        if not isinstance(msg, EventsMsg):
                            continue
                        for ev in msg.batch.events:
                            if ev.type == EventType.DELETE:
                                deleted = True
                                break
                            yield ev.kv, msg.revision
                        if deleted:
                            break
                waits.cancel(w)
        finally:
            waits.close()

    async def _first_put(self, waits: _Waits, prefix: bytes, end: bytes,
                         start_rev: int) -> tuple[KeyValue, int] | None:
        w = waits.watch(prefix, end, start_rev)
        try:
            while True:
                for msg in await waits.messages():
                    if isinstance(msg, CompactedMsg):
                        return None
                    if isinstance(msg, EventsMsg):
                        for ev in msg.batch.events:
                            if ev.type == EventType.PUT:
                                return ev.kv, ev.kv.mod_revision
        finally:
            waits.cancel(w)

    # ------------------------------------------------------------------ waiting

    async def _wait_predecessors(self, prefix: bytes, my_rev: int, my_key: bytes) -> None:
        """Return once no key under `prefix` created before `my_rev` is left (etcd's waitDeletes);
        raise _KeyDeleted if `my_key` (created at `my_rev`) is deleted first."""
        waits = _Waits(self.server)
        try:
            # Watch our own key before reading it, with no await in between: a deletion that comes
            # after the read is seen by the watcher.
            own = waits.watch(my_key)
            mine = await self.server.range(RangeRequest(my_key, serializable=True))
            if not mine.kvs or mine.kvs[0].create_revision != my_rev:
                raise _KeyDeleted()
            # This member applied our own write, so every key created before it is visible here:
            # serializable reads suffice, and each watcher starts right after the read it follows.
            last = RangeRequest(prefix, prefix_end(prefix), limit=1, sort_order=SortOrder.DESCEND,
                                sort_target=SortTarget.CREATE, max_create_revision=my_rev - 1,
                                serializable=True)
            while True:
                res = await self.server.range(last)
                if not res.kvs:
                    return
                before = waits.watch(res.kvs[0].key)
                await self._until_deleted(waits, before, own)
                waits.cancel(before)
        finally:
            waits.close()

    @staticmethod
    async def _until_deleted(waits: _Waits, target: Watcher, own: Watcher) -> None:
        while True:
            for msg in await waits.messages():
                if isinstance(msg, CompactedMsg):
                    return  # cannot happen to a watcher that starts synced; the caller reads again
                if not isinstance(msg, EventsMsg):
                    continue
                if any(ev.type == EventType.DELETE for ev in msg.batch.events):
                    if msg.watcher is own:
                        raise _KeyDeleted()
                    if msg.watcher is target:
                        return

    async def _release(self, key: bytes, rev: int) -> None:
        """Delete our key if it is still the one we queued (the ctx-cancel cleanup of etcd's Mutex and
        Election), even when the waiter itself is being cancelled."""
        task = asyncio.get_running_loop().create_task(self._delete_own(key, rev))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            pass  # the cleanup goes on in its task; the caller re-raises its own cancellation
        except Exception:  # noqa: BLE001 - the key still expires with its lease
            log.warning("could not delete abandoned key %r", key, exc_info=True)

    async def _delete_own(self, key: bytes, rev: int) -> None:
        await self.server.txn(TxnRequest(compare=[_created_at(key, rev)], success=[DeleteRangeRequest(key)]))


def _range(res: object) -> RangeResult:
    assert isinstance(res, RangeResult)
    return res
