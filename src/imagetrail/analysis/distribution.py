"""Which versions run at one instant, and what each workload container runs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable

from imagetrail.analysis._common import Version, group_by_container, order_images, version_order
from imagetrail.analysis.timeline import segments
from imagetrail.errors import InputError
from imagetrail.model import Span, VersionCount, WorkloadSummary


def distribution(
    spans: Iterable[Span], *, at: float, stale: Collection[str] = ()
) -> list[VersionCount]:
    """Versions running at ``at`` with their container count and workloads.

    ``stale``: silent clusters, whose containers are counted as last known (the row says so).
    Ordered by containers (most first), then image, then digest.
    """
    if not math.isfinite(at):
        raise InputError(f"the instant must be a finite number, got {at}")
    containers: defaultdict[Version, int] = defaultdict(int)
    owners: defaultdict[Version, set[str]] = defaultdict(set)
    old: defaultdict[Version, int] = defaultdict(int)
    for span in spans:
        if span.covers(at):
            containers[span.version] += 1
            owners[span.version].add(span.workload_ref.id)
            if span.cluster in stale:
                old[span.version] += 1
    rows = sorted(containers, key=lambda v: (-containers[v], version_order(v)))
    return [
        VersionCount(
            image=v[0],
            digest=v[1],
            containers=containers[v],
            workloads=tuple(sorted(owners[v])),
            stale=old[v] > 0,
            stale_containers=old[v],
        )
        for v in rows
    ]


def workloads(
    spans: Iterable[Span], *, at: float | None = None, stale: Collection[str] = ()
) -> list[WorkloadSummary]:
    """One summary per workload container as of ``at`` (default: the end of the data).

    ``stale``: silent clusters; what their workloads run is their last known state.
    Spans that start after ``at`` are ignored. ``images`` and ``containers`` are what runs at
    ``at`` (empty and 0 for a workload that is gone or a CronJob between runs); ``last_seen``
    is capped at ``at``; ``last_change`` is the start of the latest version change (not the
    first appearance) at or before ``at``. Ordered by workload container.
    """
    if at is not None and not math.isfinite(at):
        raise InputError(f"the instant must be a finite number, got {at}")
    groups = group_by_container(spans)
    if at is None:
        if not groups:
            return []
        at = max(s.last_seen for group in groups.values() for s in group)
    result: list[WorkloadSummary] = []
    for key, group in groups.items():
        known = [s for s in group if s.first_seen <= at]
        if not known:
            continue
        running = [s for s in known if s.covers(at)]
        changes = [seg.start for seg in segments(known, presorted=True)[1:]]
        cluster, namespace, kind, workload, container = key
        result.append(
            WorkloadSummary(
                cluster=cluster,
                namespace=namespace,
                workload_kind=kind,
                workload=workload,
                container=container,
                images=tuple(order_images(s.image for s in running)),
                containers=len(running),
                first_seen=known[0].first_seen,
                last_seen=min(at, max(s.last_seen for s in known)),
                last_change=changes[-1] if changes else None,
                inferred=any(s.workload_inferred for s in known),
                stale=cluster in stale and bool(running),
            )
        )
    return result
