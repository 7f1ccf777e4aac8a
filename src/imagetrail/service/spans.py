"""Where an answer's spans come from: one protocol, three back-ends.

:class:`SpanSource` is what :class:`~imagetrail.service.query.QueryContext`'s answers read
through; they never ask which back-end they have. :class:`LedgerSpans` reads the ledger's
tables, :class:`IndexSpans` the web's in-memory index of them (same answers, faster), and
:class:`LiveSpans` reads Prometheus directly (no ledger). Every one narrows by the same
validated :class:`~imagetrail.scope.Scope`.

Recorded sources know where the data ends for each cluster before reading a span, so a
cluster that went silent before the start of an answer is read back to its last sample (it
still runs what it ran then). A live source learns each cluster's end from what it read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from imagetrail import analysis
from imagetrail.analysis.silence import Silence, data_ends
from imagetrail.analysis.spanindex import Mask, SpanIndex
from imagetrail.errors import InputError, LedgerError
from imagetrail.imageref import is_sandbox
from imagetrail.ledger import Ledger
from imagetrail.model import Change, Heatmap, Span, Wait, Workload
from imagetrail.scope import Scope
from imagetrail.sources.prometheus import Filters

DEFAULT_RANGE = 7 * 86400.0

HeatmapRows = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
Detect = Callable[[list[Span], float, float], list[Change]]
"""Changes found in spans between two times (:func:`imagetrail.analysis.detect_changes`)."""
NamesCheck = Callable[[Collection[Workload]], list[str]]


@dataclass(frozen=True, slots=True)
class SilenceLimits:
    """When a cluster counts as silent, and when as gone (settings ``cluster_silent_*``)."""

    silent_after: float
    forget_after: float

    def judge(self, ends: dict[str, float], data_end: float) -> Silence:
        return Silence(
            ends, data_end, silent_after=self.silent_after, forget_after=self.forget_after
        )


@dataclass(frozen=True, slots=True)
class Grid:
    """A heatmap's columns (``start`` to ``end`` by ``step``) and what its rows count: spans
    within ``tolerance`` of their cluster's end run on; ``sandbox``: pause images too;
    ``by_digest``: one row per digest."""

    start: float
    end: float
    step: float
    tolerance: float
    sandbox: bool = True
    by_digest: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    """What one read gave: the spans, where the data starts, and each cluster's end of data
    (``silence``) that they are judged by. ``mask`` is the index's own selection, whose spans
    are only listed when asked for (its heatmap is computed from the mask alone)."""

    data_start: float
    silence: Silence
    listed: list[Span] | None = field(default=None, compare=False, repr=False)
    mask: Mask | None = field(default=None, compare=False, repr=False)
    # The index the mask selects from: a sync may swap in a new one between reads.
    index: SpanIndex | None = field(default=None, compare=False, repr=False)

    @property
    def spans(self) -> list[Span]:
        listed = self.listed
        if listed is None:
            assert self.index is not None, "a frame without spans selects them from a mask"
            assert self.mask is not None, "a frame without spans selects them from a mask"
            listed = self.index.select(self.mask)
            object.__setattr__(self, "listed", listed)
        return listed


class SpanSource(Protocol):
    """What every answer reads spans through (see the module's docstring)."""

    def wanted(
        self, start: float | None, end: float | None, default_range: float | None
    ) -> float | None:
        """Where an answer over ``[start, end]`` starts reading (``default_range`` before the
        end when no start is given; None: from the start of the data)."""
        ...

    def read(self, scope: Scope, start: float | None, end: float | None) -> Frame:
        """Spans in scope overlapping ``[start, end]``, and those a silent cluster still runs."""
        ...

    def at(self, scope: Scope, at: float | None, tolerance: float) -> tuple[Frame, float]:
        """Spans in scope around the instant ``at`` (default: the end of the data), and it."""
        ...

    def heatmap(self, frame: Frame, grid: Grid) -> tuple[Heatmap, HeatmapRows]:
        """The heatmap of ``frame`` (as :func:`imagetrail.analysis.heatmap` makes it)."""
        ...

    def changes(
        self,
        scope: Scope,
        start: float | None,
        end: float | None,
        kinds: Collection[str] | None,
        detect: Detect,
    ) -> list[Change]:
        """Changes in scope overlapping ``[start, end]`` (default: the last week); ``detect``
        finds them in spans, for a source that has none recorded."""
        ...

    def waits(self, scope: Scope, start: float | None, end: float | None) -> list[Wait]:
        """Waits in scope overlapping ``[start, end]`` (recorded sources only)."""
        ...

    def check_names(self, check: NamesCheck) -> list[str]:
        """Run a names check against the workloads the source knows (live: none checked)."""
        ...


def _spans_heatmap(spans: list[Span], grid: Grid) -> tuple[Heatmap, HeatmapRows]:
    """The heatmap of spans already judged (what an index computes from its mask)."""
    if not grid.sandbox:
        spans = [s for s in spans if not is_sandbox(s.image)]
    start, end, by_digest = grid.start, grid.end, grid.by_digest
    return (
        analysis.heatmap(spans, start=start, end=end, step=grid.step, by_digest=by_digest),
        analysis.row_details(spans, start=start, end=end, by_digest=by_digest),
    )


class _Recorded:
    """What the ledger and its index share: bounds from the sync watermark, stored changes and
    waits, silent clusters read back to their last sample."""

    def __init__(
        self,
        open_ledger: Callable[[], AbstractContextManager[Ledger]],
        limits: SilenceLimits,
        refresh_changes: Callable[[Ledger], None],
    ) -> None:
        self._open = open_ledger
        self._limits = limits
        self._refresh = refresh_changes

    def wanted(
        self, start: float | None, end: float | None, default_range: float | None
    ) -> float | None:
        return recorded_start(start, end, default_range)

    @staticmethod
    def _reach_back(start: float | None, silence: Silence, tolerance: float) -> float | None:
        """How far back to read from ``start`` on: a cluster silent since before ``start``
        still runs what it ran at its last sample."""
        if start is None:
            return None
        ends = [silence.end(c) - tolerance for c in silence.stale_at(start)]
        return min([start, *ends])

    def changes(
        self,
        scope: Scope,
        start: float | None,
        end: float | None,
        kinds: Collection[str] | None,
        detect: Detect,
    ) -> list[Change]:
        start = start if start is not None else time.time() - DEFAULT_RANGE
        with self._open() as ledger:
            ledger_bounds(ledger)  # "nothing found" would hide that nothing was ever recorded
            self._refresh(ledger)
            return ledger.changes(scope, start=start, end=end, kinds=kinds)

    def waits(self, scope: Scope, start: float | None, end: float | None) -> list[Wait]:
        with self._open() as ledger:
            return ledger.waits(scope, start=start, end=end)


class LedgerSpans(_Recorded):
    """Spans as the ledger's tables hold them."""

    def __init__(
        self,
        open_ledger: Callable[[], AbstractContextManager[Ledger]],
        limits: SilenceLimits,
        refresh_changes: Callable[[Ledger], None],
        tolerance: float,
    ) -> None:
        super().__init__(open_ledger, limits, refresh_changes)
        self._tolerance = tolerance

    def _silence(self, ledger: Ledger) -> tuple[float, Silence]:
        data_start, data_end = data_range(ledger)
        return data_start, self._limits.judge(ledger.cluster_ends(), data_end)

    def read(self, scope: Scope, start: float | None, end: float | None) -> Frame:
        with self._open() as ledger:
            data_start, silence = self._silence(ledger)
            reach = self._reach_back(start, silence, self._tolerance)
            return Frame(data_start, silence, ledger.spans(scope, start=reach, end=end))

    def at(self, scope: Scope, at: float | None, tolerance: float) -> tuple[Frame, float]:
        with self._open() as ledger:
            data_start, silence = self._silence(ledger)
            instant = at if at is not None else min(time.time(), silence.data_end)
            reach = self._reach_back(instant - tolerance, silence, tolerance)
            spans = ledger.spans(scope, start=reach, end=instant)
        return Frame(data_start, silence, spans), instant

    def heatmap(self, frame: Frame, grid: Grid) -> tuple[Heatmap, HeatmapRows]:
        spans = frame.silence.still_running(frame.spans, grid.tolerance, silent=True)
        return _spans_heatmap([s for s in spans if s.last_seen >= grid.start], grid)

    def check_names(self, check: NamesCheck) -> list[str]:
        with self._open() as ledger:
            return check(ledger.workloads())

    def silence(self) -> Silence:
        with self._open() as ledger:
            return self._silence(ledger)[1]


class IndexSpans(_Recorded):
    """Spans from the web's in-memory index of the ledger (the same answers, faster)."""

    def __init__(
        self,
        index: Callable[[], SpanIndex],
        open_ledger: Callable[[], AbstractContextManager[Ledger]],
        limits: SilenceLimits,
        refresh_changes: Callable[[Ledger], None],
        tolerance: float,
    ) -> None:
        super().__init__(open_ledger, limits, refresh_changes)
        self._index = index
        self._tolerance = tolerance

    def indexed(self) -> SpanIndex:
        index = self._index()
        if index.bounds is None:
            with self._open() as ledger:
                ledger_bounds(ledger)  # raises the usual "empty ledger" error
        return index

    def _judged(self, index: SpanIndex) -> Silence:
        return index.silence(
            silent_after=self._limits.silent_after, forget_after=self._limits.forget_after
        )

    def read(self, scope: Scope, start: float | None, end: float | None) -> Frame:
        index = self.indexed()
        assert index.bounds is not None  # indexed() refuses an empty ledger
        silence = self._judged(index)
        mask = index.mask(scope, start=self._reach_back(start, silence, self._tolerance), end=end)
        return Frame(index.bounds[0], silence, mask=mask, index=index)

    def at(self, scope: Scope, at: float | None, tolerance: float) -> tuple[Frame, float]:
        index = self.indexed()
        assert index.bounds is not None
        silence = self._judged(index)
        instant = at if at is not None else min(time.time(), index.data_end)
        reach = self._reach_back(instant - tolerance, silence, tolerance)
        mask = index.mask(scope, start=reach, end=instant)
        return Frame(index.bounds[0], silence, mask=mask, index=index), instant

    def heatmap(self, frame: Frame, grid: Grid) -> tuple[Heatmap, HeatmapRows]:
        # The index the frame was read from, not the current one (its mask fits only that).
        assert frame.mask is not None and frame.index is not None  # noqa: PT018
        return frame.index.heatmap(
            frame.mask,
            start=grid.start,
            end=grid.end,
            step=grid.step,
            tolerance=grid.tolerance,
            sandbox=grid.sandbox,
            by_digest=grid.by_digest,
            silence=frame.silence,
        )

    def check_names(self, check: NamesCheck) -> list[str]:
        try:
            return check(self._index().workload_refs)  # empty ledger: nothing checked
        except InputError:
            pass  # the index holds spans only; a workload that only ever waited is known
        with self._open() as ledger:
            return check(ledger.workloads())

    def silence(self) -> Silence:
        return self._judged(self.indexed())


class LiveSpans:
    """Spans read from Prometheus for this answer alone (nothing recorded)."""

    def __init__(
        self,
        read_live: Callable[[Filters, float, float], list[Span]],
        limits: SilenceLimits,
        tolerance: float,
    ) -> None:
        self._read_live = read_live
        self._limits = limits
        self._tolerance = tolerance

    def wanted(
        self, start: float | None, end: float | None, default_range: float | None
    ) -> float | None:
        if start is not None:
            return start
        return (end if end is not None else time.time()) - (default_range or DEFAULT_RANGE)

    def _spans(self, scope: Scope, start: float, end: float) -> list[Span]:
        filters = Filters(cluster=scope.cluster, namespace_regex=scope.namespace)
        return [s for s in self._read_live(filters, start, end) if scope.keeps_span(s)]

    def read(self, scope: Scope, start: float | None, end: float | None) -> Frame:
        end = end if end is not None else time.time()
        start = start if start is not None else end - DEFAULT_RANGE
        spans = self._spans(scope, start, end)
        return Frame(start, self._limits.judge(data_ends(spans), end), spans)

    def at(self, scope: Scope, at: float | None, tolerance: float) -> tuple[Frame, float]:
        t = at if at is not None else time.time()
        spans = self._spans(scope, t - 4 * tolerance, t)
        # Without an instant, "now" is the newest sample the server has.
        instant = t if at is not None else max((s.last_seen for s in spans), default=t)
        return Frame(t, self._limits.judge(data_ends(spans), instant), spans), instant

    def heatmap(self, frame: Frame, grid: Grid) -> tuple[Heatmap, HeatmapRows]:
        spans = frame.silence.still_running(frame.spans, grid.tolerance, silent=True)
        return _spans_heatmap(spans, grid)

    def changes(
        self,
        scope: Scope,
        start: float | None,
        end: float | None,
        kinds: Collection[str] | None,
        detect: Detect,
    ) -> list[Change]:
        end = end if end is not None else time.time()
        start = self.wanted(start, end, DEFAULT_RANGE)
        assert start is not None
        frame = self.read(scope, start, end)
        found = detect(frame.silence.still_running(frame.spans, self._tolerance), start, end)
        return [c for c in found if kinds is None or c.kind.value in kinds]

    def waits(self, scope: Scope, start: float | None, end: float | None) -> list[Wait]:
        raise InputError(
            "waits are read from the ledger only",
            hint="sync first (`imagetrail sync`), then ask without source=prometheus",
        )

    def check_names(self, check: NamesCheck) -> list[str]:
        return []  # live answers are not checked: the ledger may be empty


def recorded_start(
    start: float | None, end: float | None, default_range: float | None
) -> float | None:
    """Where an answer from recorded data starts reading: ``start``, else ``default_range``
    before the end (or now), else (None) from the start of the data."""
    if start is None and default_range is not None:
        return (end if end is not None else time.time()) - default_range
    return start


def data_range(ledger: Ledger) -> tuple[float, float]:
    """Where the recorded data starts and ends: the end is the sync watermark (the last span's
    end for a ledger filled without one); :class:`LedgerError` for an empty ledger."""
    start, last = ledger_bounds(ledger)
    return start, ledger.synced_until() or last


def ledger_bounds(ledger: Ledger) -> tuple[float, float]:
    """The ledger's time bounds; an empty ledger is an error with a way out."""
    bounds = ledger.time_bounds()
    if bounds is None:
        raise LedgerError(
            f"the ledger {ledger.url} is empty",
            hint="run `imagetrail sync --prometheus URL` (or `imagetrail demo`) first",
        )
    return bounds
