"""A columnar, in-memory index of spans: the web app's answers in milliseconds.

Reading 70k spans out of SQLite and into objects takes most of a second; the web app
instead keeps every span of the ledger in memory once (refreshed when a sync lands) and
answers each request from numpy columns. Selection means what ``Ledger.spans`` means, and
:meth:`SpanIndex.heatmap` gives exactly :func:`imagetrail.analysis.heatmap` and
:func:`row_details` (property-tested against them); the rest of the answers run the usual
analysis functions on the selected :class:`Span` objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from imagetrail.analysis._common import order_images
from imagetrail.analysis.heatmap import bucket_times, row_label
from imagetrail.analysis.silence import Silence
from imagetrail.imageref import is_sandbox
from imagetrail.model import Heatmap, Span
from imagetrail.scope import Scope

Mask = npt.NDArray[np.bool_]
Rows = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _codes(values: Sequence[str]) -> tuple[list[str], npt.NDArray[np.int32]]:
    """Distinct values (first-seen order) and each position's index into them."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(v, len(table)) for v in values), np.int32, len(values))
    return list(table), codes


class SpanIndex:
    """Every span of a ledger as columns; immutable once built."""

    def __init__(self, spans: Sequence[Span], *, data_end: float | None = None) -> None:
        """``spans`` in the order answers list them (the ledger's); ``data_end``: where the
        recorded data ends (a span whose last sample is near it is still running)."""
        self.spans = list(spans)
        self.first = np.fromiter((s.first_seen for s in spans), np.float64, len(spans))
        self.last = np.fromiter((s.last_seen for s in spans), np.float64, len(spans))
        self.clusters, self.cluster = _codes([s.cluster for s in spans])
        self.namespaces, self.namespace = _codes([s.namespace for s in spans])
        self.workloads, self.workload = _codes([s.workload_ref.id for s in spans])
        self.workload_refs = list({s.workload_ref.id: s.workload_ref for s in spans}.values())
        self.images, self.image = _codes([row_label(s) for s in spans])
        self.versions, self.version = _codes([row_label(s, by_digest=True) for s in spans])
        self.digests, self.digest = _codes([s.digest or "" for s in spans])
        self.sandbox = np.array([is_sandbox(i) for i in self.images], dtype=bool)
        self.bounds = (float(self.first.min()), float(self.last.max())) if spans else None
        self.data_end = data_end if data_end is not None else (self.bounds or (0.0, 0.0))[1]
        newest = np.full(len(self.clusters), -np.inf)
        np.maximum.at(newest, self.cluster, self.last)
        self.ends: dict[str, float] = dict(zip(self.clusters, newest.tolist(), strict=True))

    def silence(self, *, silent_after: float = 300.0, forget_after: float = 7 * 86400.0) -> Silence:
        """Each cluster's end of data against the index's (see :mod:`analysis.silence`)."""
        return Silence(self.ends, self.data_end, silent_after, forget_after)

    def __len__(self) -> int:
        return len(self.spans)

    def scopes(self) -> list[tuple[str, str]]:
        """Every ``(cluster, namespace)`` that holds spans, sorted (the web app's filters)."""
        pairs = _distinct_pairs(self.cluster, self.namespace, len(self.namespaces))
        return sorted((self.clusters[c], self.namespaces[n]) for c, n in pairs)

    # -- selection ---------------------------------------------------------------------------
    def mask(
        self,
        scope: Scope | None = None,
        *,
        cluster: str | None = None,
        clusters: Sequence[str] = (),
        namespace_regex: str | None = None,
        workload: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> Mask:
        """Spans that ``Ledger.spans`` would return for the same scope (or the one the
        keywords make); ``[start, end]`` selects spans overlapping it."""
        if scope is None:
            scope = Scope(cluster, tuple(clusters), namespace_regex, workload)
        keep = np.ones(len(self.spans), dtype=bool)
        if scope.cluster is not None or scope.clusters:
            wanted = {c for c in self.clusters if scope.keeps_cluster(c)}
            keep &= self._isin(self.cluster, self.clusters, wanted)
        if scope.namespace is not None:
            wanted = {n for n in self.namespaces if scope.keeps_namespace(n)}
            keep &= self._isin(self.namespace, self.namespaces, wanted)
        if scope.workload is not None:
            named = {
                w.id
                for w in self.workload_refs
                if scope.keeps_workload(
                    cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name
                )
            }
            keep &= self._isin(self.workload, self.workloads, named)
        if start is not None:
            keep &= self.last >= start
        if end is not None:
            keep &= self.first <= end
        return keep

    @staticmethod
    def _isin(codes: npt.NDArray[np.int32], values: list[str], wanted: set[str]) -> Mask:
        table = np.fromiter((v in wanted for v in values), dtype=bool, count=len(values))
        return table[codes] if len(values) else np.zeros(len(codes), dtype=bool)

    def select(
        self, mask: Mask, *, tolerance: float = 0.0, silence: Silence | None = None
    ) -> list[Span]:
        """The selected spans in order; with ``tolerance``, spans whose last sample lies within
        it of their cluster's end of data are still running and last until the data's end
        (``silence``: the thresholds to judge that by, default :meth:`silence`)."""
        picked = [self.spans[i] for i in np.flatnonzero(mask).tolist()]
        return (silence or self.silence()).still_running(picked, tolerance)

    # -- the heatmap -------------------------------------------------------------------------
    def heatmap(
        self,
        mask: Mask,
        *,
        start: float,
        end: float,
        step: float,
        tolerance: float = 0.0,
        sandbox: bool = True,
        by_digest: bool = False,
        silence: Silence | None = None,
    ) -> tuple[Heatmap, Rows]:
        """``analysis.heatmap`` and ``row_details`` of ``select(mask, tolerance=…, silence=…)``."""
        labels, label = (self.versions, self.version) if by_digest else (self.images, self.image)
        if not sandbox:
            mask = mask & ~self.sandbox[self.image]
        idx = np.flatnonzero(mask)
        first = self.first[idx]
        last = self.last[idx]
        if tolerance:
            judge = silence or self.silence()
            ends = np.array([judge.end(c) for c in self.clusters], dtype=np.float64)
            gone = np.array([judge.gone(c) for c in self.clusters], dtype=bool)
            code = self.cluster[idx]
            running = (last >= ends[code] - tolerance) & (last < self.data_end) & ~gone[code]
            last = np.where(running, self.data_end, last)
        rows = label[idx]
        times = bucket_times(start, end, step)
        n = len(times)
        grid = np.asarray(times, dtype=np.float64)
        lo = np.searchsorted(grid, first, side="left")
        hi = np.searchsorted(grid, last, side="right")
        # A span between two bucket times counts at the next one (see analysis.heatmap).
        between = (lo == hi) & (lo < n)
        between[between] &= first[between] > grid[lo[between]] - step
        hi = np.where(between, lo + 1, hi)
        counted = lo < hi
        in_range = (last >= start) & (first <= end)
        present = np.unique(rows[counted])
        order = order_images(labels[i] for i in present.tolist())
        position = {name: k for k, name in enumerate(order)}
        slot = np.full(len(labels), -1, dtype=np.int64)
        for code in present.tolist():
            slot[code] = position[labels[code]]
        diff = np.zeros((len(order), n + 1), dtype=np.int64)
        r = slot[rows[counted]]
        np.add.at(diff, (r, lo[counted]), 1)
        np.add.at(diff, (r, hi[counted]), -1)
        counts = np.cumsum(diff[:, :n], axis=1)
        heat = Heatmap(
            times=times,
            images=tuple(order),
            counts=tuple(tuple(row) for row in counts.tolist()),
        )
        return heat, self._row_details(idx[in_range], rows[in_range], labels)

    def _row_details(
        self, idx: npt.NDArray[np.intp], rows: npt.NDArray[np.int32], labels: list[str]
    ) -> Rows:
        ids: dict[str, list[str]] = {}
        found: dict[str, list[str]] = {}
        for row, wl in _distinct_pairs(rows, self.workload[idx], len(self.workloads)):
            ids.setdefault(labels[row], []).append(self.workloads[wl])
        for row, dg in _distinct_pairs(rows, self.digest[idx], len(self.digests)):
            if self.digests[dg]:
                found.setdefault(labels[row], []).append(self.digests[dg])
        return {
            label: (tuple(sorted(names)), tuple(sorted(found.get(label, ()))))
            for label, names in ids.items()
        }


def _distinct_pairs(
    a: npt.NDArray[np.int32], b: npt.NDArray[np.int32], b_size: int
) -> list[tuple[int, int]]:
    """The distinct ``(a[i], b[i])`` pairs, as one 1-D unique of ``a * b_size + b`` (a 2-D
    ``np.unique(axis=…)`` sorts structured rows and is ten times slower)."""
    keys = np.unique(a.astype(np.int64) * max(b_size, 1) + b)
    first, second = np.divmod(keys, max(b_size, 1))
    return list(zip(first.tolist(), second.tolist(), strict=True))
