"""`/v3/lease/*` (and the `/v3/kv/lease/*` aliases): etcd's lease RPCs over the JSON gateway.

Grant and revoke go through the log; keepalive, timetolive and leases are answered by this member as
the primary (etcd's leader answers them without a log entry). gateway-api.md §6.3 and §7.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from etcdpy.app.errors import UNKNOWN, EtcdError, to_etcd_error
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.dispatch import AtOnce, Handler, StreamHandler
from etcdpy.app.gateway.json_body import JsonSyntaxError
from etcdpy.app.gateway.stream_io import Disconnected, LineWriter, RequestReader, only_value
from etcdpy.app.peer.forward import forward
from etcdpy.app.server.auth import request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.errors import LeaseNotFoundError, StorageError
from etcdpy.storage.lessor import Lease, LeaseCheckpointRequest, LeaseGrantRequest, LeaseRevokeRequest

_ID_MASK = (1 << 63) - 1


def _new_lease_id(server: EtcdServer) -> int:
    # etcd takes the next request id, keeping it positive.
    while True:
        lease_id = next(server._ids) & _ID_MASK
        if lease_id and lease_id not in server.leases.lessor.leases:
            return lease_id


async def grant(server: EtcdServer, ttl: int, lease_id: int = 0) -> Lease:
    """Grant a lease (id 0: the server picks one)."""
    lease: Lease = await server.propose(LeaseGrantRequest(lease_id or _new_lease_id(server), ttl))
    server.leases.lessor.settle(server.leases.now())
    return lease


async def lease_grant(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "LeaseGrantRequest")
    server.auth.authorize()  # etcd refuses a bad token here, though any user may grant a lease
    lease = await grant(server, d.get("TTL", 0), d.get("ID", 0))
    out: dict[str, Any] = {"header": server.header()}
    if lease.id:
        out["ID"] = str(lease.id)
    if lease.ttl:
        out["TTL"] = str(lease.ttl)
    return out


async def lease_revoke(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "LeaseRevokeRequest")
    lease_id = d.get("ID", 0)
    if lease_id not in server.leases.lessor.leases:
        raise LeaseNotFoundError()
    # Stamped with the caller: the applier checks WRITE on every key the revoke would delete.
    revision = await server.propose(server.auth.wrap(LeaseRevokeRequest(lease_id), always=True))
    return {"header": server.header(revision)}


async def lease_time_to_live(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "LeaseTimeToLiveRequest")
    lease_id = d.get("ID", 0)
    lessor = server.leases.lessor
    # The names of a lease's keys are readable only by who may read the keys (etcd 3.4.26/3.5.9's fix
    # of CVE-2023-32082; 3.4.23 told anyone).
    for key in lessor.attached_keys(lease_id):
        server.auth.check_read(key, b"")
    leader = server.leader_peer_url()
    if leader is not None:
        body = codec.dumps({"ID": lease_id, "keys": d.get("keys", False)})
        forwarded = await forward(leader, "/v3/lease/timetolive", body, request_token.get(),
                                  ssl=server.peer_ssl)
        return {**forwarded, "header": server.header()}
    out: dict[str, Any] = {"header": server.header()}
    if lease_id:
        out["ID"] = str(lease_id)
    found = lessor.time_to_live(lease_id, server.leases.now())
    if found is None:
        out["TTL"] = "-1"
        return out
    remaining, granted = found
    if remaining:
        out["TTL"] = str(remaining)
    if granted:
        out["grantedTTL"] = str(granted)
    if d.get("keys"):
        keys = lessor.attached_keys(lease_id)
        if keys:
            out["keys"] = [codec.b64(k) for k in keys]
    return out


async def lease_leases(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "LeaseLeasesRequest")
    out: dict[str, Any] = {"header": server.header()}
    leases = server.leases.lessor.listing()
    if leases:
        out["leases"] = [{"ID": str(lease.id)} if lease.id else {} for lease in leases]
    return out


def _answer(server: EtcdServer, lease_id: int, ttl: int) -> dict[str, Any]:
    out: dict[str, Any] = {"header": server.header()}
    if lease_id:
        out["ID"] = str(lease_id)
    if ttl:
        out["TTL"] = str(ttl)
    return out


def _renew_here(server: EtcdServer, lease_id: int) -> dict[str, Any]:
    """A keepalive answered by this member as the leader."""
    ttl = 0
    clear_checkpoint = False
    try:
        ttl, clear_checkpoint = server.leases.lessor.renew(lease_id, server.leases.now())
    except LeaseNotFoundError:
        pass
    if clear_checkpoint:
        server.leases.spawn_proposal(LeaseCheckpointRequest([(lease_id, 0)]))
    return _answer(server, lease_id, ttl)


async def keepalive_once(server: EtcdServer, lease_id: int) -> dict[str, Any]:
    """One keepalive answer; an unknown or expired lease answers TTL 0 (omitted), not an error. A
    follower has the leader renew it (the leader's clock decides expiry)."""
    leader = server.leader_peer_url()
    if leader is None:
        return _renew_here(server, lease_id)
    forwarded = await forward(leader, "/v3/lease/keepalive", codec.dumps({"ID": lease_id}),
                              ssl=server.peer_ssl)
    return _answer(server, lease_id, int(forwarded.get("result", {}).get("TTL", 0)))


def keepalive_at_once(server: EtcdServer, body: bytes) -> bytes | None:
    """The stream's whole answer to a body holding one well-formed request, when this member leads:
    nothing to wait for, so no task. None, having done nothing, for any other body (several requests,
    an error to answer) or when the leader is elsewhere or unknown: the stream handler answers those."""
    raw = only_value(body)
    try:
        if raw is None or server.leader_peer_url() is not None:
            return None
        d = codec.decode_request(raw, "LeaseKeepAliveRequest")
    except (JsonSyntaxError, DecodeError, EtcdError):
        return None
    return codec.dumps({"result": _renew_here(server, d.get("ID", 0))}) + b"\n"


async def lease_keepalive_stream(server: EtcdServer, scope: Scope, receive: Receive, send: Send) -> None:
    """One answer line per request object; the stream ends when the body does (gateway-api.md §6.3)."""
    reader = RequestReader(receive, 4 * server.config.max_request_bytes)
    writer = LineWriter(send)
    first = True
    try:
        while True:
            try:
                raw = await reader.next_object()
                if raw is None:
                    break
                d = codec.decode_request(raw, "LeaseKeepAliveRequest")
            except (JsonSyntaxError, DecodeError) as exc:
                if first:
                    await writer.fail(EtcdError(str(exc), UNKNOWN))
                    return
                break  # a later bad object silently ends the request side
            first = False
            answer = await keepalive_once(server, d.get("ID", 0))
            await writer.write(codec.dumps({"result": answer}) + b"\n")
    except Disconnected:
        return
    except (EtcdError, StorageError) as exc:
        if not writer.started:
            await writer.fail(to_etcd_error(exc))
            return
    await writer.finish()


RPCS: dict[str, Handler] = {
    "/v3/lease/grant": lease_grant,
    "/v3/lease/revoke": lease_revoke,
    "/v3/kv/lease/revoke": lease_revoke,
    "/v3/lease/timetolive": lease_time_to_live,
    "/v3/kv/lease/timetolive": lease_time_to_live,
    "/v3/lease/leases": lease_leases,
    "/v3/kv/lease/leases": lease_leases,
}
STREAMS: dict[str, StreamHandler] = {"/v3/lease/keepalive": lease_keepalive_stream}
# The keep-alive stream ends with its request body (gateway-api.md §6.3): one renewal per body is how
# clients use it, and front workers may answer such a body whole, as one exchange.
BOUNDED_STREAMS: dict[str, AtOnce] = {"/v3/lease/keepalive": keepalive_at_once}
