"""`/v3/lock/*`: etcd's lock service (v3lock) over the JSON gateway.

`lock` blocks until the named lock is held and answers the owned key (`<name>/<lease in hex>`); `unlock`
deletes that key. The waiting is `server.coordination.Coordinator`'s. As in etcd, a lock request
without a lease gets a new 60 s lease that nobody keeps alive, and every failure after decoding is
reported with code Unknown (etcd's lock service calls KV and leases through its own client).
"""

from __future__ import annotations

from typing import Any

from etcdpy.app.errors import EtcdError, via_client
from etcdpy.app.gateway import codec, lease
from etcdpy.app.gateway.blocking import cancellable
from etcdpy.app.gateway.dispatch import Handler, StreamHandler
from etcdpy.app.server.coordination import Coordinator
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.errors import StorageError

SESSION_TTL = 60  # etcd's concurrency.Session default TTL, for a request that names no lease


async def session_lease(server: EtcdServer, lease_id: int) -> int:
    """The request's lease, or a new one when it names none (etcd's NewSession without WithLease)."""
    if lease_id:
        return lease_id
    return (await lease.grant(server, SESSION_TTL)).id


async def lock_lock(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "LockRequest")
    try:
        lease_id = await session_lease(server, d.get("lease", 0))
        held = await Coordinator(server).lock(d.get("name", b""), lease_id)
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    return {"header": server.header(held.header_revision), "key": codec.b64(held.key)}


async def lock_unlock(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "UnlockRequest")
    try:
        revision = await Coordinator(server).unlock(d.get("key", b""))
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    return {"header": server.header(revision)}


RPCS: dict[str, Handler] = {"/v3/lock/unlock": lock_unlock}
STREAMS: dict[str, StreamHandler] = {"/v3/lock/lock": cancellable(lock_lock)}
