"""Audit of a time window: every version each workload container ran in it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from imagetrail.analysis._common import (
    ContainerKey,
    Version,
    check_window,
    container_key,
    max_concurrent,
    version_order,
)
from imagetrail.model import AuditEntry, Span


def audit(spans: Iterable[Span], *, start: float, end: float) -> list[AuditEntry]:
    """Every (workload container, version) that ran at any moment in ``[start, end]``.

    first/last seen are clipped to the window and ``containers_max`` counts only the part
    inside it. Ordered by workload container, then first_seen, image, digest.
    """
    check_window(start, end, what="audit window")
    clipped: defaultdict[tuple[ContainerKey, Version], list[tuple[float, float]]]
    clipped = defaultdict(list)
    for span in spans:
        if span.first_seen <= end and span.last_seen >= start and span.first_seen <= span.last_seen:
            interval = (max(start, span.first_seen), min(end, span.last_seen))
            clipped[(container_key(span), span.version)].append(interval)
    rows: list[AuditEntry] = []
    for (key, version), intervals in clipped.items():
        cluster, namespace, kind, workload, container = key
        rows.append(
            AuditEntry(
                cluster=cluster,
                namespace=namespace,
                workload_kind=kind,
                workload=workload,
                container=container,
                image=version[0],
                digest=version[1],
                first_seen=min(first for first, _ in intervals),
                last_seen=max(last for _, last in intervals),
                containers_max=max_concurrent(intervals),
            )
        )
    rows.sort(
        key=lambda r: (
            (r.cluster, r.namespace, r.workload_kind, r.workload, r.container),
            r.first_seen,
            version_order((r.image, r.digest)),
        )
    )
    return rows
