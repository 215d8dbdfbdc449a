"""Latency distributions: one representation for wrk's percentile grid and for raw Python samples.

Values are microseconds kept in buckets rounded to three significant digits (< 0.5 % error), which lets
distributions from several wrk processes or worker processes be merged before percentiles are taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

# Percentiles requested from wrk. Dense near the tail because that is where the goals live; every
# percentile we report (50/90/99/99.9) is a grid point so single-process figures are exact.
WRK_PERCENTILES: tuple[float, ...] = tuple(
    [round(0.5 * i, 1) for i in range(1, 199)]
    + [round(99.0 + 0.1 * i, 1) for i in range(1, 10)]
    + [round(99.9 + 0.01 * i, 2) for i in range(1, 10)]
    + [99.999, 100.0]
)

REPORTED_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


def _bucket(value_us: float) -> int:
    """Round to three significant digits so nearby values share a bucket."""
    v = max(1, int(round(value_us)))
    if v < 1000:
        return v
    scale = 10 ** (int(math.log10(v)) - 2)
    return (v // scale) * scale


@dataclass
class Latency:
    buckets: dict[int, float] = field(default_factory=dict)
    sum_us: float = 0.0

    @property
    def count(self) -> float:
        return sum(self.buckets.values())

    def add(self, value_us: float, weight: float = 1.0) -> None:
        b = _bucket(value_us)
        self.buckets[b] = self.buckets.get(b, 0.0) + weight
        self.sum_us += value_us * weight

    def add_many(self, values_us: Iterable[float]) -> None:
        for v in values_us:
            self.add(v)

    def merge(self, other: Latency) -> None:
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0.0) + c
        self.sum_us += other.sum_us

    @classmethod
    def from_quantiles(cls, points: list[tuple[float, float]], requests: int, mean_us: float) -> Latency:
        """Rebuild a distribution from wrk's (percentile, value) grid for `requests` samples.

        The mass between two grid points is put at the upper value, so the percentile of this
        distribution at any grid point is exactly wrk's value there.
        """
        lat = cls()
        prev_p = 0.0
        for p, v in sorted(points):
            w = (p - prev_p) / 100.0 * requests
            if w > 0:
                lat.add(v, w)
            prev_p = p
        lat.sum_us = mean_us * requests
        return lat

    def percentile(self, p: float) -> float:
        total = self.count
        if total <= 0:
            return 0.0
        target = p / 100.0 * total - 1e-9 * total
        cum = 0.0
        keys = sorted(self.buckets)
        for b in keys:
            cum += self.buckets[b]
            if cum >= target:
                return float(b)
        return float(keys[-1])

    @property
    def mean(self) -> float:
        total = self.count
        return self.sum_us / total if total else 0.0

    @property
    def min(self) -> float:
        return float(min(self.buckets)) if self.buckets else 0.0

    @property
    def max(self) -> float:
        return float(max(self.buckets)) if self.buckets else 0.0

    def histogram(self, nbins: int = 10) -> list[tuple[float, float]]:
        """(upper bound µs, count) for `nbins` log-spaced bins between min and max."""
        if not self.buckets:
            return []
        lo, hi = max(self.min, 1.0), max(self.max, 1.0)
        if hi <= lo:
            return [(hi, self.count)]
        ratio = (hi / lo) ** (1.0 / nbins)
        bounds = [lo * ratio ** (i + 1) for i in range(nbins)]
        bounds[-1] = hi
        counts = [0.0] * nbins
        for b, c in self.buckets.items():
            for i, ub in enumerate(bounds):
                if b <= ub * (1 + 1e-9):
                    counts[i] += c
                    break
        return list(zip(bounds, counts, strict=True))

    def summary(self) -> dict[str, float]:
        out = {f"p{p:g}": self.percentile(p) for p in REPORTED_PERCENTILES}
        out.update(mean=self.mean, min=self.min, max=self.max)
        return out
