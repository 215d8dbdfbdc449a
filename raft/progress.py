"""Progress: the leader's view of one follower's log, and the Inflights flow-control window.

A follower is probed (one append at a time until we find where logs match), replicated
(appends are pipelined, bounded by the inflight window) or being sent a snapshot.
"""

from __future__ import annotations

from collections import deque

from etcdpy.raft.types import ProgressStateType


class Inflights:
    """Last indexes of in-flight MsgApps, oldest first; bounds pipelining to `size` messages."""

    __slots__ = ("size", "buffer")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffer: deque[int] = deque()

    def add(self, last: int) -> None:
        if len(self.buffer) >= self.size:
            raise AssertionError("cannot add into a full inflights")
        self.buffer.append(last)

    def free_le(self, to: int) -> None:
        """Acknowledgement up to `to` frees every message whose last index is <= to."""
        b = self.buffer
        while b and b[0] <= to:
            b.popleft()

    def free_first_one(self) -> None:
        if self.buffer:
            self.buffer.popleft()

    def full(self) -> bool:
        return len(self.buffer) >= self.size

    def count(self) -> int:
        return len(self.buffer)

    def reset(self) -> None:
        self.buffer.clear()


class Progress:
    __slots__ = ("match", "next", "state", "pending_snapshot", "recent_active", "probe_sent",
                 "inflights", "is_learner")

    def __init__(self, match: int, next_: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = match
        self.next = next_
        self.state = ProgressStateType.PROBE
        # Index of the snapshot in flight while in SNAPSHOT state.
        self.pending_snapshot = 0
        # Heard from since the last check-quorum round (the leader's lease evidence).
        self.recent_active = False
        # In PROBE, only one append is outstanding until the follower answers (or a heartbeat does).
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def __repr__(self) -> str:
        s = f"{self.state.name} match={self.match} next={self.next}"
        if self.is_learner:
            s += " learner"
        if self.state == ProgressStateType.SNAPSHOT:
            s += f" pendingSnap={self.pending_snapshot}"
        if not self.recent_active:
            s += " inactive"
        if self.inflights.count():
            s += f" inflight={self.inflights.count()}"
            if self.inflights.full():
                s += "[full]"
        return s

    def _reset_state(self, state: ProgressStateType) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        # Coming back from a snapshot, start probing right after it; otherwise after what matches.
        if self.state == ProgressStateType.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressStateType.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressStateType.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressStateType.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressStateType.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """An acknowledgement of index n arrived; return whether it moved match forward."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def optimistic_update(self, n: int) -> None:
        self.next = n + 1

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A MsgApp at index `rejected` was refused; back off next using the follower's hint."""
        if self.state == ProgressStateType.REPLICATE:
            # A rejection of something already matched is stale (reordered); ignore it.
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        # In probe state only the rejection of the probe we last sent (next-1) is meaningful.
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        st = self.state
        if st == ProgressStateType.REPLICATE:
            return self.inflights.full()
        if st == ProgressStateType.PROBE:
            return self.probe_sent
        return True
