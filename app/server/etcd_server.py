"""The server glue: one member's store, Raft node, applier and the requests waiting on them.

A write is validated, encoded with a request id and proposed to Raft (a follower's proposal is
forwarded to the leader by Raft itself); it is answered when this member applies the committed entry.
Linearizable reads wait for a ReadIndex round (batched across concurrent readers) and for the applied
index to reach it; serializable reads answer from local state at once. Every member, a lone one too,
runs through Raft, as etcd does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any

import msgpack

from etcdpy.app import errors
from etcdpy.app.config import Config
from etcdpy.app.errors import EtcdError, server_error
from etcdpy.app.logs import event, go_duration
from etcdpy.app.server import commands
from etcdpy.app.server.alarms import (
    ACTIVATE,
    NOSPACE,
    AlarmRequest,
    AlarmStore,
    cost,
    is_quota_checked,
    quota_bytes,
)
from etcdpy.app.server.applier import Applier
from etcdpy.app.server.auth import AuthService
from etcdpy.app.server.cluster_version import (
    ClusterVersion,
    ClusterVersionSetRequest,
    check_runs_in,
    monitor_versions,
)
from etcdpy.app.server.compactor import make_policy, run_compactor
from etcdpy.app.server.corruption import CorruptionChecker
from etcdpy.app.server.downgrade import DowngradeState
from etcdpy.app.server.env import DEFAULT_ENV, PeerLink, ServerEnv
from etcdpy.app.server.identity import cluster_id, member_id
from etcdpy.app.server.lease_keeper import LeaseKeeper, min_lease_ttl
from etcdpy.app.server.membership import Member, Membership, MemberUpdateRequest
from etcdpy.app.server.metrics import PROPOSALS_FAILED, SLOW_APPLIES, Metrics, TimedWalFiles
from etcdpy.app.server.proposals import (
    SWEEP_SECONDS,
    PendingProposals,
    Settle,
    settle_all,
    settle_future,
    settle_one,
)
from etcdpy.app.server.raft_node import NodeCallbacks, RaftNode, decode_snapshot_record
from etcdpy.app.server.wal_aio import WalAioSync
from etcdpy.app.server.watch_service import WatchService
from etcdpy.raft import ConfChange, ConfChangeType, Entry, EntryType, Peer, Snapshot, conf_change_from_entry
from etcdpy.storage import db_snapshot
from etcdpy.storage import txn as txn_eval
from etcdpy.storage.errors import CompactedError, StorageError
from etcdpy.storage.kv_types import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RangeResult,
    TxnRequest,
    TxnResult,
)
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.wal import SEGMENT_BYTES, WAL
from etcdpy.storage.wal_files import OS_FILES, WalFiles
from etcdpy.storage.write_txn import WriteTxn

log = logging.getLogger("etcdpy.server")

VERSION = "3.4.23"  # the etcd API version this server speaks (etcd3gw picks its API prefix from it)
CLUSTER_VERSION = "3.4.0"
REQUEST_TIMEOUT = 7.0  # etcd: 5 s plus 2 × election timeout, at the defaults
_TIMED_OUT = object()  # a proposal's (or read index's) result when REQUEST_TIMEOUT passed first
MAX_APPLY_GAP = 5000  # etcd's maxGapBetweenApplyAndCommitIndex
PROPOSAL_DROPPED = ("raft proposal dropped", errors.UNKNOWN)
WARN_APPLY_S = 0.1  # etcd's warningApplyDuration: an apply slower than this is logged and counted
# Zeros the WAL writes ahead of its records at a time (storage/wal.py): one slower sync per this many
# bytes of log, and every other sync changes no file size.
WAL_PREALLOCATE = 1024 * 1024


class DataDirError(Exception):
    """The data directory is inconsistent; the member must not start on it."""


class EtcdServer:
    def __init__(self, config: Config, *, joined: dict[str, Any] | None = None,
                 wal_files: WalFiles = OS_FILES, wal_segment_bytes: int = SEGMENT_BYTES,
                 peer_ssl: ssl.SSLContext | None = None, env: ServerEnv = DEFAULT_ENV) -> None:
        """Open the member's data; `joined` is the cluster as fetched from peers by a joining member;
        `wal_files` is the disk under the WAL (tests substitute one that loses power or fails);
        `peer_ssl` dials other members' https peer URLs (app/tls.py; None: plain HTTP only); `env` is
        the world around the member (clocks, randomness, sync thread, peers; the simulation's own)."""
        self.config = config
        self.peer_ssl = peer_ssl
        self.env = env
        self.member_dir = os.path.join(config.data_dir, "member")
        # The version this member announces (overridable to test mixed-version clusters).
        self.version = config.experimental_advertise_version or VERSION
        self.metrics = Metrics(self)
        self.warn_apply_s = WARN_APPLY_S
        # The WAL first: a damaged log refuses the start (WalCorruptError) before the database is opened,
        # so every file is left as it was for inspection or restore.
        self.wal_files = TimedWalFiles(wal_files, self._slow_fsync)
        self.wal = WAL(os.path.join(self.member_dir, "wal"), wal_segment_bytes, files=self.wal_files,
                       preallocate=WAL_PREALLOCATE)
        state = self.wal.open()
        # The real disk's WAL syncs go through kernel AIO where it can (server/wal_aio.py).
        self._wal_aio = WalAioSync(self.wal, self.wal_files.observe_sync) if wal_files is OS_FILES else None
        self.store = MVCCStore(os.path.join(self.member_dir, "db"))
        self.store.on_commit = self.metrics.backend_commit.observe
        self._install_pending_snapshot(state.snapshot_index)
        self.membership = Membership(self.store)
        self.cluster_version = ClusterVersion(self.store)
        self.watch_service = WatchService(self.store, config.watch_progress_notify_interval_s)
        self.leases = LeaseKeeper(
            self.store, min_lease_ttl(config.election_timeout, config.heartbeat_interval), self.propose,
            clock=env.monotonic)
        self.alarms = AlarmStore(self.store)
        self.downgrade = DowngradeState(self.store)
        self.auth = AuthService(self.store, config, self.propose, self.linearizable_barrier)
        self.applier = Applier(self.store, self.leases.lessor, self.watch_service.hub.notify,
                               self._apply_member_update, self.auth, self.alarms, self.downgrade,
                               self._apply_cluster_version)
        # etcd refuses to start a member whose version is below the cluster version its data records.
        check_runs_in(self.version, self.cluster_version.value, self.downgrade)
        self.quota = quota_bytes(config.quota_backend_bytes)  # 0: no quota (a negative flag)
        self.compaction_policy = make_policy(config.auto_compaction_mode, config.auto_compaction_retention)
        self.corruption = CorruptionChecker(config, self.store, self.membership, lambda: self.member_id,
                                            lambda: self.node.leader, self.propose, peer_ssl)
        self._background: list[asyncio.Task[None]] = []
        durable = max(self.wal.last_index, decode_snapshot_record(state.snapshot_data)[1])
        if self.store.applied_index > durable:
            # The log lost entries the database had applied (a disk that dropped synced data, or a WAL
            # from an older copy). New entries would reuse those indexes and be skipped as applied:
            # refuse to start rather than acknowledge writes that never take effect.
            raise DataDirError(
                f"the WAL ends at index {durable} but the database has applied index "
                f"{self.store.applied_index}: the log lost committed entries; restore this member "
                "from a snapshot or remove it and add it back"
            )

        bootstrap: list[Peer] | None = None
        if state.metadata:
            self.member_id, self.cluster_id = msgpack.unpackb(state.metadata)
        elif joined is not None:
            self.member_id, self.cluster_id = joined["member_id"], joined["cluster_id"]
            self.wal.save_metadata(msgpack.packb([self.member_id, self.cluster_id]))
        else:
            bootstrap = self._bootstrap_peers()
            self.wal.save_metadata(msgpack.packb([self.member_id, self.cluster_id]))
        self.wal.sync()
        if not self.membership.cluster_id:
            self.membership.set_cluster_id(self.cluster_id, self.store.applied_index)

        self._header_prefix = {"cluster_id": str(self.cluster_id), "member_id": str(self.member_id)}
        # etcd's request ids: the member id's low 16 bits, then a millisecond clock, then a counter,
        # so ids stay unique across restarts without persisting a counter.
        base = ((self.member_id & 0xFFFF) << 48) | ((int(env.wall() * 1000) & 0xFFFFFFFFFF) << 8)
        self._ids = itertools.count(base)
        self._pending = PendingProposals(REQUEST_TIMEOUT, env.monotonic)
        self._compactor: asyncio.Task[None] | None = None
        self._incoming_snapshots: dict[int, str] = {}
        self._exiting = False
        self._leader_changes = 0
        self._version_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # set by `start`
        # Asks a member's peer URL for its version (set by whoever owns the peer HTTP client).
        self.fetch_version: Any = None

        heartbeat = max(1, config.heartbeat_interval)
        self.node = RaftNode(
            self.member_id, self.wal, state,
            NodeCallbacks(
                apply=self._apply_entries,
                send=self._send,
                snapshot_applied=self._snapshot_applied,
                install_snapshot=self._install_snapshot,
                make_durable=lambda: self.store.db.flush_wal(True),
                on_leader_change=self._on_leader_change,
                dropped=self._on_dropped,
            ),
            tick_ms=heartbeat,
            election_ticks=max(2, config.election_timeout // heartbeat),
            snapshot_count=config.snapshot_count,
            bootstrap=bootstrap,
            rng=env.rng,
            run_io=env.run_io,
            fatal=env.fatal,
            catch_up_entries=max(1, config.experimental_snapshot_catchup_entries),
            waiting=self._pending.__len__,
            sync_wal=self._wal_aio.start if self._wal_aio is not None else None,
        )
        self.transport: PeerLink | None = None

    def _bootstrap_peers(self) -> list[Peer]:
        token = self.config.initial_cluster_token
        members = [
            Member(member_id(urls, token), name, sorted(urls), [], False)
            for name, urls in self.config.cluster_members.items()
        ]
        self.member_id = next(m.id for m in members if m.name == self.config.name)
        self.cluster_id = cluster_id([m.id for m in members])
        return [Peer(m.id, msgpack.packb([0, m.pack()])) for m in sorted(members, key=lambda m: m.id)]

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start Raft, the peer transport and background work (needs the running loop)."""
        self.transport = self.env.transport(
            self.member_id,
            unreachable=self.node.report_unreachable,
            snapshot_done=self.node.report_snapshot,
            dump_snapshot=lambda path: db_snapshot.dump_to_file(self.store.families, path),
            removed=self._removed,
            ssl=self.peer_ssl,
            local_url=self.config.initial_advertise_peer_urls[0] if self.config.initial_advertise_peer_urls
            else "",
        )
        self._refresh_peers()
        self._loop = loop = asyncio.get_running_loop()
        self.node.start()
        if self.store.compaction_pending and self._compactor is None:
            self._compactor = loop.create_task(self._compact())
        self.watch_service.start()
        self.leases.start()
        loop.create_task(self._publish_attributes())
        if not self._background:
            self._background.append(loop.create_task(self._expire_proposals()))
            if self.compaction_policy is not None:
                self._background.append(loop.create_task(run_compactor(
                    self.compaction_policy, self.env.monotonic, lambda: self.store.current_revision,
                    lambda: self.node.is_leader, self._auto_compact)))
            self._background.extend(self.corruption.start())
            self._background.append(loop.create_task(monitor_versions(
                lambda: self.node.is_leader, self._member_versions, lambda: self.cluster_version.value,
                self.propose, self._version_wake)))

    resume_background_work = start

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        self._background.clear()
        await self.node.stop()
        # Nothing proposed will be applied by this server any more (etcd: ErrStopped).
        stopped = server_error(errors.STOPPED)
        settle_all(self._pending.take_all(), stopped, self._settle_failed)
        if self.transport is not None:
            await self.transport.close()
        if self._wal_aio is not None:
            self._wal_aio.close()

    def close(self) -> None:
        self.watch_service.stop()
        self.leases.stop()
        self.wal.close()
        self.store.close()

    def add_remote_peer(self, peer_id: int, url: str) -> None:
        """A peer wrote to us that our membership does not know (it joined while we were behind): we
        must be able to answer it, or we never catch up to the entry that adds it."""
        if self.transport is not None and peer_id not in self.membership.removed \
                and peer_id not in self.membership.members:
            self.transport.add_remote(peer_id, url)

    def _refresh_peers(self) -> None:
        if self.transport is None:
            return
        urls = {mid: url for mid in self.membership.members if (url := self.membership.peer_url(mid))}
        if not urls:  # before the bootstrap entries are applied, the configuration says where peers are
            token = self.config.initial_cluster_token
            urls = {member_id(u, token): sorted(u)[0] for u in self.config.cluster_members.values()}
        self.transport.set_peers(urls)

    async def _publish_attributes(self) -> None:
        """Record this member's name and client URLs in the cluster (etcd's publish), once it can."""
        while True:
            me = self.membership.members.get(self.member_id)
            wanted_clients = list(self.config.advertise_client_urls)
            if me is not None and me.name == self.config.name and me.client_urls == wanted_clients:
                return
            if me is not None and self.node.leader:
                update = Member(me.id, self.config.name, me.peer_urls, wanted_clients, me.is_learner)
                try:
                    await self.propose(MemberUpdateRequest(update))
                    continue
                except EtcdError:
                    pass
            await asyncio.sleep(0.1)

    def is_learner(self) -> bool:
        """Whether this member is a learner (it serves only status and serializable reads). A member
        that has not yet applied the entry adding it is not one yet, as in etcd."""
        me = self.membership.members.get(self.member_id)
        return me is not None and me.is_learner

    def leader_peer_url(self) -> str | None:
        """The leader's peer URL when another member leads (requests only it can answer are forwarded
        there); None when this member leads. Raises etcd's no-leader error when there is no leader."""
        leader = self.node.leader
        if leader == self.member_id:
            return None
        url = self.membership.peer_url(leader) if leader else None
        if url is None:
            raise server_error(errors.NO_LEADER)
        return url

    # -------------------------------------------------------------- headers

    def header(self, revision: int | None = None) -> dict[str, str]:
        rev = self.store.current_revision if revision is None else revision
        return {**self._header_prefix, "revision": str(rev), "raft_term": str(self.node.term)}

    def member_header(self) -> dict[str, str]:
        """Cluster member APIs answer with a header that has no revision."""
        return {**self._header_prefix, "raft_term": str(self.node.term)}

    # -------------------------------------------------------------- Raft callbacks

    def _send(self, messages: list[Any]) -> None:
        if self.transport is not None:
            self.transport.send(messages)

    def _on_leader_change(self, leader: int, term: int) -> None:
        log.info("leader is now %x at term %d", leader, term)
        self._leader_changes += 1
        # A read index from the old leader may never come: etcd fails waiting reads at once.
        self.node.fail_reads(server_error(errors.LEADER_CHANGED))
        self.leases.lead(leader == self.member_id)
        if leader == self.member_id:
            self._version_wake.set()

    def _on_dropped(self, batch: list[bytes]) -> None:
        PROPOSALS_FAILED.inc(len(batch))
        take = self._pending.take
        dropped = [settle for data in batch if (settle := take(commands.request_id(data))) is not None]
        settle_all(dropped, server_error(PROPOSAL_DROPPED), self._settle_failed)

    def _apply_entries(self, entries: list[Entry]) -> None:
        apply = self.applier.apply
        take = self._pending.take
        for entry in entries:
            if entry.type == EntryType.NORMAL:
                if not entry.data:  # a new leader's empty entry
                    self.applier.apply_noop(entry.index)
                    continue
                start = time.perf_counter()
                request_id, result = apply(entry.index, entry.data)
                took = time.perf_counter() - start
                if took > self.warn_apply_s:
                    self._slow_apply(entry, took, result)
            else:
                request_id, result = self._apply_conf_change(entry)
            settle = take(request_id)
            if settle is not None:
                # At once, as each entry applies, not after the loop: txn-mixed @64 measured ~8.5k/s
                # against ~9.2k/s. A front channel writes answers out as a few are queued (bridge.py).
                settle_one(settle, result, self._settle_failed)
        # Consecutive puts share one write (MVCCStore.group_batch); it lands before anything can read
        # the store. Answers may leave before it: their entries are durable in the log, and the loop
        # serves no request until this returns, so a client's next request still sees its write.
        self.store.flush_group()
        self.auth.on_applied(self.store.applied_index)
        if self.applier.compactions_scheduled and self._compactor is None:
            self._compactor = asyncio.get_running_loop().create_task(self._compact())

    def _apply_conf_change(self, entry: Entry) -> tuple[int, Any]:
        cc = conf_change_from_entry(entry)
        self.node.apply_conf_change(cc)
        changes = [cc] if isinstance(cc, ConfChange) else []
        request_id = 0
        if isinstance(cc, ConfChange) and cc.context:
            request_id, packed = msgpack.unpackb(cc.context)
        else:
            packed = b""
        for change in changes:
            if change.type in (ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE):
                existing = self.membership.members.get(change.node_id)
                if existing is not None and existing.is_learner and change.type == ConfChangeType.ADD_NODE:
                    self.membership.promote(change.node_id, entry.index)
                elif packed:
                    self.membership.add(Member.unpack(packed), entry.index)
            elif change.type == ConfChangeType.REMOVE_NODE:
                self.membership.remove(change.node_id, entry.index)
                if change.node_id == self.member_id:
                    self._removed()
        if entry.index > self.store.applied_index:
            self.store.record_applied(entry.index)
        self._refresh_peers()
        return request_id, self.membership.sorted_members()

    def _removed(self) -> None:
        """etcd exits once it learns it was removed (from its own log, or a peer's 410): it can never
        rejoin under this id."""
        if self._exiting:
            return
        self._exiting = True
        log.warning("this member has been permanently removed from the cluster; exiting")
        asyncio.get_running_loop().call_soon(self.env.on_removed)

    def _apply_cluster_version(self, index: int, cmd: ClusterVersionSetRequest) -> None:
        if index <= self.store.applied_index:
            return
        previous = self.cluster_version.value
        self.cluster_version.apply(index, cmd)
        if not previous:
            log.info("set the initial cluster version to %s", cmd.version[:-2])
        elif previous != cmd.version:
            log.info("updated the cluster version from %s to %s", previous[:-2], cmd.version[:-2])
        try:
            check_runs_in(self.version, cmd.version, self.downgrade)
        except Exception:
            # etcd's lg.Fatal: this member cannot serve a cluster newer than itself.
            self._exiting = True
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    async def _member_versions(self) -> dict[int, str | None]:
        """Every member's server version: ours directly, the others' from their peer URLs (None when a
        member does not answer)."""
        out: dict[int, str | None] = {}
        for mid in self.membership.members:
            url = self.membership.peer_url(mid)
            if mid == self.member_id:
                out[mid] = self.version
            elif url is None or self.fetch_version is None:
                out[mid] = None
            else:
                out[mid] = await self.fetch_version(url)
        return out

    # -------------------------------------------------------------- observability

    @property
    def leader_changes(self) -> int:
        return self._leader_changes

    @property
    def pending_proposals(self) -> int:
        return len(self._pending)

    def _slow_fsync(self, took: float) -> None:
        event(logging.getLogger("etcdpy.wal"), logging.WARNING, "slow fdatasync",
              f"sync duration of {go_duration(took)}, expected less than 1s",
              took=go_duration(took), expected_duration="1s")

    def _slow_apply(self, entry: Entry, took: float, result: Any) -> None:
        SLOW_APPLIES.inc()
        try:
            request: Any = commands.decode(entry.data)[1]
        except Exception:  # noqa: BLE001 - only for the log line
            request = f"<{len(entry.data)} bytes>"
        response = str(result) if isinstance(result, Exception) else f"size:{len(entry.data)}"
        expected = go_duration(self.warn_apply_s)
        event(log, logging.WARNING, "apply request took too long",
              f"request {str(request)!r} with result {response!r} took too long ({go_duration(took)}) to "
              "execute", took=go_duration(took), expected_duration=expected, prefix="",
              request=str(request), response=response)

    def _apply_member_update(self, index: int, cmd: MemberUpdateRequest) -> list[Member]:
        self.membership.update(cmd.member, index)
        self._refresh_peers()
        return self.membership.sorted_members()

    def _snapshot_path(self, index: int) -> str:
        return os.path.join(self.member_dir, "snap", f"{index:016x}.snap.db")

    def _install_pending_snapshot(self, index: int) -> None:
        """At start-up: the WAL records a snapshot from the leader that a crash kept from being swapped in
        (its marker is made durable first, as etcd's is): install it now. Leftover snapshot files go."""
        snap_dir = os.path.join(self.member_dir, "snap")
        if index > self.store.applied_index:
            path = self._snapshot_path(index)
            if not os.path.exists(path):
                raise DataDirError(
                    f"the WAL records snapshot {index} but the database has applied index "
                    f"{self.store.applied_index} and the snapshot's database is missing; restore this member "
                    "from a snapshot or remove it and add it back"
                )
            self.store.replace_with(lambda db_path: db_snapshot.load(db_path, db_snapshot.read_chunks(path)))
            log.info("installed snapshot %d at start-up", index)
        if os.path.isdir(snap_dir):
            for name in os.listdir(snap_dir):
                os.unlink(os.path.join(snap_dir, name))

    def receive_snapshot(self, msg: Any, path: str) -> None:
        """A snapshot arrived from the leader: keep its database aside until Raft accepts it."""
        index = msg.snapshot.metadata.index
        if index in self._incoming_snapshots:
            # A second copy (a retry, a duplicate): keep the first, whose applied index the WAL's marker
            # may already promise.
            os.unlink(path)
        else:
            final = self._snapshot_path(index)
            os.replace(path, final)  # named by its index: a start-up after a crash finds it there
            self._incoming_snapshots[index] = final
        self.node.step(msg)

    def _snapshot_applied(self, snap: Snapshot) -> int:
        """The applied index of the database that came with `snap`, before it is installed: the WAL's
        snapshot marker records it, and is made durable before the database is swapped in. The file is
        made durable too, so a start-up after a crash can install it (O(size), like the install)."""
        index = snap.metadata.index
        path = self._incoming_snapshots.get(index)
        if path is None:
            raise RuntimeError(f"raft accepted snapshot {index} but no database arrived for it")
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return db_snapshot.applied_index_of(path)

    def _install_snapshot(self, snap: Snapshot) -> int:
        index = snap.metadata.index
        path = self._incoming_snapshots.pop(index, None)
        if path is None:
            raise RuntimeError(f"raft installed snapshot {index} but no database arrived for it")
        self.store.replace_with(lambda db_path: db_snapshot.load(db_path, db_snapshot.read_chunks(path)))
        os.unlink(path)
        for stale in self._incoming_snapshots.values():
            if stale != path:
                os.unlink(stale)
        self._incoming_snapshots.clear()
        self.membership.reload()
        self.alarms.reload()
        self.downgrade.reload()
        self.auth.reload()
        self.cluster_version.reload()
        self.leases.reload()
        self.watch_service.reload()
        self._refresh_peers()
        log.info("installed snapshot at index %d (store applied index %d)", index, self.store.applied_index)
        return self.store.applied_index

    # -------------------------------------------------------------- writes

    def _check_can_propose(self) -> None:
        if not self.node.leader:
            raise server_error(errors.NO_LEADER)
        if self.node.commit_index - self.node.applied > MAX_APPLY_GAP:
            # etcd sheds load when applying falls this far behind committing.
            raise server_error(errors.TOO_MANY_REQUESTS)

    async def propose(self, cmd: commands.Command) -> Any:
        if self._over_quota(cmd):
            await self._refuse_over_quota(cmd)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        request_id = self._submit(cmd, settle_future(future))
        return await self._wait(request_id, future)

    def propose_then(self, cmd: commands.Command, then: Callable[[Any], None]) -> None:
        """`propose` without a coroutine: `then` gets the result, or the exception `propose` would raise,
        in a later loop iteration (once applied, or timed out). Raises at once what `propose` raises
        before proposing (no leader, too many requests). For the writes a front worker decodes
        (Gateway.propose_decoded): a task and its stack of coroutines per put cost about 8 % of the
        member's CPU per put (62 -> 57 us)."""
        if self._over_quota(cmd):
            # Refusing raises the NOSPACE alarm, itself a proposal: the coroutine path does it.
            def refused(task: asyncio.Task[Any]) -> None:
                if not task.cancelled():
                    then(task.exception() or task.result())
            loop = self._loop or asyncio.get_running_loop()
            loop.create_task(self.propose(cmd)).add_done_callback(refused)
            return
        changes = self._leader_changes
        self._submit(cmd, lambda result: then(self._outcome(result, changes)))

    def _submit(self, cmd: commands.Command, settle: Settle) -> int:
        """Hand `cmd` to Raft under a new request id, which it returns; `settle` gets the result once
        applied (or _TIMED_OUT)."""
        self._check_can_propose()
        request_id = next(self._ids)
        self._pending.add(request_id, settle)
        self.node.propose(commands.encode(request_id, cmd))
        return request_id

    def _over_quota(self, cmd: commands.Command) -> bool:
        """Whether this write would take the database past --quota-backend-bytes (etcd's quota server)."""
        # A stamped command (auth on) costs what the request it carries costs.
        request = cmd.inner if isinstance(cmd, commands.Stamped) else cmd
        if not self.quota or not is_quota_checked(request):
            return False
        return self.store.db_size() + cost(request) >= self.quota

    async def _refuse_over_quota(self, cmd: commands.Command) -> None:
        """Past the quota: raise NOSPACE for this member and refuse the write, as etcd does."""
        request = cmd.inner if isinstance(cmd, commands.Stamped) else cmd
        size, needed = self.store.db_size(), cost(request)
        log.warning("database space exceeded (size %d + %d, quota %d): raising the NOSPACE alarm",
                    size, needed, self.quota)
        try:
            await self.propose(AlarmRequest(ACTIVATE, self.member_id, NOSPACE))
        except EtcdError:
            pass  # the write is refused either way; the next one tries to raise the alarm again
        raise server_error(errors.NO_SPACE)

    async def _auto_compact(self, revision: int) -> bool:
        try:
            await self.propose(CompactionRequest(revision, False))
        except CompactedError:
            return True  # someone compacted further already: that is success for the policy
        except (EtcdError, StorageError) as exc:
            log.warning("auto compaction at revision %d failed: %s", revision, exc)
            return False
        log.info("auto compaction at revision %d done", revision)
        return True

    async def propose_conf_change(self, cc: ConfChange) -> list[Member]:
        self._check_can_propose()
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.add(request_id, settle_future(future))
        cc.context = msgpack.packb([request_id, cc.context])
        self.node.propose_conf_change(cc)
        members: list[Member] = await self._wait(request_id, future)
        return members

    async def _wait(self, request_id: int, future: asyncio.Future[Any]) -> Any:
        changes = self._leader_changes
        # The sweep of pending proposals (_expire_proposals) times the future out, rather than
        # asyncio.wait_for: wait_for wraps every write in another future and task callback.
        try:
            result = self._outcome(await future, changes)
        finally:
            self._pending.discard(request_id)
        if isinstance(result, Exception):
            raise result
        return result

    async def _expire_proposals(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            settle_all(self._pending.take_expired(), _TIMED_OUT, self._settle_failed)

    @staticmethod
    def _settle_failed() -> None:
        log.exception("answering a proposal's waiter failed")

    def _outcome(self, result: Any, leader_changes: int) -> Any:
        """A proposal's result as its waiter gets it: the result, or the exception to raise (a timeout
        says whether the leader changed since `leader_changes` was read, at the proposal)."""
        if result is _TIMED_OUT:
            PROPOSALS_FAILED.inc()
            lost_leader = self._leader_changes != leader_changes
            return server_error(errors.TIMEOUT_LEADER_FAIL if lost_leader else errors.TIMEOUT)
        return result

    # Writes carry their user (`auth.wrap`) and are checked when applied; reads are checked here.

    def put_command(self, req: PutRequest) -> commands.Command:
        """The put checked, and stamped with its user: what `put` proposes."""
        txn_eval.check_put(req)
        return self.auth.wrap(req)

    async def put(self, req: PutRequest) -> Any:
        return await self.propose(self.put_command(req))

    def delete_command(self, req: DeleteRangeRequest) -> commands.Command:
        """The delete checked, and stamped with its user: what `delete_range` proposes."""
        txn_eval.check_delete(req)
        return self.auth.wrap(req)

    async def delete_range(self, req: DeleteRangeRequest) -> Any:
        return await self.propose(self.delete_command(req))

    async def txn(self, req: TxnRequest) -> TxnResult:
        txn_eval.check_txn(req, self.config.max_txn_ops)
        if txn_eval.is_read_only(req):
            # etcd serves read-only txns without a log entry, after the same wait as a linearizable read.
            if not _all_serializable(req):
                await self.linearizable_barrier()
            ai = self.auth.check_read_txn(req)
            view = WriteTxn(self.store, self.store.applied_index)
            result: TxnResult = txn_eval.apply_txn(view, req, self.store.lease_exists)
            self.auth.check_fresh(ai)
            return result
        result = await self.propose(self.auth.wrap(req))
        return result

    async def compact(self, req: CompactionRequest) -> Any:
        self.auth.authorize()  # etcd checks no permission for a compaction, but refuses a bad token
        result = await self.propose(req)
        if req.physical:
            await self._wait_compacted()
        return result

    # -------------------------------------------------------------- reads

    async def linearizable_barrier(self) -> None:
        """Wait until this member has applied everything committed before now (ReadIndex)."""
        if not self.node.leader:
            raise server_error(errors.NO_LEADER)
        future = self.node.read_index()
        timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, settle_future(future), _TIMED_OUT)
        try:
            result = await future
        finally:
            timer.cancel()
        if result is _TIMED_OUT:
            raise server_error(errors.TIMEOUT)

    async def range(self, req: RangeRequest) -> RangeResult:
        txn_eval.check_range(req)
        if not req.serializable:
            await self.linearizable_barrier()
        ai = self.auth.check_read(req.key, req.range_end)
        result = self.store.range(req)
        self.auth.check_fresh(ai)
        return result

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


def _all_serializable(req: TxnRequest) -> bool:
    for op in (*req.success, *req.failure):
        if isinstance(op, RangeRequest) and not op.serializable:
            return False
        if isinstance(op, TxnRequest) and not _all_serializable(op):
            return False
    return True


__all__ = ["EtcdServer", "EtcdError", "VERSION", "CLUSTER_VERSION"]
