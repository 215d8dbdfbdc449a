"""Human-readable rendering of results (the JSON form lives in Result.to_json)."""

from __future__ import annotations

from etcdpy.bench.result import Result
from etcdpy.bench.stats import REPORTED_PERCENTILES, Latency


def fmt_us(us: float) -> str:
    if us >= 1_000_000:
        return f"{us / 1e6:.2f}s"
    if us >= 1000:
        return f"{us / 1000:.2f}ms"
    return f"{us:.0f}µs"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"  # decimal MB, the unit of the memory goal


def histogram_lines(lat: Latency, width: int = 40) -> list[str]:
    bins = lat.histogram()
    if not bins:
        return []
    peak = max(c for _, c in bins) or 1.0
    total = sum(c for _, c in bins) or 1.0
    return [f"  {fmt_us(ub):>9} [{c / total * 100:5.1f}%] {'∎' * round(c / peak * width)}" for ub, c in bins]


def errors_text(errors: dict[str, int]) -> str:
    if not errors:
        return "none"
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(errors.items()))


def render(r: Result) -> str:
    title = str(r.extra.get("title", r.workload))
    lat = r.latency
    pct = "  ".join(f"p{p:g} {fmt_us(lat.percentile(p))}" for p in REPORTED_PERCENTILES)
    lines = [
        f"{title}  ->  {', '.join(r.endpoints)}",
        f"  requests   {r.requests:,} in {r.duration_s:.2f}s ({r.ok:,} ok)",
        f"  throughput {r.throughput:,.1f} req/s",
        f"  latency    {pct}",
        f"             mean {fmt_us(lat.mean)}  min {fmt_us(lat.min)}  max {fmt_us(lat.max)}",
        f"  errors     {errors_text(r.errors)}",
    ]
    if "client_cpu_s" in r.extra and r.duration_s:
        cpu = float(r.extra["client_cpu_s"])
        who = "wrk" if r.workload in ("put", "range", "txn-put", "txn-mixed") else "python workers"
        lines.append(f"  client CPU {cpu:.2f}s ({cpu / r.duration_s:.2f} cores, {who})")
    if r.workload == "watch":
        x = r.extra
        shape = (f"{x['watchers']:,} watchers on distinct keys, {x['puts']:,} puts" if x.get("spread")
                 else f"{x['watchers']:,} watchers x {x['puts']:,} puts")
        lines[1] = (f"  events     {x['events']:,} of {x['expected_events']:,} expected "
                    f"({shape} at {x['put_rate']:g}/s, achieved {x['achieved_put_rate']:g}/s)")
        lines[2] = f"  delivered  {r.throughput:,.1f} events/s"
        lines[3] = f"  put->event {pct}"
        pl = x["put_latency_us"]
        lines.insert(5, f"  put        p50 {fmt_us(pl['p50'])}  p99 {fmt_us(pl['p99'])}")
    lines.append("  latency histogram")
    lines.extend(histogram_lines(lat))
    return "\n".join(lines)
