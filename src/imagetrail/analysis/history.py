"""Version history of workload containers: one entry per version segment."""

from __future__ import annotations

from collections.abc import Iterable

from imagetrail.analysis._common import (
    ContainerKey,
    group_by_container,
    max_concurrent,
    version_order,
)
from imagetrail.analysis.timeline import segments
from imagetrail.model import HistoryEntry, Span


def history(spans: Iterable[Span]) -> list[HistoryEntry]:
    """Per workload container, each maximal run during which one version was current.

    Meant for the spans of one workload (HistoryEntry names only the container). For a
    segment: ``first_seen`` is when the version became current, ``last_seen`` the latest end
    of that version's spans that started within the segment, ``containers_max`` the most of
    those running at once. Ordered by container, then first_seen.
    """
    entries: list[tuple[tuple[str, float, ContainerKey, tuple[str, bool, str]], HistoryEntry]] = []
    for key, group in group_by_container(spans).items():
        for seg in segments(group, presorted=True):
            entry = HistoryEntry(
                container=key[4],
                image=seg.image,
                digest=seg.digest,
                first_seen=min(s.first_seen for s in seg.spans),
                last_seen=max(s.last_seen for s in seg.spans),
                containers_max=max_concurrent((s.first_seen, s.last_seen) for s in seg.spans),
            )
            order = (entry.container, entry.first_seen, key, version_order(seg.version))
            entries.append((order, entry))
    # The key is unique per (container, first_seen) within one workload, so the sort is total.
    entries.sort(key=lambda item: item[0])
    return [entry for _, entry in entries]
