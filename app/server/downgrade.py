"""The cluster's downgrade job, as etcd 3.5's Maintenance.Downgrade keeps it (validate, enable, cancel).

etcdpy serves one API version, so a downgrade never changes what it speaks; it keeps etcd's bookkeeping
and checks so operators' tooling sees etcd's answers: the only allowed target is one minor version below
the cluster version, one job at a time, and the job state is decided by the log (`DowngradeInfoSetRequest`)
and persisted in MVCC's `meta` family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgpack

from etcdpy.storage.mvcc import MVCCStore

META_DOWNGRADE = b"downgrade"
VALIDATE, ENABLE, CANCEL = 0, 1, 2

# coreos/go-semver, which etcd uses: MAJOR.MINOR.PATCH with optional pre-release and build metadata.
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


class WrongVersionFormat(ValueError):
    """The target is not a version etcd can parse (MAJOR.MINOR or MAJOR.MINOR.PATCH)."""


def cluster_minor(version: str) -> tuple[int, int]:
    """etcd's convertToClusterVersion: accept `3.4` or `3.4.x`, keep major and minor."""
    for text in (version, version + ".0"):
        m = _SEMVER.fullmatch(text)
        if m is not None:
            return int(m.group(1)), int(m.group(2))
    raise WrongVersionFormat(version)


def allowed_target(cluster_version: str) -> tuple[int, int]:
    """etcd's AllowedDowngradeVersion: one minor version below the cluster's."""
    major, minor = cluster_minor(cluster_version)
    return major, minor - 1


@dataclass
class DowngradeInfoSetRequest:
    """A log command: start (enabled, with the target `major.minor.0`) or cancel the downgrade job."""

    enabled: bool
    version: str = ""


class DowngradeState:
    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.enabled = False
        self.target = ""
        self.reload()

    def reload(self) -> None:
        data = self.store.get_meta(META_DOWNGRADE)
        self.enabled, self.target = msgpack.unpackb(data) if data else (False, "")

    def apply(self, index: int, req: DowngradeInfoSetRequest) -> None:
        self.enabled, self.target = req.enabled, req.version if req.enabled else ""
        self.store.commit_meta(index, {META_DOWNGRADE: msgpack.packb([self.enabled, self.target])})
