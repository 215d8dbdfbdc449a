"""ReadOnly: the leader's bookkeeping of pending ReadIndex requests (SAFE mode).

Each request remembers the commit index at arrival; it is released once a quorum
acknowledged a heartbeat carrying its context, which proves we were still leader then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.raft.config import ReadOnlyOption
from etcdpy.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    req: Message
    index: int
    acks: dict[int, bool] = field(default_factory=dict)


class ReadOnly:
    __slots__ = ("option", "pending", "queue")

    def __init__(self, option: ReadOnlyOption) -> None:
        self.option = option
        self.pending: dict[bytes, ReadIndexStatus] = {}
        # Request contexts in arrival order; a quorum ack of one confirms all earlier ones too.
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(req=m, index=index)
        self.queue.append(ctx)

    def recv_ack(self, id_: int, context: bytes) -> dict[int, bool] | None:
        rs = self.pending.get(context)
        if rs is None:
            return None
        rs.acks[id_] = True
        return rs.acks

    def advance(self, m_context: bytes) -> list[ReadIndexStatus]:
        """Release every request up to and including the one with this context."""
        if m_context not in self.pending:
            return []
        out: list[ReadIndexStatus] = []
        for i, ctx in enumerate(self.queue):
            rs = self.pending.pop(ctx)
            out.append(rs)
            if ctx == m_context:
                del self.queue[: i + 1]
                return out
        raise AssertionError("cannot find corresponding read state from pending map")

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""
