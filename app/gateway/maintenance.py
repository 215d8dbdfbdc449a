"""The Maintenance service over etcd's gateway paths, answered as etcd 3.4 answers them.

`/v3/maintenance/{status,alarm,hash,defragment,snapshot,transfer-leadership}` as etcd 3.4's gateway
serves them, plus etcd 3.5's `hashkv` and `downgrade` (3.4's gateway has neither: 404). Shapes copied
from etcd 3.4.23: `alarm` answers without a header, `defragment` with `{}`, `status` lists active alarms
in `errors` in Go's proto text form, `snapshot` streams `{"result":{"remaining_bytes","blob"}}` lines of
32 KiB and ends with one line whose blob is the SHA-256 of everything before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from typing import Any

from starlette.types import Receive, Scope, Send

from etcdpy.app import errors
from etcdpy.app.errors import BAD_TRANSFEREE, NOT_LEADER, TRANSFER_TOO_LONG, EtcdError, to_etcd_error
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.auth_guard import require_admin_maintenance
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.dispatch import Handler, StreamHandler, read_body
from etcdpy.app.gateway.stream_io import LineWriter
from etcdpy.app.server.alarms import ACTIVATE, DEACTIVATE, GET, AlarmRequest
from etcdpy.app.server.downgrade import (
    CANCEL,
    ENABLE,
    VALIDATE,
    DowngradeInfoSetRequest,
    WrongVersionFormat,
    allowed_target,
    cluster_minor,
)
from etcdpy.app.server.etcd_server import CLUSTER_VERSION, VERSION, EtcdServer
from etcdpy.raft import StateType
from etcdpy.storage import db_snapshot
from etcdpy.storage.errors import StorageError
from etcdpy.storage.maintenance import defragment as defragment_store
from etcdpy.storage.maintenance import hash_all, hash_kv, size_in_use

TRANSFER_TIMEOUT = 7.0
SNAPSHOT_CHUNK = 32 * 1024  # etcd's snapshotSendBufferSize


async def status(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "StatusRequest")
    node = server.node
    size = server.store.db_size()
    out: dict[str, Any] = {
        "header": server.header(),
        "version": VERSION,
        "dbSize": str(size),
        "leader": str(node.leader) if node.leader else None,
        "raftIndex": str(node.commit_index),
        "raftTerm": str(node.term),
        "raftAppliedIndex": str(node.applied),
        "errors": [str(a) for a in server.alarms.get()] or None,
        "dbSizeInUse": str(min(size, size_in_use(server.store))),
    }
    me = server.membership.members.get(server.member_id)
    if me is not None and me.is_learner:
        out["isLearner"] = True
    return {k: v for k, v in out.items() if v is not None and v != "0"}


async def transfer_leadership(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "MoveLeaderRequest")
    target = d.get("targetID", 0)
    node = server.node
    if node.role != StateType.LEADER:
        raise EtcdError(*NOT_LEADER)
    member = server.membership.members.get(target)
    if member is None or member.is_learner:
        raise EtcdError(*BAD_TRANSFEREE)
    if target == server.member_id:
        return {}
    node.transfer_leader(target)
    deadline = asyncio.get_running_loop().time() + TRANSFER_TIMEOUT
    while node.leader != target:
        if asyncio.get_running_loop().time() > deadline:
            raise EtcdError(*TRANSFER_TOO_LONG)
        await asyncio.sleep(node.tick_seconds)
    return {}


async def alarm(server: EtcdServer, body: bytes) -> dict[str, Any]:
    """Every action goes through the log, as in etcd, so a GET is linearizable. No header (etcd 3.4)."""
    d = codec.decode_request(body, "AlarmRequest")
    action = d.get("action", GET)
    if action not in (GET, ACTIVATE, DEACTIVATE):
        return {}  # etcd 3.4.23 crashes on an unknown action; an empty answer is what it meant to send
    changed = await server.propose(AlarmRequest(action, d.get("memberID", 0), d.get("alarm", 0)))
    return {"alarms": [a.to_json() for a in changed]} if changed else {}


async def hash_(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "HashRequest")
    require_admin_maintenance(server)
    return {"header": server.header(), "hash": hash_all(server.store)}


async def hashkv(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "HashKVRequest")
    require_admin_maintenance(server)
    value, compact, rev = hash_kv(server.store, d.get("revision", 0))
    out: dict[str, Any] = {"header": server.header(), "hash": value}
    if compact:
        out["compact_revision"] = str(compact)
    out["hash_revision"] = str(rev)
    return out


async def defragment(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "DefragmentRequest")
    require_admin_maintenance(server)
    await asyncio.to_thread(defragment_store, server.store)
    return {}


async def downgrade(server: EtcdServer, body: bytes) -> dict[str, Any]:
    """etcd 3.5's downgrade: validate and enable check the target; cancel needs a job in progress."""
    d = codec.decode_request(body, "DowngradeRequest")
    require_admin_maintenance(server)
    action = d.get("action", VALIDATE)
    version = d.get("version", "")
    if action in (VALIDATE, ENABLE):
        target = await _validate_downgrade(server, version)
        if action == ENABLE:
            await server.propose(DowngradeInfoSetRequest(True, f"{target[0]}.{target[1]}.0"))
    elif action == CANCEL:
        await server.linearizable_barrier()
        if not server.downgrade.enabled:
            raise EtcdError(*errors.NO_INFLIGHT_DOWNGRADE)
        await server.propose(DowngradeInfoSetRequest(False))
    else:
        raise EtcdError(*errors.UNKNOWN_METHOD)
    return {"header": server.header(), "version": CLUSTER_VERSION}


async def _validate_downgrade(server: EtcdServer, version: str) -> tuple[int, int]:
    try:
        target = cluster_minor(version)
    except WrongVersionFormat:
        raise EtcdError(*errors.WRONG_DOWNGRADE_FORMAT) from None
    await server.linearizable_barrier()  # decide on the cluster's latest downgrade state
    if target != allowed_target(CLUSTER_VERSION):
        raise EtcdError(*errors.INVALID_DOWNGRADE_TARGET)
    if server.downgrade.enabled:
        raise EtcdError(*errors.DOWNGRADE_IN_PROCESS)
    return target


async def snapshot(server: EtcdServer, scope: Scope, receive: Receive, send: Send) -> None:
    """Stream the database as etcd does: 32 KiB blobs with the bytes remaining, then the SHA-256."""
    writer = LineWriter(send)
    body = await read_body(receive, server.config.max_request_bytes)
    try:
        codec.decode_request(body or b"", "SnapshotRequest")
    except DecodeError as exc:
        await writer.fail(EtcdError(str(exc), errors.INVALID_ARGUMENT))
        return
    try:
        require_admin_maintenance(server)
    except EtcdError as exc:
        await writer.fail_stream(exc)
        return
    snap_dir = os.path.join(server.member_dir, "snap")
    os.makedirs(snap_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="client-", suffix=".snap.tmp", dir=snap_dir)
    os.close(fd)
    try:
        try:
            # Blocking on purpose: applies run on this loop, so the dump is one consistent state.
            total = db_snapshot.dump_to_file(server.store.families, path)
        except (OSError, StorageError) as exc:
            await writer.fail(to_etcd_error(exc))
            return
        digest = hashlib.sha256()
        sent = 0
        with open(path, "rb") as f:
            while sent < total:
                blob = f.read(SNAPSHOT_CHUNK)
                if not blob:
                    break
                sent += len(blob)
                digest.update(blob)
                result: dict[str, Any] = {}
                if total - sent:
                    result["remaining_bytes"] = str(total - sent)
                result["blob"] = codec.b64(blob)
                await writer.write(codec.dumps({"result": result}) + b"\n")
        await writer.write(codec.dumps({"result": {"blob": codec.b64(digest.digest())}}) + b"\n")
        await writer.finish()
    finally:
        os.unlink(path)


RPCS: dict[str, Handler] = {
    "/v3/maintenance/status": status,
    "/v3/maintenance/transfer-leadership": transfer_leadership,
    "/v3/maintenance/alarm": alarm,
    "/v3/maintenance/hash": hash_,
    "/v3/maintenance/hashkv": hashkv,
    "/v3/maintenance/defragment": defragment,
    "/v3/maintenance/downgrade": downgrade,
}

STREAMS: dict[str, StreamHandler] = {"/v3/maintenance/snapshot": snapshot}
