"""ProgressTracker: the current (possibly joint) configuration, per-peer Progress and votes."""

from __future__ import annotations

from collections.abc import Callable

from etcdpy.raft.progress import Progress
from etcdpy.raft.quorum import JointConfig, MajorityConfig, VoteResult
from etcdpy.raft.types import ConfState


class TrackerConfig:
    __slots__ = ("voters", "auto_leave", "learners", "learners_next")

    def __init__(self) -> None:
        self.voters = JointConfig()
        # Leave the joint configuration automatically once it is committed.
        self.auto_leave = False
        self.learners: set[int] = set()
        # Outgoing voters that turn into learners when the joint config is left; a node cannot be
        # a voter and a learner at once, so the demotion waits for the leave.
        self.learners_next: set[int] = set()

    def __repr__(self) -> str:
        s = f"voters={self.voters!r}"
        if self.learners:
            s += " learners=(" + " ".join(str(i) for i in sorted(self.learners)) + ")"
        if self.learners_next:
            s += " learners_next=(" + " ".join(str(i) for i in sorted(self.learners_next)) + ")"
        if self.auto_leave:
            s += " autoleave"
        return s

    def clone(self) -> TrackerConfig:
        c = TrackerConfig()
        c.voters = JointConfig(
            MajorityConfig(self.voters.incoming.ids), MajorityConfig(self.voters.outgoing.ids)
        )
        c.auto_leave = self.auto_leave
        c.learners = set(self.learners)
        c.learners_next = set(self.learners_next)
        return c


class ProgressTracker:
    __slots__ = ("config", "progress", "votes", "max_inflight")

    def __init__(self, max_inflight: int) -> None:
        self.config = TrackerConfig()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight = max_inflight

    def conf_state(self) -> ConfState:
        c = self.config
        return ConfState(
            voters=sorted(c.voters.incoming.ids),
            learners=sorted(c.learners),
            voters_outgoing=sorted(c.voters.outgoing.ids),
            learners_next=sorted(c.learners_next),
            auto_leave=c.auto_leave,
        )

    def is_singleton(self) -> bool:
        return len(self.config.voters.incoming) == 1 and not self.config.voters.outgoing.ids

    def committed(self) -> int:
        prs = self.progress

        def acked(i: int) -> int | None:
            pr = prs.get(i)
            return pr.match if pr is not None else None

        return self.config.voters.committed_index(acked)

    def visit(self, f: Callable[[int, Progress], None]) -> None:
        # Sorted for determinism: traces and simulations must not depend on dict order.
        for i in sorted(self.progress):
            f(i, self.progress[i])

    def quorum_active(self) -> bool:
        votes = {i: pr.recent_active for i, pr in self.progress.items() if not pr.is_learner}
        return self.config.voters.vote_result(votes) == VoteResult.WON

    def voter_nodes(self) -> list[int]:
        return sorted(self.config.voters.ids())

    def learner_nodes(self) -> list[int]:
        return sorted(self.config.learners)

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, id_: int, v: bool) -> None:
        if id_ not in self.votes:
            self.votes[id_] = v

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = rejected = 0
        for i, pr in self.progress.items():
            if pr.is_learner:
                continue
            v = self.votes.get(i)
            if v is None:
                continue
            if v:
                granted += 1
            else:
                rejected += 1
        return granted, rejected, self.config.voters.vote_result(self.votes)
