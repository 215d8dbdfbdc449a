"""Settings for the whole test run."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # etcd and etcdpy both read ETCD_<FLAG> variables as flags: a developer's exported ETCD_NAME or
    # ETCD_DATA_DIR would change every server the tests start and every `parse_args` they call.
    for name in [n for n in os.environ if n.startswith("ETCD_")]:
        del os.environ[name]
