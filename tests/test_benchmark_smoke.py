"""Smoke tests for etcdpy-benchmark: every workload briefly against a real etcd 3.4 started here (and
against etcdpy when `python -m app` exists). Counts and zero errors are asserted; speed never is."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from etcdpy.app.peer.http_client import HttpConn
from etcdpy.bench import compare, disk_probe, loadmode, workloads
from etcdpy.bench.result import Result
from etcdpy.bench.servers import ETCD_BIN, Cluster
from etcdpy.bench.stats import Latency
from etcdpy.bench.watch import KeyPlan, check_counts
from etcdpy.bench.workloads import Spec

KINDS = ["etcd", "etcdpy"]


def test_tools_are_installed() -> None:
    """wrk drives the load and etcd is the reference: .ci/run installs both, so their absence fails."""
    assert shutil.which("wrk") is not None and Path(ETCD_BIN).exists()


@pytest.fixture(scope="module", params=KINDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(request.param, 1, tmp_path_factory.mktemp(request.param))
    c.start()
    yield c
    c.stop()


async def _post(endpoint: str, path: str, body: dict[str, object]) -> dict[str, object]:
    conn = HttpConn(endpoint)
    try:
        status, data = await conn.post(path, orjson.dumps(body))
        assert status == 200, data
        return dict(orjson.loads(data))
    finally:
        await conn.close()


def revision(c: Cluster) -> int:
    hdr = asyncio.run(_post(c.endpoints[0], "/v3/kv/range", {"key": "AA=="}))["header"]
    assert isinstance(hdr, dict)
    return int(hdr["revision"])


def spec(workload: str, **kw: object) -> Spec:
    base: dict[str, object] = dict(workload=workload, conns=8, total=300, duration_s=None, key_space=100,
                                   threads=1, val_size=32)
    base.update(kw)
    return Spec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("workload", ["put", "txn-put"])
def test_writes_count_matches_revisions(server: Cluster, workload: str) -> None:
    s = spec(workload)
    before = revision(server)
    r = workloads.run(s, server.endpoints, show_progress=False)
    delta = revision(server) - before
    assert r.errors == {}
    assert r.requests >= 300
    assert r.latency.count == pytest.approx(r.requests, rel=0.01)
    # every counted write made one revision; requests cut off at the stop may add one per connection
    assert r.requests <= delta <= r.requests + s.conns


def assert_read_only_run(server: Cluster, s: Spec) -> None:
    """Prefill, run the workload: every request answered without error, and no revision created."""
    workloads.prefill(server.endpoints, s)
    before = revision(server)
    r = workloads.run(s, server.endpoints, show_progress=False)
    assert r.errors == {}
    assert r.requests >= 300
    assert revision(server) == before


@pytest.mark.parametrize("consistency", ["l", "s"])
def test_range_writes_nothing(server: Cluster, consistency: str) -> None:
    assert_read_only_run(server, spec("range", consistency=consistency))


def test_txn_mixed(server: Cluster) -> None:
    # Prefilled keys and an all-read branch: no writes at all.
    assert_read_only_run(server, spec("txn-mixed", read_ratio=1.0))


def test_duration_mode(server: Cluster) -> None:
    r = workloads.run(spec("put", total=None, duration_s=1.0), server.endpoints, show_progress=False)
    assert r.errors == {}
    assert r.requests > 0
    assert 0.9 <= r.duration_s <= 3.0


def test_watch_delivers_every_event(server: Cluster) -> None:
    s = spec("watch", conns=2, watchers=3, total=40, rate=200.0, procs=2)
    r = workloads.run(s, server.endpoints, show_progress=False)
    assert r.errors == {}
    assert r.extra["puts"] == 40
    assert r.requests == r.extra["expected_events"] == 40 * 6
    assert r.latency.count == 240


def test_watch_spread_delivers_each_event_once(server: Cluster) -> None:
    """4 streams x 5 watchers, each on its own key; 50 puts to random watched keys: 50 events in all."""
    s = spec("watch", conns=4, watchers=5, total=50, rate=200.0, procs=2, spread=True)
    r = workloads.run(s, server.endpoints, show_progress=False)
    assert r.errors == {}  # includes the per-watcher exactly-once check (missing / duplicate events)
    assert r.extra["watchers"] == r.extra["keys"] == 20
    assert r.extra["puts"] == 50
    assert r.requests == r.extra["events"] == r.extra["expected_events"] == 50
    assert r.latency.count == 50 and r.latency.min > 0
    # The puts really went to many distinct watched keys, and the server holds exactly 50 of them.
    prefix = KeyPlan(b"watch/spread/", True, 20).key
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    kvs = asyncio.run(_post(server.endpoints[0], "/v3/kv/range",
                            {"key": base64.b64encode(prefix).decode(),
                             "range_end": base64.b64encode(end).decode()})).get("kvs", [])
    assert isinstance(kvs, list) and len(kvs) > 5
    assert sum(int(kv["version"]) for kv in kvs) == 50


def test_watch_count_check_flags_missing_and_duplicate_events() -> None:
    expected = [3, 0, 2]  # puts per key slot
    assert check_counts(expected, [(0, 3), (1, 0), (2, 2)]) == {}
    assert check_counts(expected, [(0, 2), (1, 0), (2, 2)]) == {"missing events": 1}
    assert check_counts(expected, [(0, 3), (1, 1), (2, 2)]) == {"duplicate events": 1}
    # One key: every watcher is on slot 0; a short watcher and a long one do not cancel out.
    assert check_counts([5], [(0, 5), (0, 4), (0, 6)]) == {"missing events": 1, "duplicate events": 1}


def test_watch_key_plan() -> None:
    spread = KeyPlan(b"p/", True, 10_000)
    assert spread.slots == 10_000 and spread.slot(9_999) == 9_999
    assert spread.key_of(7) == b"p/0007"
    assert len({spread.key_of(i) for i in range(spread.slots)}) == 10_000
    one = KeyPlan(b"k", False, 100)
    assert one.slots == 1 and one.slot(99) == 0 and one.key_of(one.slot(42)) == b"k"


def test_lease_keepalive_exact_count(server: Cluster) -> None:
    before = asyncio.run(_post(server.endpoints[0], "/v3/lease/leases", {})).get("leases", [])
    r = workloads.run(spec("lease-keepalive", conns=4, total=200), server.endpoints, show_progress=False)
    assert r.errors == {}
    assert r.requests == 200
    after = asyncio.run(_post(server.endpoints[0], "/v3/lease/leases", {})).get("leases", [])
    assert after == before  # the benchmark revoked the leases it granted


def test_cli_json(server: Cluster, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "etcdpy.bench", "put", "--endpoints", server.endpoints[0], "--total", "200",
         "--conns", "4", "--threads", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True)
    data = json.loads(out.stdout)
    assert data["workload"] == "put"
    assert data["requests"] >= 200
    assert data["error_count"] == 0
    assert set(data["latency_us"]) >= {"p50", "p90", "p99", "p99.9"}


def _states(endpoints: list[str]) -> set[str]:
    """The run states (stat(5) field 3) of the server processes listening on `endpoints`."""
    ports = {e.rsplit(":", 1)[1] for e in endpoints}
    found = set()
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if any(arg.startswith(b"http://127.0.0.1:") and arg.rsplit(b":", 1)[1].decode() in ports
               for arg in cmdline) and b"--listen-client-urls" in cmdline:
            found.add(stat[stat.rindex(")") + 2])
    return found


def test_compare_alternates_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    base = spec("put", conns=4, total=200)
    servers = ("etcd", "etcdpy")
    seen: list[tuple[set[str], set[str]]] = []  # per run: states of the server under test, of the other
    real_run = workloads.run
    endpoints: list[list[str]] = []

    def run(s: Spec, eps: list[str], show_progress: bool = True) -> Any:
        if eps not in endpoints:
            endpoints.append(eps)
        other = [e for e in endpoints if e != eps]
        seen.append((_states(eps), _states(other[0]) if other else set()))
        return real_run(s, eps, show_progress=show_progress)
    monkeypatch.setattr(compare.workloads, "run", run)
    outcomes, start_errors, labels = compare.run_compare(["put-latency-1"], base, rounds=2, servers=servers,
                                                         quiet=True, pause_s=0.0)
    assert start_errors == {}
    # The server not under test is stopped (T) for the run, the one under test is not.
    assert len(seen) == 4 and all("T" not in mine for mine, _ in seen)
    assert all(others == {"T"} for _, others in seen[1:])
    (oc,) = outcomes
    for label in labels:
        assert len(oc.runs[label]) == 2
        assert all(run.result.error_count == 0 and run.cpu_s > 0 and run.rss > 0 for run in oc.runs[label])
    text = compare.render(outcomes, start_errors, labels, 2, 1)
    assert "put-latency-1" in text and "goal:" in text


def _fake_watch_run(p99_us: float, missing: int = 0) -> compare.Run:
    lat = Latency()
    for _ in range(100):
        lat.add(p99_us)
    res = Result(workload="watch", endpoints=["http://x"], conns=100, duration_s=10.0,
                 requests=10_000 - missing, latency=lat,
                 errors={"missing events": missing} if missing else {},
                 extra={"events": 10_000 - missing, "expected_events": 10_000, "achieved_put_rate": 1000.0})
    return compare.Run(result=res, cpu_s=5.0, rss=100_000_000)


def test_compare_reports_watch_10k_against_its_goal() -> None:
    ((name, s),) = compare.resolve(["watch-10k"], spec("put", total=None, duration_s=10.0))
    assert s.workload == "watch" and s.spread and s.conns * s.watchers == 10_000 and s.rate == 1000.0
    labels = ["etcd", "etcdpy"]

    def outcome(py: compare.Run) -> compare.ScenarioOutcome:
        runs = {"etcd": [_fake_watch_run(5000.0)], "etcdpy": [py]}
        return compare.ScenarioOutcome(name=name, spec=s, runs=runs)

    def goal_met(oc: compare.ScenarioOutcome) -> object:
        return compare.to_json([oc], {}, labels, 1, 1)["scenarios"][0]["goal"]["met"]

    met = outcome(_fake_watch_run(4000.0))
    text = compare.render([met], {}, labels, 1, 1)
    assert "watch-10k" in text and "distinct keys" in text and "events/s" in text
    assert "10,000/10,000 events delivered/expected" in text and "-> MET" in text
    scen = compare.to_json([met], {}, labels, 1, 1)["scenarios"][0]
    assert scen["goal"]["met"] is True and scen["medians"]["etcdpy"]["p99"] == pytest.approx(4000.0, rel=0.01)
    # A slower p99, or a single missing event, misses the goal.
    assert goal_met(outcome(_fake_watch_run(6000.0))) is False
    missed = outcome(_fake_watch_run(4000.0, missing=1))
    assert goal_met(missed) is False
    assert "missing events: 1" in compare.render([missed], {}, labels, 1, 1)


def test_load_and_restart() -> None:
    out = loadmode.run_load("etcd", keys=3000, key_size=16, val_size=100, conns=4, seed=1,
                            show_progress=False, settle_s=0.1)
    assert out.failure is None, out.failure
    assert out.errors == {}
    assert out.rss_after_load > 0 and out.restart_s is not None and out.restart_s > 0


def test_latency_from_wrk_grid_is_exact_at_grid_points() -> None:
    from etcdpy.bench.stats import WRK_PERCENTILES, Latency

    grid = [(p, 100.0 * p) for p in WRK_PERCENTILES]  # value = 100 µs x percentile
    lat = Latency.from_quantiles(grid, requests=10_000, mean_us=5000.0)
    assert lat.count == pytest.approx(10_000)
    for p in (50.0, 90.0, 99.0, 99.9):
        assert lat.percentile(p) == pytest.approx(100.0 * p, rel=0.005)
    merged = Latency.from_quantiles(grid, 10_000, 5000.0)
    merged.merge(lat)
    assert merged.percentile(99.0) == pytest.approx(9900.0, rel=0.005)
    assert sum(c for _, c in merged.histogram()) == pytest.approx(20_000)


def test_disk_probe_measures_synced_appends_and_compare_prints_it(tmp_path: Path) -> None:
    probe = disk_probe.probe(str(tmp_path), syncs=20)
    assert probe.syncs == 20 and 0 < probe.p50_us <= probe.p99_us
    assert list(tmp_path.iterdir()) == []  # its file is gone
    text = compare.render([], {}, ["etcd", "etcdpy"], 1, 1, disk=[probe, probe])
    assert text.startswith("disk (before, after): fdatasync after an 8 KiB append: p50 ")
    assert compare.to_json([], {}, ["etcd", "etcdpy"], 1, 1, disk=[probe])["disk"] == [probe.to_json()]
