"""Silent clusters: each cluster's own end of data, judged against where all data ends.

A cluster whose samples stop (its Prometheus agent or remote write is down, a store is
missing, or all data simply ends before now) is *silent*, not empty: what it ran when its
data stopped is the best knowledge there is, so it stays in every answer, marked stale, and
silence is never a change. After ``forget_after`` the cluster is *gone* (one ``cluster-gone``
change, see :func:`imagetrail.analysis.detect_changes`) and no longer shown as running.
Pure: spans and numbers in, answers out (docs/analysis.md, "Silence").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from imagetrail.model import Span


def data_ends(spans: Iterable[Span]) -> dict[str, float]:
    """Each cluster's newest sample among ``spans``."""
    out: dict[str, float] = {}
    for span in spans:
        if span.last_seen > out.get(span.cluster, -math.inf):
            out[span.cluster] = span.last_seen
    return out


@dataclass(frozen=True, slots=True)
class SilentCluster:
    """A cluster whose data ended before the rest: ``last_data`` and for how long since."""

    cluster: str
    last_data: float
    silent_for: float
    gone: bool


@dataclass(frozen=True, slots=True)
class Silence:
    """Where each cluster's data ends (``ends``) and where all data ends (``data_end``)."""

    ends: Mapping[str, float] = field(default_factory=dict)
    data_end: float = math.inf
    silent_after: float = 300.0
    forget_after: float = 7 * 86400.0

    def end(self, cluster: str) -> float:
        return min(self.ends.get(cluster, self.data_end), self.data_end)

    def silent(self, cluster: str) -> bool:
        return self.data_end - self.end(cluster) > self.silent_after

    def gone(self, cluster: str) -> bool:
        return self.data_end - self.end(cluster) > self.forget_after

    def stale_at(self, at: float) -> frozenset[str]:
        """Clusters whose answers at ``at`` are last known values (silent since before)."""
        return frozenset(
            c for c in self.ends if self.silent(c) and not self.gone(c) and self.end(c) < at
        )

    def clusters(self) -> list[SilentCluster]:
        """Every silent cluster, longest silent first."""
        out = [
            SilentCluster(c, self.end(c), self.data_end - self.end(c), self.gone(c))
            for c in self.ends
            if self.silent(c)
        ]
        return sorted(out, key=lambda s: (s.last_data, s.cluster))

    def still_running(
        self, spans: Iterable[Span], tolerance: float, *, silent: bool = True
    ) -> list[Span]:
        """Spans whose last sample lies within ``tolerance`` of their cluster's end run until
        ``data_end``: a running container's newest sample is up to a scrape interval old, and
        a silent cluster's containers are last seen running. A gone cluster's are not.

        ``silent=False`` leaves a silent cluster's spans where its data ended: answers over a
        range (history, audit) must not claim a sighting that never happened; answers at an
        instant (versions, workloads, the heatmap) show the last known state, marked stale."""
        out = []
        for s in spans:
            end = self.end(s.cluster)
            if (
                tolerance
                and end - tolerance <= s.last_seen < self.data_end
                and not self.gone(s.cluster)
                and (silent or not self.silent(s.cluster))
            ):
                s = replace(s, last_seen=self.data_end)
            out.append(s)
        return out
