"""Fixtures for the lock and election tests: the conformance suite's pair of servers (real etcd and
etcdpy, one of each per session) and the cluster tests' `cluster_factory`."""

from __future__ import annotations

from tests.cluster.conftest import cluster_factory, pytest_runtest_makereport
from tests.conformance.conftest import candidate, etcd, etcdpy, reference

__all__ = ["candidate", "cluster_factory", "etcd", "etcdpy", "pytest_runtest_makereport", "reference"]
