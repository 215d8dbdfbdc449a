"""`/v3/election/*`: etcd's election service (v3election) over the JSON gateway.

`campaign` blocks until elected and answers the leader key; `proclaim` and `resign` act on a leader key
that `campaign` answered; `leader` reads the current leader; `observe` streams the leader and every
change of it, one `{"result":LeaderResponse}` line each, until the client goes away. The logic is
`server.coordination.Coordinator`'s. As in etcd, `campaign`, `proclaim` and `resign` without a lease
get a new 60 s lease, and every failure after decoding is reported with code Unknown.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from etcdpy.app import errors
from etcdpy.app.errors import INVALID_ARGUMENT, EtcdError, via_client
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.blocking import cancellable, read_request, run_until_disconnect
from etcdpy.app.gateway.codec import DecodeError
from etcdpy.app.gateway.dispatch import Handler, StreamHandler, respond_error
from etcdpy.app.gateway.lock import session_lease
from etcdpy.app.gateway.stream_io import LineWriter
from etcdpy.app.server.coordination import Coordinator
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.errors import StorageError


def _leader_key(d: dict[str, Any]) -> dict[str, Any]:
    leader = d.get("leader")
    if leader is None:
        raise errors.server_error(errors.MISSING_LEADER_KEY)
    assert isinstance(leader, dict)
    return leader


async def election_campaign(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "CampaignRequest")
    name = d.get("name", b"")
    try:
        lease_id = await session_lease(server, d.get("lease", 0))
        held = await Coordinator(server).campaign(name, d.get("value", b""), lease_id)
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    leader: dict[str, Any] = {}
    if name:
        leader["name"] = codec.b64(name)
    leader["key"] = codec.b64(held.key)
    if held.create_revision:
        leader["rev"] = str(held.create_revision)
    if lease_id:
        leader["lease"] = str(lease_id)
    return {"header": server.header(held.header_revision), "leader": leader}


async def election_proclaim(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "ProclaimRequest")
    try:
        leader = _leader_key(d)
        lease_id = await session_lease(server, leader.get("lease", 0))
        revision = await Coordinator(server).proclaim(
            leader.get("key", b""), leader.get("rev", 0), lease_id, d.get("value", b""))
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    return {"header": server.header(revision)}


async def election_resign(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "ResignRequest")
    try:
        leader = _leader_key(d)
        await session_lease(server, leader.get("lease", 0))  # etcd opens a session here too
        revision = await Coordinator(server).resign(leader.get("key", b""), leader.get("rev", 0))
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    return {"header": server.header(revision)}


async def election_leader(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "LeaderRequest")
    try:
        kv, revision = await Coordinator(server).leader(d.get("name", b""))
    except (EtcdError, StorageError) as exc:
        raise via_client(exc) from None
    return {"header": server.header(revision), "kv": codec.kv_json(kv)}


async def election_observe(server: EtcdServer, scope: Scope, receive: Receive, send: Send) -> None:
    """The leader, then each change, one line each; headers go out with the first line (etcd's
    gateway writes nothing while there is no leader to report)."""
    body = await read_request(server, receive, send)
    if body is None:
        return
    try:
        d = codec.decode_request(body, "LeaderRequest")
    except DecodeError as exc:
        await respond_error(send, EtcdError(str(exc), INVALID_ARGUMENT))
        return
    writer = LineWriter(send)

    async def pump() -> None:
        async for kv, revision in Coordinator(server).observe(d.get("name", b"")):
            line = {"result": {"header": server.header(revision), "kv": codec.kv_json(kv)}}
            await writer.write(codec.dumps(line) + b"\n")

    try:
        finished, _ = await run_until_disconnect(pump(), receive)
    except (EtcdError, StorageError):
        finished = True  # etcd's observe ends its stream quietly when a read fails
    if finished:
        await writer.finish()


RPCS: dict[str, Handler] = {
    "/v3/election/proclaim": election_proclaim,
    "/v3/election/leader": election_leader,
    "/v3/election/resign": election_resign,
}
STREAMS: dict[str, StreamHandler] = {
    "/v3/election/campaign": cancellable(election_campaign),
    "/v3/election/observe": election_observe,
}
