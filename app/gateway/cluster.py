"""Cluster membership over etcd's gateway paths.

`/v3/cluster/member/{list,add,remove,update,promote}` (the maintenance service, status and
transfer-leadership included, is `maintenance.py`), with etcd's checks and messages: strict
reconfiguration (a change that would leave too few started members is refused), one learner at most, a
learner promoted only once it is in sync with the leader.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from etcdpy.app import errors
from etcdpy.app.errors import (
    BAD_URLS,
    LEARNER_NOT_READY,
    MEMBER_ID_EXISTS,
    MEMBER_NOT_FOUND,
    NOT_A_LEARNER,
    NOT_ENOUGH_STARTED,
    PEER_URL_EXISTS,
    TOO_MANY_LEARNERS,
    UNHEALTHY,
    EtcdError,
)
from etcdpy.app.gateway import codec
from etcdpy.app.gateway.dispatch import Handler
from etcdpy.app.peer.forward import forward
from etcdpy.app.server.auth import request_token
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.app.server.identity import member_id
from etcdpy.app.server.membership import Member, MemberUpdateRequest
from etcdpy.raft import ConfChange, ConfChangeType

MAX_LEARNERS = 1
LEARNER_READY_PERCENT = 0.9  # etcd promotes a learner whose log is within 10% of the leader's



def _members_json(members: list[Member]) -> list[dict[str, Any]]:
    return [m.to_json() for m in members]


def _existing_member(server: EtcdServer, d: dict[str, Any]) -> Member:
    member = server.membership.members.get(d.get("ID", 0))
    if member is None:
        raise EtcdError(*MEMBER_NOT_FOUND)
    return member


def _valid_urls(urls: list[str]) -> bool:
    if not urls:
        return False
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https", "unix", "unixs") or not parts.hostname or port is None:
            return False
        if parts.path not in ("", "/"):
            return False
    return True


def _started_voters(server: EtcdServer, exclude: int = 0) -> tuple[int, int]:
    """(voting members, started voting members): started = it has published its name, as etcd counts."""
    voters = [m for m in server.membership.members.values() if not m.is_learner and m.id != exclude]
    return len(voters), sum(1 for m in voters if m.name)


def _connected(server: EtcdServer, ids: list[int]) -> int:
    transport = server.transport
    healthy = 0
    for mid in ids:
        if mid == server.member_id:
            healthy += 1
        elif transport is not None and (sender := transport.senders.get(mid)) is not None and sender.healthy:
            healthy += 1
    return healthy


async def member_list(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "MemberListRequest")
    return {"header": server.member_header(), "members": _members_json(server.membership.sorted_members())}


async def member_add(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "MemberAddRequest")
    urls: list[str] = d.get("peerURLs", [])
    learner = bool(d.get("isLearner", False))
    if not _valid_urls(urls):
        raise EtcdError(*BAD_URLS)
    server.auth.check_admin()
    members = server.membership.members
    taken = {u for m in members.values() for u in m.peer_urls}
    if taken & set(urls):
        raise EtcdError(*PEER_URL_EXISTS)
    if learner and sum(1 for m in members.values() if m.is_learner) >= MAX_LEARNERS:
        raise EtcdError(*TOO_MANY_LEARNERS)
    if not learner:
        voters, started = _started_voters(server)
        # etcd lets a lone member take a second one (to restore a cluster); otherwise the started
        # members must still be a quorum once the new, not yet started, member counts.
        if not (started == 1 and voters + 1 == 2) and started < (voters + 1) // 2 + 1:
            raise EtcdError(*NOT_ENOUGH_STARTED)
    new_id = member_id(urls, "", int(time.time()))
    if new_id in members or new_id in server.membership.removed:
        raise EtcdError(*MEMBER_ID_EXISTS)
    member = Member(new_id, "", sorted(urls), [], learner)
    kind = ConfChangeType.ADD_LEARNER_NODE if learner else ConfChangeType.ADD_NODE
    after = await server.propose_conf_change(ConfChange(kind, new_id, member.pack()))
    return {"header": server.member_header(), "member": member.to_json(), "members": _members_json(after)}


async def member_remove(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "MemberRemoveRequest")
    server.auth.check_admin()
    member = _existing_member(server, d)
    target = member.id
    if not member.is_learner:
        voters, started = _started_voters(server, exclude=target)
        if started < voters // 2 + 1:
            raise EtcdError(*NOT_ENOUGH_STARTED)
        remaining = [m.id for m in server.membership.members.values() if not m.is_learner and m.id != target]
        if _connected(server, remaining) < len(remaining) // 2 + 1:
            raise EtcdError(*UNHEALTHY)
    after = await server.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, target, b""))
    return {"header": server.member_header(), "members": _members_json(after)}


async def member_update(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "MemberUpdateRequest")
    server.auth.check_admin()
    member = _existing_member(server, d)
    target = member.id
    urls: list[str] = d.get("peerURLs", [])
    if not _valid_urls(urls):
        raise EtcdError(*BAD_URLS)
    taken = {u for m in server.membership.members.values() if m.id != target for u in m.peer_urls}
    if taken & set(urls):
        raise EtcdError(*PEER_URL_EXISTS)
    updated = Member(member.id, member.name, sorted(urls), member.client_urls, member.is_learner)
    after = await server.propose(MemberUpdateRequest(updated))
    return {"header": server.member_header(), "members": _members_json(after)}


async def member_promote(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "MemberPromoteRequest")
    server.auth.check_admin()
    member = _existing_member(server, d)
    target = member.id
    if not member.is_learner:
        raise EtcdError(*NOT_A_LEARNER)
    if not server.node.is_leader:
        # Only the leader knows how far the learner's log has come: ask it, as etcd does.
        return await _forward_to_leader(server, "/v3/cluster/member/promote", body)
    progress = server.node.raw.status().progress
    mine, theirs = progress.get(server.member_id), progress.get(target)
    in_sync = mine is not None and theirs is not None and theirs.match > mine.match * LEARNER_READY_PERCENT
    if not in_sync:
        raise EtcdError(*LEARNER_NOT_READY)
    after = await server.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, target, b""))
    return {"header": server.member_header(), "members": _members_json(after)}


async def _forward_to_leader(server: EtcdServer, path: str, body: bytes) -> dict[str, Any]:
    url = server.leader_peer_url()
    if url is None:
        # Not the leader a moment ago but the leader now: let the client retry.
        raise EtcdError(*errors.NO_LEADER)
    data = await forward(url, path, body, request_token.get(), ssl=server.peer_ssl)
    data["header"] = server.member_header()
    return data


RPCS: dict[str, Handler] = {
    "/v3/cluster/member/list": member_list,
    "/v3/cluster/member/add": member_add,
    "/v3/cluster/member/remove": member_remove,
    "/v3/cluster/member/update": member_update,
    "/v3/cluster/member/promote": member_promote,
}
