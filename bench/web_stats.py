"""Pure helpers of the web benchmark: percentiles, summaries, and the app's own histogram.

No I/O here, so the numbers the benchmark reports can be checked by unit tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

DURATION_METRIC = "imagetrail_http_request_duration_seconds"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks.

    The same definition as numpy's default (``method="linear"``): p0 is the minimum, p100
    the maximum, and with few samples p99 lies between the two largest.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    # Floating-point rounding can step a hair outside [a, b]; a percentile never may.
    value = ordered[lo] + (ordered[hi] - ordered[lo]) * frac
    return min(max(value, ordered[lo]), ordered[hi])


def summarize(seconds: Sequence[float]) -> dict[str, float | int]:
    """Count, p50/p95/p99, mean, min and max of durations, in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 0.1, or None when either is missing or zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 1)


@dataclass(frozen=True, slots=True)
class Histogram:
    """One label set of a Prometheus histogram: cumulative bucket counts by upper bound."""

    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), le ascending, +Inf last
    count: float
    sum: float

    def minus(self, earlier: Histogram) -> Histogram:
        """What was observed since ``earlier`` (same bucket bounds)."""
        if [le for le, _ in self.buckets] != [le for le, _ in earlier.buckets]:
            raise ValueError("histograms with different buckets")
        return Histogram(
            tuple(
                (le, a - b) for (le, a), (_, b) in zip(self.buckets, earlier.buckets, strict=True)
            ),
            self.count - earlier.count,
            self.sum - earlier.sum,
        )

    def quantile(self, q: float) -> float | None:
        """Estimate like PromQL's ``histogram_quantile`` (linear within the bucket), seconds.

        None without observations; the largest finite bound when the rank lies in +Inf.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within 0..1, got {q}")
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        prev_le, prev_count = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return prev_le
                if cumulative == prev_count:
                    return le
                return prev_le + (le - prev_le) * (rank - prev_count) / (cumulative - prev_count)
            prev_le, prev_count = le, cumulative
        return prev_le

    def summary(self) -> dict[str, float | int | None]:
        """Mean and estimated p50/p99 in milliseconds (the estimate is only bucket-exact)."""
        if self.count <= 0:
            return {"n": 0}
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {
            "n": int(self.count),
            "mean_ms": round(1000 * self.sum / self.count, 2),
            "p50_ms_estimate": None if p50 is None else round(1000 * p50, 1),
            "p99_ms_estimate": None if p99 is None else round(1000 * p99, 1),
        }


def request_histograms(exposition: str) -> dict[str, Histogram]:
    """The app's request-duration histogram per route template, from ``/metrics`` text.

    Methods are added together; only GET is served anyway.
    """
    buckets: dict[str, dict[float, float]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != DURATION_METRIC:
            continue
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                row = buckets.setdefault(route, {})
                row[le] = row.get(le, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[route] = counts.get(route, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                sums[route] = sums.get(route, 0.0) + sample.value
    return {
        route: Histogram(tuple(sorted(row.items())), counts.get(route, 0.0), sums.get(route, 0.0))
        for route, row in buckets.items()
    }


def since(after: Mapping[str, Histogram], before: Mapping[str, Histogram]) -> dict[str, Histogram]:
    """Per route, what ``after`` observed beyond ``before`` (routes new in ``after`` whole)."""
    out: dict[str, Histogram] = {}
    for route, hist in after.items():
        out[route] = hist.minus(before[route]) if route in before else hist
    return out


def column_totals(counts: Iterable[Sequence[int]], columns: int) -> list[int]:
    """Per time column, the sum over heatmap rows (how many containers the picture shows)."""
    totals = [0] * columns
    for row in counts:
        if len(row) != columns:
            raise ValueError(f"a heatmap row has {len(row)} columns, expected {columns}")
        for i, value in enumerate(row):
            totals[i] += value
    return totals
