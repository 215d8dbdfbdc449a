"""The workload catalogue: one Spec describes a run; run() picks the driver (wrk or Python workers)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from etcdpy.bench import lease, loader, watch, wrk_driver
from etcdpy.bench.lua_script import THROUGHPUT_WORKLOADS, LuaParams
from etcdpy.bench.payloads import b64, check_key_space, key_bytes, value_bytes
from etcdpy.bench.progress import Bar
from etcdpy.bench.result import Result

WORKLOADS = (*THROUGHPUT_WORKLOADS, "watch", "lease-keepalive")
_PREFILL_ONCE: set[tuple[tuple[str, ...], int, int, int]] = set()


@dataclass(frozen=True)
class Spec:
    workload: str
    conns: int = 64
    total: int | None = None
    duration_s: float | None = 10.0
    key_space: int = 10_000
    key_size: int = 8
    val_size: int = 256
    rate: float | None = None  # wrk: approximate cap via per-connection delay; watch: put rate
    consistency: str = "l"  # range: l(inearizable) | s(erializable)
    read_ratio: float = 0.5  # txn-mixed
    threads: int = 2  # wrk threads per endpoint
    timeout_s: float = 10.0
    seed: int = 1
    prefill: bool = True  # range/txn-mixed: write the whole key space first so reads find keys
    watchers: int = 10  # watch: watchers per stream (streams = conns)
    spread: bool = False  # watch: each watcher on its own key, puts to random watched keys
    procs: int = 1  # watch / lease-keepalive: client worker processes

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}; choose from {', '.join(WORKLOADS)}")
        if (self.total is None) == (self.duration_s is None):
            raise ValueError("give exactly one of total or duration")
        if self.consistency not in ("l", "s"):
            raise ValueError("consistency must be l or s")
        check_key_space(self.key_space, self.key_size)

    @property
    def title(self) -> str:
        if self.workload == "watch":
            where = "distinct keys" if self.spread else "one key"
            return (f"watch {self.conns} streams x {self.watchers} watchers on {where}, "
                    f"puts @{self.rate or 100:g}/s")
        extra = f" ({'serializable' if self.consistency == 's' else 'linearizable'})" \
            if self.workload == "range" else ""
        return f"{self.workload}{extra} @{self.conns} conns"


def prefill(endpoints: list[str], spec: Spec) -> None:
    key = (tuple(endpoints), spec.key_space, spec.key_size, spec.val_size)
    if key in _PREFILL_ONCE:
        return
    stats = asyncio.run(loader.load_keys(endpoints, spec.key_space, spec.key_size,
                                         value_bytes(spec.val_size, spec.seed), conns=8))
    if stats.errors:
        raise RuntimeError(f"prefill failed: {stats.errors}")
    _PREFILL_ONCE.add(key)


def run(spec: Spec, endpoints: list[str], show_progress: bool = True) -> Result:
    bar_total = spec.total
    if spec.workload == "watch" and spec.total is not None and not spec.spread:
        bar_total = spec.total * spec.conns * spec.watchers  # the bar counts delivered events
    with Bar(spec.title, bar_total, spec.duration_s, enabled=show_progress) as bar:
        if spec.workload in THROUGHPUT_WORKLOADS:
            if spec.prefill and spec.workload in ("range", "txn-mixed"):
                prefill(endpoints, spec)
            lua = LuaParams(
                workload=spec.workload, key_space=spec.key_space, key_size=spec.key_size,
                value_b64=b64(value_bytes(spec.val_size, spec.seed)), serializable=spec.consistency == "s",
                read_ratio=spec.read_ratio, seed=spec.seed,
                delay_ms=(spec.conns / spec.rate * 1000.0) if spec.rate else 0.0,
            )
            plan = wrk_driver.WrkPlan(endpoints=endpoints, conns=spec.conns, threads=spec.threads,
                                      duration_s=spec.duration_s, total=spec.total, timeout_s=spec.timeout_s,
                                      lua=lua)
            result = wrk_driver.run(plan, progress=bar)
        elif spec.workload == "watch":
            wp = watch.WatchParams(
                endpoints=endpoints, streams=spec.conns, watchers_per_stream=spec.watchers,
                rate=spec.rate or 100.0, total=spec.total, duration_s=spec.duration_s,
                key=b"watch/spread/" if spec.spread else b"watch/" + key_bytes(0, spec.key_size),
                spread=spec.spread, procs=spec.procs, seed=spec.seed,
            )
            result = watch.run_watch(wp, progress=bar)
        else:
            lp = lease.LeaseParams(endpoints=endpoints, conns=spec.conns, total=spec.total,
                                   duration_s=spec.duration_s, procs=spec.procs)
            result = lease.run_lease_keepalive(lp, progress=bar)
    result.extra = {**result.extra, "title": spec.title}
    return result
