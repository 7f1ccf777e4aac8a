"""Helpers shared by the analysis functions: grouping keys, version order, sweeps.

Everything here is pure and deterministic: the same set of spans, in any order, gives the
same answer. That is why every sort below has a complete key.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from imagetrail.analysis.silence import Silence
from imagetrail.errors import InputError
from imagetrail.imageref import classify as classify_image
from imagetrail.imageref import compare_tags
from imagetrail.model import Span

# (cluster, namespace, workload_kind, workload, container): one container of one workload.
ContainerKey = tuple[str, str, str, str, str]
# (image, digest): what counts as one version (see Span.version).
Version = tuple[str, str | None]


def still_running(spans: Iterable[Span], data_end: float, tolerance: float) -> list[Span]:
    """Spans whose last sample lies within ``tolerance`` before ``data_end`` run until it.

    A running container's latest sample lies up to a scrape interval before the end of
    what was read; without this, "now" and the last heatmap column would miss it.
    (:meth:`imagetrail.analysis.silence.Silence.still_running` also knows silent clusters.)
    """
    return Silence(data_end=data_end).still_running(spans, tolerance)


def container_key(span: Span) -> ContainerKey:
    """The workload container a span belongs to."""
    return (span.cluster, span.namespace, span.workload_kind, span.workload, span.container)


def version_order(version: Version) -> tuple[str, bool, str]:
    """A total order on versions; ``None`` digests sort before real ones."""
    image, digest = version
    return (image, digest is not None, digest or "")


def span_order(span: Span) -> tuple[float, float, str, bool, str, str, str]:
    """A total order on the spans of one container key, earliest start first."""
    return (
        span.first_seen,
        span.last_seen,
        span.image,
        span.digest is not None,
        span.digest or "",
        span.pod,
        span.signal,
    )


def group_by_container(spans: Iterable[Span]) -> dict[ContainerKey, list[Span]]:
    """Spans per workload container, each list in :func:`span_order`, keys sorted."""
    groups: defaultdict[ContainerKey, list[Span]] = defaultdict(list)
    for span in spans:
        groups[container_key(span)].append(span)
    return {key: sorted(groups[key], key=span_order) for key in sorted(groups)}


@lru_cache(maxsize=65536)
def split_image(display: str) -> tuple[str, str, str | None] | None:
    """``(repository, name, tag)`` of a display reference; None when it is not a reference.

    ``name`` is registry/repository. Uses ``imageref.classify`` rather than ``parse``: a bare
    image id (``sha256:<hex>``, what cAdvisor may report) parses as repository "sha256" but
    is no reference. Cached because a few hundred images recur across 100k spans.
    """
    ref = classify_image(display).ref
    if ref is None:
        return None
    return (ref.repository, ref.name, ref.tag)


def tag_cmp(tag_a: str | None, tag_b: str | None) -> int | None:
    """``compare_tags`` that also accepts missing tags (then: not comparable)."""
    if tag_a is None or tag_b is None:
        return None
    return _cached_compare(tag_a, tag_b)


@lru_cache(maxsize=65536)
def _cached_compare(tag_a: str, tag_b: str) -> int | None:
    return compare_tags(tag_a, tag_b)


def order_images(images: Iterable[str]) -> list[str]:
    """Display references sorted by repository (then registry), then version order of tags.

    ``compare_tags`` is a partial order (``latest`` and semver tags are not comparable),
    and sorting with a partial comparator depends on the input order. So within one
    repository the tags are ordered topologically by "older than" edges, breaking ties and
    cycles by the plain string, which gives the same answer for any input order.
    Displays that do not parse form their own group under their own string.
    """
    by_repo: defaultdict[tuple[str, str], dict[str, str | None]] = defaultdict(dict)
    for image in set(images):
        parts = split_image(image)
        repository, name, tag = parts if parts is not None else (image, image, None)
        by_repo[(repository, name)][image] = tag
    ordered: list[str] = []
    for group in sorted(by_repo):
        ordered.extend(_topological(by_repo[group]))
    return ordered


def _topological(tags: dict[str, str | None]) -> list[str]:
    images = sorted(tags)
    later: dict[str, list[str]] = {image: [] for image in images}
    indegree = dict.fromkeys(images, 0)
    for i, a in enumerate(images):
        for b in images[i + 1 :]:
            cmp = tag_cmp(tags[a], tags[b])
            if cmp == -1:
                later[a].append(b)
                indegree[b] += 1
            elif cmp == 1:
                later[b].append(a)
                indegree[a] += 1
    ready = [image for image in images if indegree[image] == 0]
    heapq.heapify(ready)
    done: list[str] = []
    remaining = set(images)
    while remaining:
        if not ready:
            # A cycle means compare_tags is inconsistent; the smallest string breaks it.
            ready = [min(remaining)]
        image = heapq.heappop(ready)
        if image not in remaining:
            continue
        remaining.discard(image)
        done.append(image)
        for nxt in later[image]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0 and nxt in remaining:
                heapq.heappush(ready, nxt)
    return done


def max_concurrent(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at one instant; intervals are closed, like ``Span.covers``."""
    events: list[tuple[float, int]] = []
    for first, last in intervals:
        # 0 sorts before 1: a start and an end at the same instant overlap (closed ends).
        events.append((first, 0))
        events.append((last, 1))
    events.sort()
    running = best = 0
    for _, kind in events:
        if kind == 0:
            running += 1
            best = max(best, running)
        else:
            running -= 1
    return best


def check_window(start: float, end: float, *, what: str = "window") -> None:
    """Raise InputError unless ``start <= end`` and both are finite."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError(f"the {what} bounds must be finite numbers, got {start}..{end}")
    if end < start:
        raise InputError(
            f"the {what} ends before it starts ({end} < {start})",
            hint="swap the two times, or check --from/--to",
        )
