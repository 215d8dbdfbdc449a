"""Fixtures for the lock and election tests: the conformance suite's pair of servers (real etcd and
etcdpy, one of each per session) and a plain HTTP client."""

from __future__ import annotations

from tests.conformance.conftest import candidate, etcd, etcdpy, reference

__all__ = ["candidate", "etcd", "etcdpy", "reference"]
