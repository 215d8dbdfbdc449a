"""The cluster version and the downgrade protection, as etcd 3.4 keeps them.

Each member serves its own version (`GET /version` on its peer URL). The leader polls them
(etcd's `monitorVersions`) and proposes the lowest, as `major.minor.0`, through the log
(`ClusterVersionSetRequest`, etcd's `updateClusterVersion`); every member applies it and persists it in
MVCC's `meta` family. As in etcd 3.4 it only ever goes up by itself: once every member runs a newer
minor version, the cluster moves to it.

A member never runs below the cluster version (etcd's `mustDetectDowngrade`): one whose version is lower
than the cluster's refuses to start on its data, refuses to join a running cluster whose version is
higher (etcd's `isCompatibleWithCluster`), and stops if the log sets a higher version than its own —
unless a downgrade to its version is enabled (etcd 3.5's downgrade job, `server.downgrade` when present).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from etcdpy.app.logs import event
from etcdpy.storage.mvcc import MVCCStore

log = logging.getLogger("etcdpy.server")

META_CLUSTER_VERSION = b"cluster_version"
MIN_CLUSTER_VERSION = "3.0.0"  # etcd's version.MinClusterVersion: what an undecidable cluster starts at
MONITOR_INTERVAL_S = 4.0  # etcd: rafthttp.ConnWriteTimeout - 1 s
UNDECIDED_INTERVAL_S = 0.1  # until the first decision, look again soon (start-up should not wait 4 s)
FIRST_DECISION_TRIES = 30  # members still unreachable after these looks are left out, as etcd does

_SEMVER = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?")


class VersionError(Exception):
    """This member's version cannot run in this cluster; the message is etcd's."""


def parse(version: str) -> tuple[int, int, int]:
    m = _SEMVER.fullmatch(version.strip())
    if m is None:
        raise ValueError(f"invalid version {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def cluster_form(version: str) -> str:
    """etcd's cluster versions keep major.minor only: `3.4.23` -> `3.4.0`."""
    major, minor, _ = parse(version)
    return f"{major}.{minor}.0"


def minor_of(version: str) -> tuple[int, int]:
    major, minor, _ = parse(version)
    return major, minor


@dataclass
class ClusterVersionSetRequest:
    """A log command: the cluster version is now `version` (major.minor.0)."""

    version: str


class ClusterVersion:
    """The cluster version as the log decided it; "" until decided (etcd's `not_decided`)."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.value = ""
        self.reload()

    def reload(self) -> None:
        data = self.store.get_meta(META_CLUSTER_VERSION)
        self.value = msgpack.unpackb(data) if data else ""

    def apply(self, index: int, req: ClusterVersionSetRequest) -> None:
        if index <= self.store.applied_index:
            return
        self.value = req.version
        self.store.commit_meta(index, {META_CLUSTER_VERSION: msgpack.packb(req.version)})

    def text(self) -> str:
        """What /version says: the version, or etcd's `not_decided`."""
        return self.value or "not_decided"

    def minor_text(self) -> str:
        """`3.4` for the etcd_cluster_version metric's label; "" until decided."""
        if not self.value:
            return ""
        major, minor = minor_of(self.value)
        return f"{major}.{minor}"


def downgrade_allows(local: str, downgrade: Any) -> bool:
    """Whether an enabled downgrade job targets this member's minor version (etcd 3.5)."""
    if downgrade is None or not getattr(downgrade, "enabled", False):
        return False
    target = getattr(downgrade, "target", "")
    try:
        return bool(target) and minor_of(target) == minor_of(local)
    except ValueError:
        return False


def check_runs_in(local: str, cluster: str, downgrade: Any = None) -> None:
    """etcd's mustDetectDowngrade: refuse to run below the cluster version (unless downgrading to us)."""
    if not cluster or minor_of(local) >= minor_of(cluster) or downgrade_allows(local, downgrade):
        return
    event(log, logging.CRITICAL, "invalid downgrade; server version is lower than determined cluster version",
          f"cluster cannot be downgraded (current version: {local} is lower than determined cluster "
          f"version: {cluster_form(cluster)[:-2]}).",
          current_server_version=local, determined_cluster_version=cluster_form(cluster)[:-2])
    raise VersionError(f"cluster cannot be downgraded (current version: {local} is lower than determined "
                       f"cluster version: {cluster_form(cluster)[:-2]}).")


def check_can_join(local: str, remote: list[tuple[int, str]], downgrade_enabled: bool,
                   downgrade_target: str = "") -> None:
    """etcd's isCompatibleWithCluster for a member joining a running cluster: no remote member may run a
    cluster version above this member's version (`remote`: (member id, its cluster version))."""
    allowed = downgrade_enabled and bool(downgrade_target) and minor_of(downgrade_target) == minor_of(local)
    for member_id, cluster in remote:
        if not cluster or allowed:
            continue
        if minor_of(cluster) > minor_of(local):
            event(log, logging.WARNING, "cluster version of remote member is not compatible; too high",
                  f"the running cluster version({cluster_form(cluster)}) is higher than the maximum cluster "
                  f"version({local}) supported",
                  remote_member_id=f"{member_id:x}", remote_member_cluster_version=cluster_form(cluster),
                  minimum_cluster_version_supported=MIN_CLUSTER_VERSION)
            raise VersionError("incompatible with current running cluster")


def decide(versions: dict[int, str | None]) -> str | None:
    """etcd's decideClusterVersion: the lowest known member version (unknown members are skipped)."""
    known = [v for v in versions.values() if v]
    if not known:
        return None
    return cluster_form(min(known, key=parse))


async def monitor_versions(
    is_leader: Callable[[], bool],
    member_versions: Callable[[], Awaitable[dict[int, str | None]]],
    current: Callable[[], str],
    propose: Callable[[ClusterVersionSetRequest], Awaitable[Any]],
    wake: asyncio.Event,
) -> None:
    """The leader's loop: decide the cluster version from the members' and propose it when it rises.
    `wake` is set when this member becomes leader (etcd's forceVersionC): a new leader decides at once,
    so a fresh cluster answers /version with its version right after it has a leader."""
    tries = 0
    while True:
        try:
            await asyncio.wait_for(wake.wait(), UNDECIDED_INTERVAL_S if not current() else MONITOR_INTERVAL_S)
        except TimeoutError:
            pass
        wake.clear()
        if not is_leader():
            continue
        versions = await member_versions()
        decided = decide(versions)
        if not current():
            tries += 1
            if any(v is None for v in versions.values()) and tries < FIRST_DECISION_TRIES:
                continue  # let every member answer before the first decision
            target = decided or MIN_CLUSTER_VERSION
        elif decided is not None and parse(decided) > parse(current()):
            target = decided
        else:
            continue
        try:
            await propose(ClusterVersionSetRequest(target))
            log.debug("proposed cluster version %s", target[:-2])
        except Exception as exc:  # noqa: BLE001 - no leader, a timeout: try again on the next round
            log.debug("setting the cluster version to %s failed: %s", target, exc)
