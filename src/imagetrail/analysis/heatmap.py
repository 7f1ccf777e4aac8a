"""The image × time heatmap (the original Grafana panel's picture) and its default step."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from imagetrail.analysis._common import check_window, order_images
from imagetrail.errors import InputError
from imagetrail.model import Heatmap, Span

# Prometheus refuses range queries of more than 11,000 points per series; a heatmap wider than
# that is a mistake (a step of seconds over months), not a picture anyone can read.
MAX_POINTS = 11_000

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
NICE_STEPS: tuple[float, ...] = (
    30.0,
    _MINUTE,
    2 * _MINUTE,
    5 * _MINUTE,
    10 * _MINUTE,
    15 * _MINUTE,
    30 * _MINUTE,
    _HOUR,
    2 * _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    _DAY,
    2 * _DAY,
    7 * _DAY,
    14 * _DAY,
    30 * _DAY,
)


def default_step(start: float, end: float, *, target_points: int = 200) -> float:
    """The smallest "nice" step giving at most about ``target_points`` columns.

    Nice steps are 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d, 2d, 7d, 14d, 30d,
    then whole multiples of 30d. Never below 30s: scrapes are rarely more frequent.
    """
    check_window(start, end)
    if target_points < 1:
        raise InputError(f"target_points must be at least 1, got {target_points}")
    raw = (end - start) / target_points
    for step in NICE_STEPS:
        if step >= raw:
            return step
    return math.ceil(raw / NICE_STEPS[-1]) * NICE_STEPS[-1]


def bucket_times(start: float, end: float, step: float) -> tuple[float, ...]:
    """``start, start+step, … <= end`` computed by multiplication (no drift from adding)."""
    check_window(start, end)
    if not (step > 0 and math.isfinite(step)):
        raise InputError(f"the step must be a positive number of seconds, got {step}")
    n = math.floor((end - start) / step) + 1
    # floor() of a quotient can land one above the exact count by rounding; drop such a point.
    while n > 0 and start + (n - 1) * step > end:
        n -= 1
    if n > MAX_POINTS:
        raise InputError(
            f"{n} heatmap columns is too many (at most {MAX_POINTS})",
            hint="use a larger step or a shorter time range",
        )
    return tuple(start + j * step for j in range(n))


def row_label(span: Span, *, by_digest: bool = False) -> str:
    """A span's heatmap row: its image, or ``image@digest`` when rows split by digest."""
    if by_digest and span.digest and "@" not in span.image:
        return f"{span.image}@{span.digest}"
    return span.image


def heatmap(
    spans: Iterable[Span], *, start: float, end: float, step: float, by_digest: bool = False
) -> Heatmap:
    """Containers per image at each time ``start, start+step, … <= end``.

    A span counts at time t when it covers t, and also when it started and ended inside
    ``(t - step, t]``: that keeps short-lived containers visible, which the original panel
    (a rate over a window) loses. Digests of one tag share a row; rows are sorted by
    repository, then tag version order. ``by_digest`` gives each digest its own row.
    """
    times = bucket_times(start, end, step)
    n = len(times)
    # One difference array per image: a span adds +1 over the index range of times it
    # covers, so the cost is O(spans · log n + images · n), not O(spans · n).
    diffs: dict[str, list[int]] = {}
    for span in spans:
        lo = bisect_left(times, span.first_seen)
        hi = bisect_right(times, span.last_seen)  # one past the last covered time
        if lo >= hi:
            # Covers no bucket time: it lies strictly between times[lo-1] and times[lo]
            # (lo > hi only for a malformed span that ends before it starts).
            if lo != hi or lo >= n or not (span.first_seen > times[lo] - step):
                continue
            hi = lo + 1
        label = row_label(span, by_digest=by_digest)
        row = diffs.get(label)
        if row is None:
            row = diffs[label] = [0] * (n + 1)
        row[lo] += 1
        row[hi] -= 1
    images = order_images(diffs)
    counts: list[tuple[int, ...]] = []
    for image in images:
        running = 0
        values: list[int] = []
        for delta in diffs[image][:n]:
            running += delta
            values.append(running)
        counts.append(tuple(values))
    return Heatmap(times=times, images=tuple(images), counts=tuple(counts))


def row_details(
    spans: Iterable[Span], *, start: float, end: float, by_digest: bool = False
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per heatmap row: the workload ids and the digests that ran it inside ``[start, end]``."""
    workloads: dict[str, set[str]] = {}
    digests: dict[str, set[str]] = {}
    for span in spans:
        if span.last_seen < start or span.first_seen > end:
            continue
        label = row_label(span, by_digest=by_digest)
        workloads.setdefault(label, set()).add(span.workload_ref.id)
        found = digests.setdefault(label, set())
        if span.digest:
            found.add(span.digest)
    return {
        label: (tuple(sorted(ids)), tuple(sorted(digests[label])))
        for label, ids in workloads.items()
    }
