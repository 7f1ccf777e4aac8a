"""Answering questions: settings + filters + window → spans (ledger or live) → analysis.

One place that both the CLI and the web app call, so that "versions", "changes", "heatmap",
"history", "audit" and "workloads" mean the same everywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from imagetrail import analysis, budget
from imagetrail.analysis.silence import Silence
from imagetrail.analysis.spanindex import SpanIndex
from imagetrail.errors import InputError, LedgerError, LimitExceeded
from imagetrail.ledger import Ledger
from imagetrail.model import (
    AuditEntry,
    Change,
    Heatmap,
    HistoryEntry,
    Span,
    VersionCount,
    Wait,
    WorkloadSummary,
)
from imagetrail.names import check_names
from imagetrail.names import one_workload as one_workload  # re-exported: impact.py
from imagetrail.scope import Scope
from imagetrail.service.spans import (
    DEFAULT_RANGE,
    Grid,
    IndexSpans,
    LedgerSpans,
    LiveSpans,
    SilenceLimits,
    SpanSource,
    data_range,
    recorded_start,
)
from imagetrail.settings import Settings, default_ledger
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import Filters, PrometheusSource
from imagetrail.timeutil import format_duration, format_time, parse_duration, parse_time

if TYPE_CHECKING:
    from imagetrail.service.sync import SyncResult

log = logging.getLogger("imagetrail.service.query")


@dataclass(frozen=True, slots=True)
class Window:
    """A time range and/or instant as the user gave it (unresolved parts are None)."""

    start: float | None = None
    end: float | None = None
    at: float | None = None
    step: float | None = None

    @classmethod
    def from_flags(
        cls,
        *,
        since: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        at: str | None = None,
        step: str | None = None,
    ) -> Window:
        if since is not None and from_ is not None:
            raise InputError("give --since or --from, not both")
        now = time.time()
        end = parse_time(to, now) if to is not None else None
        start: float | None = None
        if since is not None:
            start = (end if end is not None else now) - _positive(parse_duration(since), "--since")
        elif from_ is not None:
            start = parse_time(from_, now)
        if start is not None and end is not None and start >= end:
            raise InputError(f"the range is empty: from {format_time(start)} to {format_time(end)}")
        step_s = _positive(parse_duration(step), "--step") if step is not None else None
        return cls(start, end, parse_time(at, now) if at is not None else None, step_s)


def _positive(seconds: float, flag: str) -> float:
    if seconds <= 0:
        raise InputError(f"{flag} must be a positive duration")
    return seconds


@dataclass(frozen=True, slots=True)
class Query:
    """What to answer about. ``clusters`` (any of these; the web app's multi-select) narrows
    further what ``cluster`` (exactly this one; the CLI's flag) selects."""

    cluster: str | None = None
    namespace: str | None = None
    workload: str | None = None
    window: Window = Window()
    source: str = "ledger"
    clusters: tuple[str, ...] = ()
    # The caller already ran QueryContext.check_names and reported its warnings (the API).
    names_checked: bool = field(default=False, compare=False)

    # Which workload containers the answer covers: made, and so validated, once at the edge
    # (the same refusal whichever back-end would have answered).
    scope: Scope = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # An empty workload is none ("history needs a WORKLOAD" says so where one is needed).
        scope = Scope(self.cluster, self.clusters, self.namespace, self.workload or None)
        object.__setattr__(self, "scope", scope)

    def keeps(self, cluster: str) -> bool:
        return not self.clusters or cluster in self.clusters

    @property
    def filters(self) -> Filters:
        return Filters(cluster=self.cluster, namespace_regex=self.namespace)


@dataclass(frozen=True, slots=True)
class HeatmapAnswer:
    heatmap: Heatmap
    start: float
    end: float
    step: float
    rows: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # row -> (workload ids, digests)


class QueryContext:
    """Settings-bound access to the ledger and the live source, and every answer."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        index: Callable[[], SpanIndex] | None = None,
        live_max_range: float | None = None,
        background: budget.Budget | None = None,
    ) -> None:
        """``ledger``: an open ledger to use (and leave open) instead of opening one per call;
        ``index``: gives an up-to-date in-memory index of that ledger's spans, read instead of
        the ledger's tables (both as the web app does); ``live_max_range``: longest range a
        live answer may read (the web's limit; the CLI has none); ``background``: the budget
        of source work done outside any request (the web's background sync), so that a
        shutdown can stop it."""
        self.settings = settings
        self.tolerance = 2 * float(settings.scrape_interval)
        self._ledger = ledger
        self._index = index
        self._live_max_range = live_max_range
        self._background = background

    @staticmethod
    def fmt_time(t: float) -> str:
        return format_time(t)

    # -- resources -------------------------------------------------------------------------
    @contextmanager
    def open_ledger(self, *, create: bool = True) -> Iterator[Ledger]:
        if self._ledger is not None:
            yield self._ledger
            return
        if not create:
            missing = _missing_default_ledger(self.settings.ledger)
            if missing is not None:
                raise missing
        ledger = Ledger.open(self.settings.ledger, create=create)
        try:
            yield ledger
        finally:
            ledger.close()

    def prom_config(self) -> PromConfig:
        url = self.settings.prometheus_url
        if not url:
            raise InputError(
                "no Prometheus URL",
                hint="pass --prometheus URL or set IMAGETRAIL_PROMETHEUS_URL",
            )
        user, password = self.settings.basic_auth_user, self.settings.basic_auth_password
        return PromConfig(
            url=url,
            bearer_token=self.settings.bearer_token,
            basic_auth=(user, password or "") if user else None,
            tenant=self.settings.tenant,
            ca_file=self.settings.ca_file,
            timeout=self.settings.timeout,
            retries=self.settings.retries,
            backoff=self.settings.retry_backoff,
            retry_budget=self.settings.retry_budget,
            accept_partial=self.settings.accept_partial,
        )

    def prom_client(self) -> PromClient:
        """A client for the source, spending the budget in force (a web request's; else the
        background work's, if any): every source client should come from here."""
        work = budget.current.get() or self._background
        config = self.prom_config()
        left = None if work is None else work.remaining()
        if left is not None:
            # No one query may outlive the work's deadline by more than a second.
            config = replace(config, timeout=max(1.0, min(config.timeout, left)))
        return PromClient(config, budget=work)

    def prometheus_source(
        self, query: Query, *, include_sandbox: bool = False
    ) -> AbstractContextManager[PrometheusSource]:
        """The Prometheus source narrowed to ``query``'s cluster and namespace regex."""
        return self._prometheus(query.filters, include_sandbox=include_sandbox)

    @contextmanager
    def _prometheus(
        self, filters: Filters, *, include_sandbox: bool = False
    ) -> Iterator[PrometheusSource]:
        client = self.prom_client()
        try:
            yield PrometheusSource(
                client,
                cluster_label=self.settings.cluster_label,
                default_cluster=self.settings.default_cluster,
                resolution=self.settings.scrape_interval,
                filters=filters,
                include_sandbox=include_sandbox,
            )
        finally:
            client.close()

    def sync(
        self,
        ledger: Ledger,
        source: PrometheusSource,
        *,
        since: float | None = None,
        until: float | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> SyncResult:
        """One sync pass with these settings (``imagetrail sync`` and ``serve``'s loop)."""
        from imagetrail.service.sync import sync_once

        url = self.settings.prometheus_url
        if not url:  # set whenever the source came from prom_config()
            raise InputError("no Prometheus URL")
        return sync_once(
            ledger,
            source,
            url=url,
            tenant=self.settings.tenant,
            signal=self.settings.signal,
            since=since,
            until=until,
            chunk=self.settings.chunk,
            concurrency=self.settings.concurrency,
            removed_after=self.settings.removed_after,
            forget_after=self.settings.cluster_silent_forget_after,
            progress=progress,
        )

    def refresh_changes(self, ledger: Ledger) -> None:
        """Derive the ledger's changes again first if spans were written since they were
        (a sync killed before deriving them): every reader of ``ledger.changes()`` calls this.
        With these settings, as :meth:`sync` derives them."""
        from imagetrail.service.sync import rederive_changes

        rederive_changes(
            ledger,
            tolerance=self.tolerance,
            removed_after=self.settings.removed_after,
            forget_after=self.settings.cluster_silent_forget_after,
            only_if_stale=True,
        )

    # -- spans -----------------------------------------------------------------------------
    @contextmanager
    def _reading(self, query: Query) -> Iterator[SpanSource]:
        """The span source that answers ``query`` (the only place that asks which back-end),
        with the query's names checked against it (warnings logged; see :meth:`check_names`)."""
        limits = SilenceLimits(
            self.settings.cluster_silent_after, self.settings.cluster_silent_forget_after
        )
        source: SpanSource
        if query.source == "prometheus":
            source = LiveSpans(self._read_live, limits, self.tolerance)
            yield source
            return
        if self._index is not None:
            source = IndexSpans(
                self._index,
                lambda: self.open_ledger(create=False),
                limits,
                self.refresh_changes,
                self.tolerance,
            )
            self._check_names(query, source)
            yield source
            return
        with self.open_ledger(create=False) as ledger:
            source = LedgerSpans(
                lambda: nullcontext(ledger), limits, self.refresh_changes, self.tolerance
            )
            self._check_names(query, source)
            yield source

    def check_names(self, query: Query) -> list[str]:
        """Warnings for namespace-regex branches that match no namespace the ledger knows;
        :class:`InputError` (with the closest known names) for a cluster, exact namespace or
        workload it does not know. Live answers are not checked: the ledger may be empty."""
        with self._reading(replace(query, names_checked=True)) as source:
            return self._names(query, source)

    @staticmethod
    def _names(query: Query, source: SpanSource) -> list[str]:
        if not (query.cluster or query.clusters or query.namespace or query.workload):
            return []
        return source.check_names(
            lambda known: check_names(
                known,
                cluster=query.cluster,
                clusters=query.clusters,
                namespace=query.namespace,
                workload=query.workload,
            )
        )

    def _check_names(self, query: Query, source: SpanSource) -> None:
        if query.names_checked:
            return
        for warning in self._names(query, source):
            log.warning("%s", warning)

    def silence(self) -> Silence:
        """Each cluster's end of data against where the ledger's data ends (silent clusters)."""
        with self._reading(Query(names_checked=True)) as source:
            assert isinstance(source, LedgerSpans | IndexSpans)
            return source.silence()

    def _read_live(self, filters: Filters, start: float, end: float) -> list[Span]:
        """Spans read from Prometheus for one answer (merged as a sync would store them)."""
        from imagetrail.service.sync import choose_signal, collect, merge_in_memory

        self._check_live_range(start, end)
        with self._prometheus(filters) as source:
            signal = choose_signal(source, self.settings.signal, start=start, end=end)
            spans = collect(
                source,
                signal,
                start,
                end,
                chunk=self.settings.chunk,
                concurrency=self.settings.concurrency,
            )
        return merge_in_memory(spans)

    def _check_live_range(self, start: float, end: float) -> None:
        """Refuse a live read longer than ``live_max_range`` before its first query: its cost
        (chunks, queries, memory) grows with the range."""
        limit = self._live_max_range
        if limit is None or end - start <= limit:
            return
        raise LimitExceeded(
            f"the range of {format_duration(end - start)} is longer than a live request may "
            f"read ({format_duration(limit)}, live_max_range)",
            hint=f"ask for at most {format_duration(limit)} (e.g. since="
            f"{format_duration(limit)}), or ask the ledger (source=ledger)",
            limit="live_max_range",
        )

    def spans(
        self, query: Query, *, default_range: float | None = DEFAULT_RANGE
    ) -> tuple[list[Span], float, float]:
        """Spans overlapping the query's window, with the window actually used."""
        spans, start, end, _ = self._spans(query, default_range=default_range)
        return spans, start, end

    def waits(self, query: Query, *, default_range: float | None = DEFAULT_RANGE) -> list[Wait]:
        """Waits (a pod container listed but not running, and why) overlapping the query's
        window (resolved as :meth:`spans` resolves it), as recorded in the ledger."""
        w = query.window
        with self._reading(query) as source:
            return source.waits(query.scope, source.wanted(w.start, w.end, default_range), w.end)

    def _spans(
        self, query: Query, *, default_range: float | None = DEFAULT_RANGE, silent: bool = False
    ) -> tuple[list[Span], float, float, Silence]:
        """:meth:`spans`, with each cluster's end of data they were judged by; ``silent``:
        a silent cluster's containers run on, as last known (for answers at an instant)."""
        w = query.window
        with self._reading(query) as source:
            wanted = source.wanted(w.start, w.end, default_range)
            frame = source.read(query.scope, wanted, w.end)
        start, end = _resolved(w.end, wanted, frame.data_start, frame.silence.data_end)
        spans = frame.silence.still_running(frame.spans, self.tolerance, silent=silent)
        if wanted is not None:
            spans = [s for s in spans if s.last_seen >= wanted]
        return spans, start, end, frame.silence

    def window(self, query: Query, *, default_range: float = DEFAULT_RANGE) -> tuple[float, float]:
        """The range an answer over ``query`` covers, resolved as :meth:`spans` resolves it
        (default ``default_range`` up to now, never past the recorded data), without
        reading any span."""
        with self.open_ledger(create=False) as ledger:
            data_start, data_end = data_range(ledger)
        w = query.window
        wanted = recorded_start(w.start, w.end, default_range)
        return _resolved(w.end, wanted, data_start, data_end)

    # -- answers ---------------------------------------------------------------------------
    def versions(self, query: Query) -> tuple[list[VersionCount], float]:
        """Versions running at ``--at`` (default: the end of the data), and that instant."""
        with self._reading(query) as source:
            frame, instant = source.at(query.scope, query.window.at, self.tolerance)
        spans = frame.silence.still_running(frame.spans, self.tolerance)
        stale = frame.silence.stale_at(instant)
        return analysis.distribution(spans, at=instant, stale=stale), instant

    def heatmap(self, query: Query) -> Heatmap:
        return self.heatmap_answer(query).heatmap

    def heatmap_answer(
        self,
        query: Query,
        *,
        points: int = 200,
        sandbox: bool = True,
        by_digest: bool = False,
    ) -> HeatmapAnswer:
        """The heatmap with what the web app shows around it (step, range, per-row details).

        ``points``: about how many columns when no step is given (the page asks for what fits
        its width); ``sandbox=False`` drops pod-sandbox ("pause") images.
        """
        w = query.window
        with self._reading(query) as source:
            wanted = source.wanted(w.start, w.end, DEFAULT_RANGE)
            frame = source.read(query.scope, wanted, w.end)
            start, end = _resolved(w.end, wanted, frame.data_start, frame.silence.data_end)
            step = w.step or analysis.default_step(start, end, target_points=points)
            grid = Grid(start, end, step, self.tolerance, sandbox=sandbox, by_digest=by_digest)
            heat, rows = source.heatmap(frame, grid)
        return HeatmapAnswer(heatmap=heat, start=start, end=end, step=step, rows=rows)

    def panel_heatmap(self, query: Query) -> Heatmap:
        """The original Grafana panel's query, run live (counts what the panel counts)."""
        w = query.window
        end = w.end if w.end is not None else time.time()
        start = w.start if w.start is not None else end - DEFAULT_RANGE
        step = w.step or analysis.default_step(start, end)
        with self.prometheus_source(query, include_sandbox=True) as source:
            return source.panel_heatmap(start=start, end=end, step=step)

    def changes(self, query: Query, *, kinds: Collection[str] | None = None) -> list[Change]:
        def detect(spans: list[Span], since: float, until: float) -> list[Change]:
            return analysis.detect_changes(
                spans,
                since=since,
                until=until,
                tolerance=self.tolerance,
                removed_after=self.settings.removed_after,
                forget_after=self.settings.cluster_silent_forget_after,
            )

        w = query.window
        with self._reading(query) as source:
            return source.changes(query.scope, w.start, w.end, set(kinds or ()) or None, detect)

    def history(self, query: Query) -> tuple[list[HistoryEntry], str]:
        if not query.workload:
            raise InputError("history needs a WORKLOAD")
        spans, start, end = self.spans(query, default_range=None)
        w = query.window
        if w.start is not None or w.end is not None:
            # Over a range, the periods inside it: not the whole lives of the pods that
            # happen to overlap it (which start and end outside, at arbitrary times).
            spans = [
                replace(s, first_seen=max(s.first_seen, start), last_seen=min(s.last_seen, end))
                for s in spans
                if s.first_seen <= end and s.last_seen >= start
            ]
        return analysis.history(spans), one_workload(spans, query.workload).id

    def audit(self, query: Query) -> list[AuditEntry]:
        spans, start, end = self.spans(query)
        return analysis.audit(spans, start=start, end=end)

    def workloads(self, query: Query) -> list[WorkloadSummary]:
        spans, _, end, silence = self._spans(query, default_range=None, silent=True)
        at = query.window.at if query.window.at is not None else end
        rows = analysis.workloads(spans, at=at, stale=silence.stale_at(at))
        # What a silent cluster's workloads run is last known; when they were last *seen* is
        # its last sample, not the end of the data.
        return [
            replace(w, last_seen=min(w.last_seen, silence.end(w.cluster))) if w.stale else w
            for w in rows
        ]


def _resolved(
    end: float | None, wanted: float | None, data_start: float, data_end: float
) -> tuple[float, float]:
    """The range an answer covers: from where it wanted to start (else where the data starts)
    to its end (else now, never past the data's end)."""
    start = wanted if wanted is not None else data_start
    return start, end if end is not None else min(time.time(), data_end)


def _missing_default_ledger(where: str) -> LedgerError | None:
    """The error for reading the default ledger before anything created it, with the way
    to the demo's ledger when ``imagetrail demo`` wrote one (never read in its place: a
    simulated fleet must not pass for the user's clusters)."""
    if where != default_ledger() or Path(where).exists():
        return None
    from imagetrail.service.demo import default_demo_ledger

    demo = default_demo_ledger()
    if demo.is_file():
        hint = (
            f"the demo's ledger is {demo}: IMAGETRAIL_LEDGER={demo} imagetrail versions; "
            "`imagetrail sync --prometheus URL` records your clusters' own"
        )
    else:
        hint = (
            "run `imagetrail sync --prometheus URL` first (or `imagetrail demo` for a "
            "simulated fleet), or check --ledger"
        )
    return LedgerError(f"no ledger at {where}", hint=hint)
