"""Asking the leader: requests only the Raft leader can answer, sent on from another member.

etcd forwards lease keepalive and timetolive and member promotion to its leader; so do we, over the
leader's client URL with the gateway's own JSON, so the answer (or etcd error) comes back unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app import errors
from app.errors import EtcdError, server_error
from app.http_conn import HttpConn, HttpError
from app.server import EtcdServer

FORWARD_TIMEOUT_S = 5.0


def leader_client_url(server: EtcdServer) -> str | None:
    """The leader's client URL when another member leads; None when this member leads.

    Raises etcd's no-leader error when there is no leader (or it has not published its URLs yet)."""
    leader = server.node.leader
    if leader == server.member_id:
        return None
    member = server.membership.members.get(leader) if leader else None
    if member is None or not member.client_urls:
        raise server_error(errors.NO_LEADER)
    return member.client_urls[0]


async def forward(url: str, path: str, body: bytes) -> dict[str, Any]:
    """POST `body` to `path` at `url`; the JSON answer (the first line of a stream's), or its error."""
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
