"""Auto-compaction: etcd's `--auto-compaction-mode` and `--auto-compaction-retention`.

The policies are pure (a clock value and the current revision in, a compaction revision or None out), so
tests drive them with a fake clock; `run_compactor` is the loop around one. Every member runs the loop
and records revisions, as etcd's compactors do while paused, but only the leader proposes the
`CompactionRequest` through Raft.

- periodic: keep `retention` of history. Revisions are sampled every tenth of min(retention, 1 h); once
  `retention` has passed since the last success, compact at the oldest sample (about `retention` ago),
  then again every min(retention, 1 h).
- revision: every 5 minutes compact at `current - retention` (keep the last `retention` revisions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from etcdpy.app.config import ConfigError, parse_duration

log = logging.getLogger("etcdpy.compactor")

HOUR = 3600.0
RETRY_DIVISOR = 10
REVISION_INTERVAL = 300.0  # etcd's revInterval


def parse_retention(mode: str, retention: str) -> float:
    """etcd's parseCompactionRetention: a bare integer is hours (periodic) or revisions (revision);
    otherwise a Go duration (for revision mode, counted in nanoseconds, as etcd does)."""
    if mode not in ("periodic", "revision"):
        raise ConfigError(f"unknown auto-compaction-mode {mode!r}")
    text = retention.strip() or "0"
    if text.isdigit():
        return float(int(text)) * (HOUR if mode == "periodic" else 1)
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"error parsing CompactionRetention: {exc}") from None
    return seconds if mode == "periodic" else seconds * 1e9


@dataclass
class PeriodicPolicy:
    period: float  # seconds of history to keep
    revs: list[int] = field(default_factory=list)
    last_success: float | None = None
    base_interval: float = 0.0

    @property
    def compact_interval(self) -> float:
        return min(self.period, HOUR)

    @property
    def interval(self) -> float:
        """How often `tick` is called (etcd's retry interval)."""
        return self.compact_interval / RETRY_DIVISOR

    @property
    def retentions(self) -> int:
        return int(self.period / self.interval) + 1

    def start(self, now: float, rev: int) -> None:
        self.last_success = now
        self.base_interval = self.period
        self.revs = [rev]

    def tick(self, now: float, rev: int, leader: bool) -> int | None:
        """Called every `interval`: the revision to compact at now, or None. `rev` is sampled after."""
        if self.last_success is None:
            self.start(now, rev)
            return None
        candidate: int | None = None
        if leader and now - self.last_success >= self.base_interval:
            # After the first `period`, compact every compact_interval (at most hourly).
            self.base_interval = self.compact_interval
            candidate = self.revs[0]
        self._sample(rev)
        return candidate

    def _sample(self, rev: int) -> None:
        self.revs.append(rev)
        if len(self.revs) > self.retentions:
            self.revs = self.revs[1:]  # revs[0] is the revision about `period` ago

    def done(self, now: float, ok: bool) -> None:
        if ok:
            self.last_success = now


@dataclass
class RevisionPolicy:
    retention: int  # revisions of history to keep
    prev: int = 0
    interval: float = REVISION_INTERVAL

    def tick(self, now: float, rev: int, leader: bool) -> int | None:
        target = rev - self.retention
        if not leader or target <= 0 or target == self.prev:
            return None
        return target

    def done(self, now: float, ok: bool, rev: int = 0) -> None:
        if ok and rev:
            self.prev = rev


Policy = PeriodicPolicy | RevisionPolicy


def make_policy(mode: str, retention: str) -> Policy | None:
    """The configured policy, or None when auto-compaction is off (retention 0)."""
    value = parse_retention(mode, retention)
    if value <= 0:
        return None
    if mode == "periodic":
        return PeriodicPolicy(value)
    return RevisionPolicy(int(value))


async def run_compactor(policy: Policy, clock: Callable[[], float], revision: Callable[[], int],
                        is_leader: Callable[[], bool], compact: Callable[[int], Awaitable[bool]],
                        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Tick the policy forever; `compact(rev)` proposes the compaction and says whether it succeeded
    (an already-compacted revision counts as success, as in etcd)."""
    if isinstance(policy, PeriodicPolicy):
        policy.start(clock(), revision())
    while True:
        await sleep(policy.interval)
        target = policy.tick(clock(), revision(), is_leader())
        if target is None:
            continue
        log.info("starting auto compaction at revision %d", target)
        ok = await compact(target)
        if isinstance(policy, RevisionPolicy):
            policy.done(clock(), ok, target)
        else:
            policy.done(clock(), ok)
