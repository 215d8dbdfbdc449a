"""Changer: computes the configuration (and Progress map) that results from a membership change.

Supports simple changes (at most one voter added or removed, etcd's ConfChange v1) and
joint consensus (enter a joint config of old and new voters, later leave it). It never
mutates the tracker it was given; the caller swaps in the result.
"""

from __future__ import annotations

from etcdpy.raft.errors import ErrConfChangeInvalid
from etcdpy.raft.progress import Progress
from etcdpy.raft.quorum import JointConfig, MajorityConfig
from etcdpy.raft.tracker import ProgressTracker, TrackerConfig
from etcdpy.raft.types import ConfChangeSingle, ConfChangeType, ConfState

ProgressMap = dict[int, Progress]


class Changer:
    __slots__ = ("tracker", "last_index")

    def __init__(self, tracker: ProgressTracker, last_index: int) -> None:
        self.tracker = tracker
        self.last_index = last_index

    def _copy(self) -> tuple[TrackerConfig, ProgressMap]:
        return self.tracker.config.clone(), dict(self.tracker.progress)

    def enter_joint(self, auto_leave: bool, ccs: list[ConfChangeSingle]) -> tuple[TrackerConfig, ProgressMap]:
        cfg, prs = self._copy()
        if cfg.voters.outgoing.ids:
            raise ErrConfChangeInvalid("config is already joint")
        if not cfg.voters.incoming.ids:
            # A joint config with an empty half would let the other half decide alone.
            raise ErrConfChangeInvalid("can't make a zero-voter config joint")
        cfg.voters.outgoing = MajorityConfig(cfg.voters.incoming.ids)
        self._apply(cfg, prs, ccs)
        cfg.auto_leave = auto_leave
        return cfg, prs

    def leave_joint(self) -> tuple[TrackerConfig, ProgressMap]:
        cfg, prs = self._copy()
        if not cfg.voters.outgoing.ids:
            raise ErrConfChangeInvalid("can't leave a non-joint config")
        for id_ in cfg.learners_next:
            cfg.learners.add(id_)
            prs[id_].is_learner = True
        cfg.learners_next = set()
        for id_ in cfg.voters.outgoing.ids:
            if id_ not in cfg.voters.incoming.ids and id_ not in cfg.learners:
                del prs[id_]
        cfg.voters.outgoing = MajorityConfig()
        cfg.auto_leave = False
        return cfg, prs

    def simple(self, ccs: list[ConfChangeSingle]) -> tuple[TrackerConfig, ProgressMap]:
        cfg, prs = self._copy()
        if cfg.voters.outgoing.ids:
            raise ErrConfChangeInvalid("can't apply simple config change in joint config")
        before = set(cfg.voters.incoming.ids)
        self._apply(cfg, prs, ccs)
        if len(before ^ cfg.voters.incoming.ids) > 1:
            # Two majorities of different configs may not overlap: that needs joint consensus.
            raise ErrConfChangeInvalid("more than one voter changed without entering joint config")
        return cfg, prs

    def _apply(self, cfg: TrackerConfig, prs: ProgressMap, ccs: list[ConfChangeSingle]) -> None:
        for cc in ccs:
            if cc.node_id == 0:
                continue
            if cc.type == ConfChangeType.ADD_NODE:
                self._make_voter(cfg, prs, cc.node_id)
            elif cc.type == ConfChangeType.ADD_LEARNER_NODE:
                self._make_learner(cfg, prs, cc.node_id)
            elif cc.type == ConfChangeType.REMOVE_NODE:
                self._remove(cfg, prs, cc.node_id)
            else:
                raise ErrConfChangeInvalid(f"unexpected conf type {cc.type}")
        if not cfg.voters.incoming.ids:
            raise ErrConfChangeInvalid("removed all voters")

    def _init_progress(self, cfg: TrackerConfig, prs: ProgressMap, id_: int, is_learner: bool) -> None:
        if is_learner:
            cfg.learners.add(id_)
        else:
            cfg.voters.incoming.ids.add(id_)
        # Start probing at the end of our log; treat the new node as active so that adding it does
        # not immediately make a check-quorum leader step down.
        pr = Progress(0, max(self.last_index, 1), self.tracker.max_inflight, is_learner)
        pr.recent_active = True
        prs[id_] = pr

    def _make_voter(self, cfg: TrackerConfig, prs: ProgressMap, id_: int) -> None:
        pr = prs.get(id_)
        if pr is None:
            self._init_progress(cfg, prs, id_, False)
            return
        pr.is_learner = False
        cfg.learners.discard(id_)
        cfg.learners_next.discard(id_)
        cfg.voters.incoming.ids.add(id_)

    def _make_learner(self, cfg: TrackerConfig, prs: ProgressMap, id_: int) -> None:
        pr = prs.get(id_)
        if pr is None:
            self._init_progress(cfg, prs, id_, True)
            return
        if pr.is_learner:
            return
        self._remove(cfg, prs, id_)
        prs[id_] = pr
        if id_ in cfg.voters.outgoing.ids:
            cfg.learners_next.add(id_)
        else:
            pr.is_learner = True
            cfg.learners.add(id_)

    def _remove(self, cfg: TrackerConfig, prs: ProgressMap, id_: int) -> None:
        if id_ not in prs:
            return
        cfg.voters.incoming.ids.discard(id_)
        cfg.learners.discard(id_)
        cfg.learners_next.discard(id_)
        # A node still voting in the outgoing config keeps its Progress until the joint config is left.
        if id_ not in cfg.voters.outgoing.ids:
            del prs[id_]


def restore(tracker: ProgressTracker, last_index: int, cs: ConfState) -> tuple[TrackerConfig, ProgressMap]:
    """Rebuild the configuration described by cs by replaying the changes that lead to it."""
    outgoing = [ConfChangeSingle(ConfChangeType.ADD_NODE, i) for i in cs.voters_outgoing]
    incoming = [ConfChangeSingle(ConfChangeType.REMOVE_NODE, i) for i in cs.voters_outgoing]
    incoming += [ConfChangeSingle(ConfChangeType.ADD_NODE, i) for i in cs.voters]
    incoming += [ConfChangeSingle(ConfChangeType.ADD_LEARNER_NODE, i) for i in cs.learners]
    incoming += [ConfChangeSingle(ConfChangeType.ADD_LEARNER_NODE, i) for i in cs.learners_next]

    def step(apply: list[ConfChangeSingle], joint: bool) -> None:
        ch = Changer(tracker, last_index)
        cfg, prs = ch.enter_joint(cs.auto_leave, apply) if joint else ch.simple(apply)
        tracker.config, tracker.progress = cfg, prs

    if not outgoing:
        for cc in incoming:
            step([cc], False)
    else:
        for cc in outgoing:
            step([cc], False)
        step(incoming, True)
    return tracker.config, tracker.progress


__all__ = ["Changer", "restore", "JointConfig"]
