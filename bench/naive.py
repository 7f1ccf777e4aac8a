"""The naive way to find spans: every container series, densely, at scrape resolution.

What an engineer without imagetrail's two-stage search would write, done competently. Two
range queries at step = scrape interval, per chunk of a few hours, tell for every step which
pod containers had *started* (running, or restarted before: a crash-looping container may run
between two scrapes) and which were *not terminated* (a completed Job container stays listed as
terminated). The first edge is the earliest started step, the last edge the latest not
terminated one: the same definition as imagetrail's ``ksm`` signal. Two variants:

``stamp`` (the issue's definition) asks for each sample's own time, so the edges are exact to
the sample, as imagetrail's::

    (timestamp(running) * running > 0) or (timestamp(restarts) * (restarts > bool 0) > 0)
    timestamp(terminated) * (1 - terminated) > 0

``grid`` asks, at each step t, for the sample in (t - step, t] (``last_over_time`` over one
step, so a series that ended is not smeared over Prometheus' 5-minute lookback)::

    last_over_time(running[30s]) == 1 or last_over_time(restarts[30s]) > 0
    last_over_time(terminated[30s]) == 0

and takes the step times as edges: within one scrape interval of imagetrail's (always a
little later), within two of the truth. Prometheus evaluates ``timestamp()`` step by step,
which costs it about ten times more than ``last_over_time``; ``grid`` is the cheaper naive
baseline, ``stamp`` the one with the same precision.

Common to both:

* Chunks of a few hours (``DEFAULT_CHUNK``), well under Prometheus' 11,000 points per series:
  a week in 11,000-point pieces would mean responses of ~1 GB of JSON and several GB of Python
  objects at 2,000 containers. Each chunk is folded into per-key min/max at once, so memory
  stays bounded by one chunk per worker. The ``> 0``/``== 1`` filters drop the steps that say
  nothing, so the naive way does not pay for them.
* Images and owners are labels, not edges: they come from the same cheap instant queries
  imagetrail uses (``count_over_time(kube_pod_container_info[1d])`` per day, and
  :meth:`PrometheusSource.owners`). The comparison therefore isolates the edge finding, and
  the naive side is not charged for a dense ``kube_pod_container_info`` query it can avoid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imagetrail.model import Span
from imagetrail.sources.promapi import PromClient, QueryResult
from imagetrail.sources.prometheus import (
    KSM_INFO,
    KSM_RESTARTS,
    KSM_RUNNING,
    KSM_TERMINATED,
    Owner,
    PrometheusSource,
    span_from_labels,
)

DAY = 86400.0
DEFAULT_CHUNK = 6 * 3600.0
KEY_LABELS = ("cluster", "namespace", "pod", "uid", "container")
ATTR_LABELS = ("image", "image_id", "image_spec")

VARIANTS = ("stamp", "grid")
STARTED = (
    f"(timestamp({KSM_RUNNING}) * {KSM_RUNNING} > 0)"
    f" or (timestamp({KSM_RESTARTS}) * ({KSM_RESTARTS} > bool 0) > 0)"
)
NOT_TERMINATED = f"timestamp({KSM_TERMINATED}) * (1 - {KSM_TERMINATED}) > 0"


def grid_queries(step: float) -> tuple[str, str]:
    """The ``grid`` variant's (started, not terminated) queries for one step."""
    w = f"{round(step * 1000)}ms"
    return (
        f"last_over_time({KSM_RUNNING}[{w}]) == 1 or last_over_time({KSM_RESTARTS}[{w}]) > 0",
        f"last_over_time({KSM_TERMINATED}[{w}]) == 0",
    )


Key = tuple[str, ...]


def key_of(labels: Mapping[str, str]) -> Key:
    """A pod container: (cluster, namespace, pod, uid, container)."""
    return tuple(labels.get(name, "") for name in KEY_LABELS)


def step_chunks(
    start: float, end: float, step: float, chunk: float
) -> Iterator[tuple[float, float]]:
    """``(first step, last step)`` per chunk; steps ``start + k*step``, k >= 1, up to ``end``.

    Each step sees the samples of the lookback window before it, so steps from
    ``start + step`` to ``end`` see every sample in ``(start, end]`` exactly once-or-more;
    the chunks share no step.
    """
    if step <= 0 or chunk < step:
        raise ValueError("need 0 < step <= chunk")
    n = math.floor((end - start) / step + 1e-9)
    per = max(1, math.floor(chunk / step + 1e-9))
    for k0 in range(1, n + 1, per):
        k1 = min(n, k0 + per - 1)
        yield start + k0 * step, start + k1 * step


@dataclass
class Edges:
    """Per pod container, the earliest started and the latest not-terminated sample time."""

    first: dict[Key, float] = field(default_factory=dict)
    last: dict[Key, float] = field(default_factory=dict)

    def fold(
        self, result: QueryResult, *, edge: str, lo: float, hi: float, stamped: bool = True
    ) -> int:
        """Fold one dense answer in; only times in ``(lo, hi]`` count. Returns the points.

        ``stamped``: the values are sample times (else the step times are the edges).
        """
        into, pick = (self.first, min) if edge == "first" else (self.last, max)
        points = 0
        for series in result.series:
            points += len(series.values)
            stamps = [v if stamped else t for t, v in series.values]
            stamps = [v for v in stamps if lo < v <= hi]
            if not stamps:
                continue
            key = key_of(series.labels)
            found = pick(stamps)
            into[key] = pick(found, into.get(key, found))
        return points


def dense_edges(
    client: PromClient,
    start: float,
    end: float,
    *,
    step: float = 30.0,
    chunk: float = DEFAULT_CHUNK,
    concurrency: int = 2,
    variant: str = "stamp",
) -> tuple[Edges, int]:
    """First/last edges of every pod container in ``(start, end]`` and the points received."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown naive variant {variant!r}")
    started, not_terminated = (
        (STARTED, NOT_TERMINATED) if variant == "stamp" else grid_queries(step)
    )
    jobs = [
        (edge, query, a, b)
        for a, b in step_chunks(start, end, step, chunk)
        for edge, query in (("first", started), ("last", not_terminated))
    ]
    edges = Edges()
    points = 0

    def run(job: tuple[str, str, float, float]) -> tuple[str, QueryResult]:
        edge, query, a, b = job
        return edge, client.query_range(query, start=a, end=b, step=step)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for edge, result in pool.map(run, jobs):
            points += edges.fold(result, edge=edge, lo=start, hi=end, stamped=variant == "stamp")
    return edges, points


def attributes(
    client: PromClient, start: float, end: float, *, window: float = DAY
) -> dict[Key, dict[str, str]]:
    """Image labels per pod container: the label set seen in the most samples."""
    by = ", ".join((*KEY_LABELS, *ATTR_LABELS))
    counts: dict[Key, dict[tuple[str, ...], float]] = {}
    for a, b in _windows(start, end, window):
        query = f"max by ({by}) (count_over_time({KSM_INFO}[{int(b - a)}s]))"
        for series in client.query(query, time=b).series:
            attrs = tuple(series.labels.get(k, "") for k in ATTR_LABELS)
            seen = counts.setdefault(key_of(series.labels), {})
            seen[attrs] = seen.get(attrs, 0.0) + (series.values[-1][1] if series.values else 0.0)
    return {
        key: dict(zip(ATTR_LABELS, max(seen.items(), key=lambda kv: kv[1])[0], strict=True))
        for key, seen in counts.items()
    }


def owners(
    source: PrometheusSource, start: float, end: float, *, window: float = DAY
) -> dict[tuple[str, str, str], Owner]:
    """(cluster, namespace, pod) → workload, read a day at a time."""
    out: dict[tuple[str, str, str], Owner] = {}
    for a, b in _windows(start, end, window):
        out.update(source.owners(a, b))
    return out


def _windows(start: float, end: float, size: float) -> Iterable[tuple[float, float]]:
    a = start
    while a < end:
        b = min(end, a + size)
        yield a, b
        a = b


def build_spans(
    edges: Edges,
    attrs: Mapping[Key, Mapping[str, str]],
    owner_of: Mapping[tuple[str, str, str], Owner],
    *,
    default_cluster: str = "default",
) -> list[Span]:
    """Spans from edges: only containers that started; images from ``attrs``; no sandboxes."""
    spans: list[Span] = []
    for key, first in edges.first.items():
        info = attrs.get(key)
        if info is None:
            continue  # no kube_pod_container_info: not a container we can name an image for
        labels = dict(zip(("cluster", "namespace", "pod", "uid", "container"), key, strict=True))
        span = span_from_labels(
            "ksm",
            labels | dict(info),
            first,
            max(edges.last.get(key, first), first),
            owner_of,
            default_cluster=default_cluster,
        )
        if span is not None:
            spans.append(span)
    return spans


@dataclass(frozen=True, slots=True)
class NaiveResult:
    spans: list[Span]
    points: int  # samples received in the dense answers


def naive_spans(
    client: PromClient,
    start: float,
    end: float,
    *,
    step: float = 30.0,
    chunk: float = DEFAULT_CHUNK,
    concurrency: int = 2,
    variant: str = "stamp",
) -> NaiveResult:
    """Every ``ksm`` span in ``(start, end]`` the naive way (see the module docstring)."""
    edges, points = dense_edges(
        client, start, end, step=step, chunk=chunk, concurrency=concurrency, variant=variant
    )
    source = PrometheusSource(client, resolution=step)
    spans = build_spans(edges, attributes(client, start, end), owners(source, start, end))
    return NaiveResult(spans, points)
