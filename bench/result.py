"""The outcome of one workload run, independent of which driver produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from etcdpy.bench.stats import Latency


@dataclass
class Result:
    workload: str
    endpoints: list[str]
    conns: int
    duration_s: float
    requests: int  # responses received, successful or not
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count, e.g. "http 503 code 14"
    latency: Latency = field(default_factory=Latency)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def ok(self) -> int:
        # Socket errors (connect/read/timeout) are not responses, so they are not subtracted.
        http_errors = sum(v for k, v in self.errors.items() if k.startswith("http "))
        return max(0, self.requests - http_errors)

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "endpoints": self.endpoints,
            "conns": self.conns,
            "duration_s": round(self.duration_s, 4),
            "requests": self.requests,
            "ok": self.ok,
            "throughput_rps": round(self.throughput, 2),
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "latency_us": {k: round(v, 1) for k, v in self.latency.summary().items()},
            "histogram": [[round(ub, 1), round(c)] for ub, c in self.latency.histogram()],
            **({"extra": self.extra} if self.extra else {}),
        }
