"""Cluster membership as the log has decided it: members, learners, removed ids, the cluster id.

Conf-change entries carry a Member in their context; applying one updates this view and persists it in
MVCC's `meta` family in the same batch as the applied index, so the view always matches the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from etcdpy.storage.mvcc import MVCCStore

META_MEMBERS = b"members"
META_REMOVED = b"removed_members"
META_CLUSTER_ID = b"cluster_id"


@dataclass
class Member:
    id: int
    name: str = ""
    peer_urls: list[str] = field(default_factory=list)
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    def pack(self) -> bytes:
        return msgpack.packb([self.id, self.name, self.peer_urls, self.client_urls, self.is_learner])

    @classmethod
    def unpack(cls, data: bytes) -> Member:
        mid, name, peers, clients, learner = msgpack.unpackb(data)
        return cls(mid, name, list(peers), list(clients), bool(learner))

    def to_json(self) -> dict[str, Any]:
        """etcd's Member message: ID, name, peerURLs, clientURLs, isLearner; empty fields omitted."""
        out: dict[str, Any] = {"ID": str(self.id)}
        if self.name:
            out["name"] = self.name
        if self.peer_urls:
            out["peerURLs"] = list(self.peer_urls)
        if self.client_urls:
            out["clientURLs"] = list(self.client_urls)
        if self.is_learner:
            out["isLearner"] = True
        return out


@dataclass
class MemberUpdateRequest:
    """A log command replacing a member's URLs or attributes (member update; a member publishing itself)."""

    member: Member


class Membership:
    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.members: dict[int, Member] = {}
        self.removed: set[int] = set()
        self.cluster_id = 0
        self.reload()

    def reload(self) -> None:
        """Read the persisted view (at start-up, and after a snapshot replaced the database)."""
        data = self.store.get_meta(META_MEMBERS)
        self.members = {m.id: m for m in (Member.unpack(d) for d in msgpack.unpackb(data))} if data else {}
        removed = self.store.get_meta(META_REMOVED)
        self.removed = set(msgpack.unpackb(removed)) if removed else set()
        cid = self.store.get_meta(META_CLUSTER_ID)
        self.cluster_id = int.from_bytes(cid, "big") if cid else 0

    def sorted_members(self) -> list[Member]:
        return [self.members[mid] for mid in sorted(self.members)]

    def voters(self) -> list[int]:
        return sorted(mid for mid, m in self.members.items() if not m.is_learner)

    def peer_url(self, member_id: int) -> str | None:
        m = self.members.get(member_id)
        return m.peer_urls[0] if m and m.peer_urls else None

    def _persist(self, index: int, extra: dict[bytes, bytes] | None = None) -> None:
        updates = {
            META_MEMBERS: msgpack.packb([m.pack() for m in self.sorted_members()]),
            META_REMOVED: msgpack.packb(sorted(self.removed)),
        }
        if extra:
            updates.update(extra)
        self.store.commit_meta(index, updates)

    def set_cluster_id(self, cluster_id: int, index: int) -> None:
        self.cluster_id = cluster_id
        self._persist(index, {META_CLUSTER_ID: cluster_id.to_bytes(8, "big")})

    # Each change is applied at a log index; one at or below the applied index was applied before a
    # restart (the view on disk already has it), so it is skipped.

    def add(self, member: Member, index: int) -> None:
        if index <= self.store.applied_index:
            return
        self.members[member.id] = member
        self._persist(index)

    def remove(self, member_id: int, index: int) -> None:
        if index <= self.store.applied_index:
            return
        self.members.pop(member_id, None)
        self.removed.add(member_id)
        self._persist(index)

    def promote(self, member_id: int, index: int) -> None:
        if index <= self.store.applied_index:
            return
        if member_id in self.members:
            self.members[member_id].is_learner = False
        self._persist(index)

    def update(self, member: Member, index: int) -> None:
        """Replace a member's URLs or attributes (member update, or a member publishing its name)."""
        if index <= self.store.applied_index:
            return
        if member.id in self.members:
            # Learner or voter is Raft's to say (conf changes only): an update proposed before a promotion
            # was applied must not turn the member back into a learner.
            current = self.members[member.id]
            self.members[member.id] = Member(member.id, member.name, member.peer_urls, member.client_urls,
                                             current.is_learner)
        self._persist(index)
