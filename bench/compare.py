"""Comparison mode: the same workloads against real etcd and etcdpy in one run.

Both servers are started once (fresh temp data dirs, the same flags) and the runs ALTERNATE
etcd, etcdpy, etcd, etcdpy ... for --rounds so slow drifts of this noisy machine hit both equally;
figures are medians across rounds. While one server runs, the other is stopped (SIGSTOP): idle, it
would still take CPU and wake up in the middle of the measured server's work. Each run also records
the server's CPU time (utime+stime from /proc/<pid>/stat, the server's process tree) and its RSS at
the end.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from etcdpy.bench import workloads
from etcdpy.bench.disk_probe import DiskProbe
from etcdpy.bench.goals import Goal, goal_for, verdict, verdict_text
from etcdpy.bench.report import errors_text, fmt_bytes, fmt_us
from etcdpy.bench.result import Result
from etcdpy.bench.servers import Cluster, ServerStartError
from etcdpy.bench.workloads import Spec

# The goals table; each name is a Spec override on top of the CLI options.
SCENARIOS: dict[str, dict[str, Any]] = {
    "put-64": {"workload": "put", "conns": 64},
    "range-64": {"workload": "range", "conns": 64, "consistency": "l"},
    "range-s-64": {"workload": "range", "conns": 64, "consistency": "s"},
    "put-latency-1": {"workload": "put", "conns": 1, "threads": 1},
    "put-256": {"workload": "put", "conns": 256},
    # 10,000 watchers at 1,000 puts/s: on one key that would be 10M events/s, so one key per watcher
    "watch-10k": {"workload": "watch", "conns": 100, "watchers": 100, "rate": 1000.0, "spread": True},
}
DEFAULT_SET = ("put-64", "range-64", "range-s-64", "put-latency-1", "put-256")
FIGURES = ("throughput", "p50", "p90", "p99", "p99.9")


@dataclass
class Run:
    result: Result
    cpu_s: float
    rss: int

    def figures(self) -> dict[str, float]:
        lat = self.result.latency
        return {
            "throughput": self.result.throughput,
            "p50": lat.percentile(50), "p90": lat.percentile(90),
            "p99": lat.percentile(99), "p99.9": lat.percentile(99.9),
            "errors": float(self.result.error_count),
            "cpu_s": self.cpu_s,
            "cores": self.cpu_s / self.result.duration_s if self.result.duration_s else 0.0,
            "rss": float(self.rss),
            "client_cores": float(self.result.extra.get("client_cpu_s", 0.0)) / self.result.duration_s
            if self.result.duration_s else 0.0,
        }


@dataclass
class ScenarioOutcome:
    name: str
    spec: Spec
    runs: dict[str, list[Run]] = field(default_factory=dict)  # server label -> runs
    failures: dict[str, str] = field(default_factory=dict)

    def medians(self, server: str) -> dict[str, float] | None:
        runs = self.runs.get(server)
        if not runs:
            return None
        figs = [r.figures() for r in runs]
        out = {k: statistics.median(f[k] for f in figs) for k in figs[0]}
        out["errors"] = sum(f["errors"] for f in figs)  # any error in any round counts
        out["rss"] = max(f["rss"] for f in figs)
        return out


def resolve(names: list[str], base: Spec, explicit_conns: bool = True) -> list[tuple[str, Spec]]:
    out = []
    for n in names or list(DEFAULT_SET):
        if n in SCENARIOS:
            out.append((n, replace(base, **SCENARIOS[n])))
        elif n in workloads.WORKLOADS:
            # watch fans out conns x watchers events per put: its default is 10 streams, not 64
            conns = base.conns if explicit_conns or n != "watch" else 10
            out.append((n, replace(base, workload=n, conns=conns)))
        else:
            raise ValueError(f"unknown scenario or workload {n!r}; scenarios: {', '.join(SCENARIOS)}; "
                             f"workloads: {', '.join(workloads.WORKLOADS)}")
    return out


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def run_compare(names: list[str], base: Spec, rounds: int = 3, cluster: int = 1,
                servers: tuple[str, ...] = ("etcd", "etcdpy"), quiet: bool = False,
                pause_s: float = 2.0, explicit_conns: bool = True
                ) -> tuple[list[ScenarioOutcome], dict[str, str], list[str]]:
    scenarios = resolve(names, base, explicit_conns)
    start_errors: dict[str, str] = {}
    clusters: dict[str, Cluster] = {}
    tmp = tempfile.TemporaryDirectory(prefix="etcdpy-bench-")
    outcomes = [ScenarioOutcome(name=n, spec=s) for n, s in scenarios]
    labels: list[str] = []
    try:
        for kind in servers:
            c = Cluster(kind, cluster, Path(tmp.name))
            labels.append(c.label)
            _log(f"starting {c.label} ...", quiet)
            try:
                c.start()
                clusters[c.label] = c
            except ServerStartError as e:
                start_errors[c.label] = str(e)
                _log(f"{c.label} did not start: {e}", quiet)
        for oc in outcomes:
            for rnd in range(rounds):
                for label, c in clusters.items():  # alternate servers inside every round
                    _log(f"[{oc.name}] round {rnd + 1}/{rounds} on {label}", quiet)
                    for other in clusters.values():
                        if other is not c:
                            other.pause()
                    c.resume()
                    # Let the resumed servers settle (peers redial links that timed out while stopped)
                    # and the last run's background work (fsync, compaction) finish.
                    time.sleep(pause_s)
                    try:
                        cpu0 = c.cpu_seconds()
                        res = workloads.run(oc.spec, c.endpoints, show_progress=not quiet)
                        run = Run(result=res, cpu_s=c.cpu_seconds() - cpu0, rss=c.rss_bytes())
                        oc.runs.setdefault(label, []).append(run)
                    except Exception as e:  # keep comparing the rest; report the failure
                        oc.failures[label] = f"{type(e).__name__}: {e}"
                        _log(f"  failed: {oc.failures[label]}", quiet)
                    if not c.pids:
                        oc.failures[label] = oc.failures.get(label, "") + " (server process exited)"
    finally:
        for c in clusters.values():
            c.stop()
        tmp.cleanup()
    return outcomes, start_errors, labels


def _fmt(key: str, v: float) -> str:
    if key == "throughput":
        return f"{v:,.0f}/s"
    if key == "errors":
        return f"{v:,.0f}"
    if key == "cpu_s":
        return f"{v:.1f}s"
    if key in ("cores", "client_cores"):
        return f"{v:.2f}"
    if key == "rss":
        return fmt_bytes(v)
    return fmt_us(v)


def render(outcomes: list[ScenarioOutcome], start_errors: dict[str, str], labels: list[str],
           rounds: int, cluster: int, disk: list[DiskProbe] | None = None) -> str:
    lines: list[str] = []
    if disk:
        lines.append("disk (before, after): " + "; ".join(d.text() for d in disk))
        lines.append("")
    for label, err in start_errors.items():
        first = err.splitlines()[0] if err else ""
        lines.append(f"!! {label} could not be started, so it has no figures: {first}")
    if start_errors:
        lines.append("")
    a = labels[0] if labels else "etcd"
    b = labels[1] if len(labels) > 1 else None
    for oc in outcomes:
        watch = oc.spec.workload == "watch"  # its throughput is events delivered, its latency put->event
        lines.append(f"== {oc.name}: {oc.spec.title}, {cluster}-member, {rounds} rounds, medians ==")
        ma = oc.medians(a)
        mb = oc.medians(b) if b else None
        head = f"  {'':<12}{a:>16}"
        if b:
            head += f"{b:>16}{'ratio':>10}"
        lines.append(head)
        rows = list(FIGURES) + ["errors", "cpu_s", "cores", "rss", "client_cores"]
        for key in rows:
            va = _fmt(key, ma[key]) if ma else "-"
            name = "events/s" if watch and key == "throughput" else key
            line = f"  {name:<12}{va:>16}"
            if b:
                vb = _fmt(key, mb[key]) if mb else "-"
                ratio = f"{mb[key] / ma[key]:.2f}x" if ma and mb and ma[key] else ""
                line += f"{vb:>16}{ratio:>10}"
            lines.append(line)
        for label, runs in oc.runs.items():  # the spread across rounds shows how noisy the machine was
            if watch:
                per = " / ".join(f"{r.result.extra['events']:,}/{r.result.extra['expected_events']:,}"
                                 for r in runs)
                rates = " / ".join(f"{r.result.extra['achieved_put_rate']:,.0f}" for r in runs)
                lines.append(f"  rounds on {label}: {per} events delivered/expected, {rates} puts/s")
            else:
                per = " / ".join(f"{r.result.throughput:,.0f}" for r in runs)
                lines.append(f"  rounds on {label}: {per} req/s")
        for label, runs in oc.runs.items():
            errs: dict[str, int] = {}
            for r in runs:
                for k, v in r.result.errors.items():
                    errs[k] = errs.get(k, 0) + v
            if errs:
                lines.append(f"  errors on {label}: {errors_text(errs)}")
        for label, why in oc.failures.items():
            lines.append(f"  !! {label}: {why}")
        goal: Goal | None = goal_for(oc.name, cluster)
        if goal is not None:
            met = verdict(goal, ma, mb) if b else None
            lines.append(f"  goal: {goal.text} -> {verdict_text(met)}")
        lines.append("")
    return "\n".join(lines)


def to_json(outcomes: list[ScenarioOutcome], start_errors: dict[str, str], labels: list[str],
            rounds: int, cluster: int, disk: list[DiskProbe] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "cluster": cluster, "servers": labels,
                           "start_errors": start_errors, "scenarios": []}
    if disk:
        out["disk"] = [d.to_json() for d in disk]  # before and after the runs
    for oc in outcomes:
        meds = {lb: oc.medians(lb) for lb in labels}
        entry: dict[str, Any] = {
            "name": oc.name, "title": oc.spec.title, "medians": meds,
            "runs": {lb: [dict(r.result.to_json(), cpu_s=round(r.cpu_s, 3), rss=r.rss) for r in runs]
                     for lb, runs in oc.runs.items()},
            "failures": oc.failures,
        }
        if len(labels) == 2 and meds[labels[0]] and meds[labels[1]]:
            ma, mb = meds[labels[0]], meds[labels[1]]
            assert ma is not None and mb is not None
            entry["ratio"] = {k: (mb[k] / ma[k] if ma[k] else None) for k in FIGURES}
        goal = goal_for(oc.name, cluster)
        if goal is not None:
            v = verdict(goal, meds.get(labels[0]) if labels else None,
                        meds.get(labels[1]) if len(labels) > 1 else None)
            entry["goal"] = {"text": goal.text, "met": v}
        out["scenarios"].append(entry)
    return out
