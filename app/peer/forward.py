"""Asking the leader: requests only the Raft leader can answer, sent on from another member.

etcd forwards lease keepalive and timetolive and member promotion to its leader over the peer URLs;
so do we: the leader's peer server hands these gateway paths (FORWARDED) to its client gateway, so the
answer (or etcd error) comes back exactly as a client of the leader would get it. Peer URLs are known
from the start, unlike client URLs, which a new leader may not have published yet.
"""

from __future__ import annotations

import asyncio
from ssl import SSLContext
from typing import Any

import orjson

from etcdpy.app import errors
from etcdpy.app.errors import EtcdError, server_error
from etcdpy.app.peer.http_client import HttpConn, HttpError

FORWARD_TIMEOUT_S = 5.0


# /v3/maintenance/hashkv: the leader's corruption check asks each peer (etcd's /members/hashkv).
FORWARDED = frozenset({"/v3/lease/keepalive", "/v3/lease/timetolive", "/v3/cluster/member/promote",
                       "/v3/maintenance/hashkv"})


async def forward(url: str, path: str, body: bytes, authorization: str | None = None,
                  ssl: SSLContext | None = None) -> dict[str, Any]:
    """POST `body` to `path` (one of FORWARDED) at the leader's peer `url` (https: dialled with `ssl`,
    the peer client context); the JSON answer (the first line of a stream's), or its error.
    `authorization` passes the client's token on, so the leader makes the same auth checks."""
    conn = HttpConn(url, ssl)
    try:
        status, data = await asyncio.wait_for(conn.post(path, body, authorization=authorization),
                                              FORWARD_TIMEOUT_S)
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
