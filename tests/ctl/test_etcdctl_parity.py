"""etcdctl vs etcdpyctl, byte for byte: the same script against real etcd with both tools, and with
etcdpyctl against etcdpy.

Three runs, each on its own fresh server (so revisions line up without normalisation):
etcdctl → etcd, etcdpyctl → etcd, etcdpyctl → etcdpy. Every step's stdout, stderr (the ``Error:``
lines; etcdctl's zap warnings aside) and exit code must agree after ids, ports and durations are
replaced by placeholders (see runner.py).

Sections etcdpy does not serve yet run against etcd only. When its server grows the API, add the
section's name to ETCDPY_SECTIONS — that is the whole change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ctl.runner import Result, Run, run_sections
from tests.ctl.script import SECTIONS, Section
from tests.servers import Server, start_etcd, start_etcdpy

ETCDPY_SECTIONS = {"kv", "watch", "lease", "cluster", "maintenance", "auth", "concurrency"}
# etcd's snapshot file is a bolt database and etcdpy's is not (docs/snapshot-format.md): `snapshot
# status` is compared on etcd's file only; test_extensions.py checks it on etcdpy's.
ETCDPY_PENDING = {"snapshot-file"}

assert ETCDPY_SECTIONS | ETCDPY_PENDING == {s.name for s in SECTIONS}


def _run(tool: str, server: Server, workdir: Path, only: set[str] | None = None) -> dict[str, Result]:
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(tool=tool, endpoint=server.url.removeprefix("http://"), workdir=workdir)
    run.learn_cluster()

    def wanted(section: Section) -> bool:
        return only is None or section.name in only

    return run_sections(run, SECTIONS, wanted)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Result]]]:
    base = tmp_path_factory.mktemp("ctl")
    results: dict[str, dict[str, Result]] = {}
    for name, tool, start, only in (("etcdctl@etcd", "etcdctl", start_etcd, None),
                                    ("etcdpyctl@etcd", "etcdpyctl", start_etcd, None),
                                    ("etcdpyctl@etcdpy", "etcdpyctl", start_etcdpy, ETCDPY_SECTIONS)):
        server = start(base / name.replace("@", "-"), name="ref")
        try:
            results[name] = _run(tool, server, base / f"{name}-work".replace("@", "-"), only)
        finally:
            server.stop()
    yield results


def _diff(want: dict[str, Result], got: dict[str, Result]) -> str:
    bad = []
    for step_id, result in got.items():
        ref = want[step_id]
        if (ref.stdout, ref.stderr, ref.code) != (result.stdout, result.stderr, result.code):
            bad.append(f"--- {step_id}\netcdctl:\n{ref.show()}etcdpyctl:\n{result.show()}")
    return "\n".join(bad)


@pytest.mark.parametrize("section", [s.name for s in SECTIONS])
def test_etcdpyctl_matches_etcdctl_on_etcd(runs: dict[str, dict[str, Result]], section: str) -> None:
    want = {k: v for k, v in runs["etcdctl@etcd"].items() if k.startswith(section + "#")}
    got = {k: v for k, v in runs["etcdpyctl@etcd"].items() if k.startswith(section + "#")}
    assert want, "the section ran"
    diff = _diff(want, got)
    assert not diff, diff


@pytest.mark.parametrize("section", sorted(ETCDPY_SECTIONS))
def test_etcdpyctl_on_etcdpy_matches_etcdctl_on_etcd(runs: dict[str, dict[str, Result]],
                                                     section: str) -> None:
    want = {k: v for k, v in runs["etcdctl@etcd"].items() if k.startswith(section + "#")}
    got = {k: v for k, v in runs["etcdpyctl@etcdpy"].items() if k.startswith(section + "#")}
    assert got, "the section ran"
    diff = _diff(want, got)
    assert not diff, diff
