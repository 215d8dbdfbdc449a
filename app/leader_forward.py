"""Asking the leader: requests only the Raft leader can answer, sent on from another member.

etcd forwards lease keepalive and timetolive and member promotion to its leader over the peer URLs;
so do we: the leader's peer server hands these gateway paths (FORWARDED) to its client gateway, so the
answer (or etcd error) comes back exactly as a client of the leader would get it. Peer URLs are known
from the start, unlike client URLs, which a new leader may not have published yet.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from app import errors
from app.errors import EtcdError, server_error
from app.http_conn import HttpConn, HttpError

if TYPE_CHECKING:  # the server's peer transport imports FORWARDED from here
    from app.server import EtcdServer

FORWARD_TIMEOUT_S = 5.0


FORWARDED = frozenset({"/v3/lease/keepalive", "/v3/lease/timetolive", "/v3/cluster/member/promote"})


def leader_url(server: EtcdServer) -> str | None:
    """The leader's peer URL when another member leads; None when this member leads.

    Raises etcd's no-leader error when there is no leader."""
    leader = server.node.leader
    if leader == server.member_id:
        return None
    url = server.membership.peer_url(leader) if leader else None
    if url is None:
        raise server_error(errors.NO_LEADER)
    return url


async def forward(url: str, path: str, body: bytes) -> dict[str, Any]:
    """POST `body` to `path` (one of FORWARDED) at the leader's peer `url`; the JSON answer (the first
    line of a stream's), or its error."""
    conn = HttpConn(url)
    try:
        status, data = await asyncio.wait_for(conn.post(path, body), FORWARD_TIMEOUT_S)
    except (HttpError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        raise server_error(errors.NO_LEADER) from None
    finally:
        await conn.close()
    text = data.split(b"\n", 1)[0]
    answer: dict[str, Any] = orjson.loads(text) if text else {}
    if status != 200:
        message = answer.get("message", "etcdserver: leader changed")
        raise EtcdError(message, int(answer.get("code", errors.UNKNOWN)))
    return answer
