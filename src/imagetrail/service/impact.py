"""Change impact and capacity per version: the ledger says what ran where, a signal reader says
how it behaved. The I/O half; the statistics live in :mod:`imagetrail.analysis.verdict`.

For each change the ledger gives the workload container's pods on both sides and the
neighbouring changes; the reader gives one value per block of each signal. The reader is
chosen once (:func:`signal_source`): Prometheus when a URL is set — one range query per
signal and window, stepped by the block length (``increase(...[block])`` at each block's end
covers exactly that block), ``concurrency`` at a time — else, for a ledger ``imagetrail demo``
wrote, the simulator that made it (:mod:`imagetrail.sim.signals`). Nothing after that choice
asks which one it got.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from imagetrail.analysis.dora import DoraFigures, dora
from imagetrail.analysis.verdict import SignalData, Thresholds, Windows, assess, windows
from imagetrail.errors import ConfigError, InputError, LedgerError
from imagetrail.ledger.schema import DEMO_SIMULATION
from imagetrail.model import Change, ChangeKind, EventCount, Impact, Span, matches_workload
from imagetrail.service.query import Query, QueryContext, Window, one_workload
from imagetrail.service.spans import data_range
from imagetrail.settings import Settings
from imagetrail.sources.promql import regex_literal
from imagetrail.sources.signals import (
    BUILTIN_SIGNALS,
    PrometheusSignals,
    SignalDef,
    SignalReader,
    WorkloadKey,
    signal_expr,
)

log = logging.getLogger("imagetrail.service.impact")


def _in_scope(spec: Mapping[str, str], key: WorkloadKey) -> bool:
    """Does a user query scoped by ``namespace`` (regex) / ``workload`` apply to ``key``?"""
    cluster, namespace, kind, name, _ = key
    if "namespace" in spec and not re.fullmatch(spec["namespace"], namespace):
        return False
    return "workload" not in spec or matches_workload(
        spec["workload"], cluster=cluster, namespace=namespace, kind=kind, name=name
    )


def _key(c: Change | Span) -> WorkloadKey:
    kind = c.workload_kind
    return (c.cluster, c.namespace, kind, c.workload, c.container)


@dataclass(frozen=True, slots=True)
class _Plan:
    change: Change
    span: Windows
    pods: tuple[str, ...]
    covered: tuple[tuple[float, ...], tuple[float, ...]]  # block ends with the container running


@dataclass(frozen=True, slots=True)
class SignalSource:
    """The chosen source of signal values: its name, a method tag (part of a recorded
    verdict's method) and how to open a reader on it."""

    name: str
    method: str | None  # None for Prometheus: the method hashes of recorded verdicts stay
    open: Callable[[], SignalReader]


def signal_source(ctx: QueryContext) -> SignalSource | None:
    """The one place the source of signal values is chosen: Prometheus when a URL is set;
    else, for a ledger ``imagetrail demo`` wrote (its ``meta`` says so, with the simulator's
    seed, start and days), the simulator that made it; else None."""
    if ctx.settings.prometheus_url:
        return SignalSource(
            "Prometheus", None, lambda: PrometheusSignals(ctx.settings, ctx.prom_client())
        )
    try:
        with ctx.open_ledger(create=False) as ledger:
            text = ledger.meta_value(DEMO_SIMULATION)
    except LedgerError:
        return None  # no ledger yet: the caller's own error says what is missing
    if text is None:
        return None
    params = json.loads(text)
    seed, start, days = int(params["seed"]), float(params["start"]), float(params["days"])

    def simulator() -> SignalReader:
        from imagetrail.sim.signals import demo_signals

        return demo_signals(seed, start, days)

    return SignalSource("the demo simulator", "simulator", simulator)


def _need_source(ctx: QueryContext) -> SignalSource:
    source = signal_source(ctx)
    if source is None:
        raise ConfigError(
            "impact needs Prometheus: no Prometheus URL is set",
            hint="pass --prometheus URL or set IMAGETRAIL_PROMETHEUS_URL",
        )
    return source


class ImpactRunner:
    """Everything needed to judge changes: settings, the ledger's spans, a signal reader."""

    def __init__(self, ctx: QueryContext, reader: SignalReader | None = None) -> None:
        """``reader``: where the values come from (default: :func:`signal_source`'s, opened
        for each :meth:`judge` and closed after it)."""
        s = ctx.settings
        self.ctx = ctx
        self.reader = reader
        self.block: float = s.impact_block
        self.before: float = s.impact_before
        self.after: float = s.impact_after
        self.thresholds = Thresholds(
            min_blocks=s.impact_min_blocks,
            alpha=s.impact_alpha,
            min_effect=s.impact_min_effect,
            min_change=s.impact_min_change,
        )
        self.templates: dict[str, dict[str, str]] = dict(s.impact_queries or {})
        for name in self.templates:
            if name in {d.name for d in BUILTIN_SIGNALS}:
                raise ConfigError(f"impact_queries: {name!r} is a built-in signal's name")
        self.settings = s
        self.concurrency: int = s.concurrency

    def signals(self, key: WorkloadKey) -> list[SignalDef]:
        """The signals judged for one workload container: the built-in ones and the user's
        templates in scope, those the reader can give."""
        out = list(BUILTIN_SIGNALS)
        for name, spec in sorted(self.templates.items()):
            if _in_scope(spec, key):
                out.append(SignalDef(name, "template", spec["query"], template=True))
        return [d for d in out if self.reader is None or self.reader.reads(d)]

    def expressions(self, key: WorkloadKey, pods: Sequence[str]) -> list[tuple[SignalDef, str]]:
        """Every signal's PromQL for one workload container and its pods."""
        return [
            (d, signal_expr(self.settings, d, key, pods, self.block)) for d in self.signals(key)
        ]

    # -- planning ----------------------------------------------------------------------------
    def _blocks(self, lo: float, hi: float, *, backwards: bool) -> list[float]:
        n = math.floor((hi - lo) / self.block + 1e-9)
        if backwards:  # blocks end at the change's start
            return [hi - k * self.block for k in range(n - 1, -1, -1)]
        return [lo + k * self.block for k in range(1, n + 1)]

    def _covered(self, ends: list[float], spans: Sequence[Span]) -> tuple[float, ...]:
        half = self.block / 2
        return tuple(t for t in ends if any(s.first_seen <= t - half <= s.last_seen for s in spans))

    def plan(
        self, changes: Sequence[Change], spans: Sequence[Span], all_changes: Sequence[Change],
        data_end: float,
    ) -> list[_Plan]:  # fmt: skip
        by_key: dict[WorkloadKey, list[Span]] = defaultdict(list)
        for s in spans:
            by_key[_key(s)].append(s)
        neighbours: dict[WorkloadKey, list[Change]] = defaultdict(list)
        for c in all_changes:
            neighbours[_key(c)].append(c)
        plans = []
        for change in changes:
            near = sorted(neighbours[_key(change)], key=lambda c: c.started)
            prev = [c for c in near if c.started < change.started]
            nxt = [c for c in near if c.started > change.started]
            span = windows(
                change,
                before=self.before,
                after=self.after,
                # A rollout cut short ran until this change: nothing before it is clean.
                previous_settled=(prev[-1].settled or prev[-1].started) if prev else None,
                next_started=nxt[0].started if nxt else None,
                data_end=data_end,
            )
            hi = span.after[1] if span.after else span.before[1]
            mine = [
                s
                for s in by_key[_key(change)]
                if s.last_seen >= span.before[0] and s.first_seen <= hi
            ]
            before_ends = self._blocks(*span.before, backwards=True)
            after_ends = self._blocks(*span.after, backwards=False) if span.after else []
            plans.append(
                _Plan(
                    change,
                    span,
                    tuple(sorted({s.pod for s in mine})),
                    (self._covered(before_ends, mine), self._covered(after_ends, mine)),
                )
            )
        return plans

    # -- fetching ----------------------------------------------------------------------------
    def _values(
        self, d: SignalDef, key: WorkloadKey, pods: Sequence[str], ends: tuple[float, ...]
    ) -> tuple[float, ...]:
        if not ends:
            return ()
        assert self.reader is not None  # judge() opened one
        out = []
        for value in self.reader.block_values(d, key, pods, ends, self.block):
            if (value is None or not math.isfinite(value)) and d.absent_is_zero:
                value = 0.0
            if value is not None and math.isfinite(value):
                out.append(value)
        return tuple(out)

    def judge(
        self, plans: Sequence[_Plan], progress: Callable[[int, int], None] | None = None
    ) -> list[Impact]:
        """Read every signal of every plan (``concurrency`` at a time) and assess each;
        ``progress(done, total)`` is called as the reads finish."""
        if self.reader is None:
            self.reader = _need_source(self.ctx).open()
            try:
                return self.judge(plans, progress)
            finally:
                self.reader.close()
                self.reader = None
        sigs: dict[int, list[SignalDef]] = {
            i: self.signals(_key(p.change))
            for i, p in enumerate(plans)
            if p.change.kind not in (ChangeKind.ADDED, ChangeKind.REMOVED)
            and p.span.after is not None
        }
        jobs = [(i, d, side) for i, defs in sigs.items() for d in defs for side in (0, 1)]
        # Events: one read per existing window, also for rollouts that never finished.
        event_jobs = [
            (i, side, window)
            for i, p in enumerate(plans)
            if p.change.kind not in (ChangeKind.ADDED, ChangeKind.REMOVED) and p.pods
            for side, window in enumerate((p.span.before, p.span.after))
            if window is not None and window[1] > window[0]
        ]
        events: dict[tuple[int, int], dict[tuple[str, str], int]] = {}
        results: dict[tuple[int, str, int], tuple[float, ...]] = {}
        total = len(jobs) + len(event_jobs)
        done = 0
        lock = threading.Lock()

        def tick() -> None:
            nonlocal done
            if progress is not None:
                with lock:
                    done += 1
                    progress(done, total)

        def run(job: tuple[int, SignalDef, int]) -> None:
            i, d, side = job
            p = plans[i]
            results[(i, d.name, side)] = self._values(d, _key(p.change), p.pods, p.covered[side])
            tick()

        reader = self.reader

        def run_events(job: tuple[int, int, tuple[float, float]]) -> None:
            i, side, (lo, hi) = job
            p = plans[i]
            events[(i, side)] = reader.events(_key(p.change), p.pods, hi, hi - lo)
            tick()

        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            list(pool.map(run, jobs))
            list(pool.map(run_events, event_jobs))
        out = []
        for i, p in enumerate(plans):
            signals = [
                SignalData(
                    d.name, d.unit, results[(i, d.name, 0)], results[(i, d.name, 1)], d.decides
                )
                for d in sigs.get(i, [])
            ]
            verdict = assess(p.change, p.span, signals, self.thresholds)
            out.append(
                replace(verdict, events=_event_counts(p, events.get((i, 0)), events.get((i, 1))))
            )
        return out


def _event_counts(
    plan: _Plan,
    before: Mapping[tuple[str, str], int] | None,
    after: Mapping[tuple[str, str], int] | None,
) -> tuple[EventCount, ...] | None:
    """Both windows' counts side by side; a window that exists but saw nothing counts 0, one
    that does not exist (no after-window: the rollout never finished) is None."""
    if before is None and after is None:
        return None  # no window was read (no pods, or a change without windows)
    has_after = plan.span.after is not None and after is not None
    keys = sorted(set(before or {}) | set(after or {}))
    return tuple(
        EventCount(
            state="terminated" if state == "terminated" else "waiting",
            reason=reason,
            before=(before or {}).get((state, reason), 0) if before is not None else None,
            after=(after or {}).get((state, reason), 0) if has_after else None,
        )
        for state, reason in keys
    )


def _context_spans(
    ctx: QueryContext, changes: Sequence[Change], lo: float, hi: float
) -> tuple[list[Span], list[Change], float]:
    """The spans and changes around ``changes`` (their clusters and namespaces only) and the
    end of the recorded data."""
    query = Query(
        clusters=tuple(sorted({c.cluster for c in changes})),
        namespace="|".join(regex_literal(n) for n in sorted({c.namespace for c in changes})),
        window=Window(start=lo),
    )
    # No end on purpose: the answer's end is then the end of the data, which decides whether
    # an after-window is complete.
    spans, _, data_end = ctx.spans(query, default_range=None)
    neighbours = ctx.changes(replace(query, window=Window(start=lo, end=hi)))
    return [s for s in spans if s.first_seen <= hi], neighbours, data_end


METHOD_VERSION = 1  # bump when the statistics change: recorded verdicts are then recomputed


def method_of(settings: Settings, source: str | None = None) -> str:
    """A hash of everything a verdict depends on besides the data: recorded verdicts are
    reused only by the same method (other thresholds or queries compute afresh).
    ``source``: :attr:`SignalSource.method` (None: Prometheus)."""
    ident: list[object] = [METHOD_VERSION, [d.expr for d in BUILTIN_SIGNALS]]
    ident += [
        settings.impact_before,
        settings.impact_after,
        settings.impact_block,
        settings.impact_min_blocks,
        settings.impact_alpha,
        settings.impact_min_effect,
        settings.impact_min_change,
        settings.impact_queries,
        settings.cluster_label,
        settings.default_cluster,
    ]
    if source is not None:
        ident.append(source)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()


def impacts_for(
    ctx: QueryContext,
    changes: Sequence[Change],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Impact]:
    """The verdict on each change (same order).

    Final verdicts (:func:`is_final`: the after-window ended before the end of the data, or
    the rollout was cut short) are recorded in the ledger and read back from there, so they
    outlive Prometheus' retention of the metrics; the others are computed from the signal
    source (:func:`signal_source`; :class:`ConfigError` when there is none).
    ``progress(done, total)`` counts the reads (Prometheus queries)."""
    unique = list(dict.fromkeys(changes))
    if not unique:
        return []
    source = signal_source(ctx)
    method = method_of(ctx.settings, source.method if source else None)
    with ctx.open_ledger(create=False) as ledger:
        known = ledger.stored_impacts(unique, method)
    todo = [c for c in unique if c not in known]
    if todo:
        source = source or _need_source(ctx)
        reader = source.open()
        try:
            runner = ImpactRunner(ctx, reader)
            lo = min(c.started for c in todo) - runner.before - runner.block
            hi = max((c.settled or c.started) for c in todo) + runner.after + runner.block
            spans, all_changes, data_end = _context_spans(ctx, todo, lo, hi)
            fresh = runner.judge(runner.plan(todo, spans, all_changes, data_end), progress)
        finally:
            reader.close()
        known.update(zip(todo, fresh, strict=True))
        _record(ctx, [r for r in fresh if is_final(r, data_end)], method)
    return [known[c] for c in changes]


def is_final(impact: Impact, data_end: float) -> bool:
    """Will more data never change this verdict? True when its after-window ended before the
    end of the data, or when the rollout was cut short (it never gets an after-window)."""
    if impact.change.cut_short is not None and impact.change.ended is not None:
        return True
    return impact.after is not None and impact.after[1] < data_end


def _record(ctx: QueryContext, impacts: Sequence[Impact], method: str) -> None:
    # A ledger that cannot be written (read-only file, replica) still gets its answer.
    try:
        with ctx.open_ledger(create=False) as ledger:
            ledger.record_impacts(impacts, method)
    except LedgerError as exc:
        log.warning("could not record impact verdicts in the ledger: %s", exc.message)


# -- capacity per version ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Capacity:
    """CPU and memory of one version of one workload container, per container."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    image: str
    digest: str | None
    first_seen: float
    last_seen: float
    samples: int
    cpu_p50: float | None
    cpu_p95: float | None
    memory_p50: float | None
    memory_p95: float | None


def _quantiles(values: Iterable[float]) -> tuple[float | None, float | None]:
    arr = np.fromiter(values, dtype=float)
    if arr.size == 0:
        return None, None
    p50, p95 = np.quantile(arr, [0.5, 0.95])
    return float(p50), float(p95)


def capacity_for(ctx: QueryContext, query: Query) -> list[Capacity]:
    """p50/p95 CPU (cores) and working-set memory (bytes) per container for each version a
    workload ran in the window; samples count only while a pod ran that version."""
    if not query.workload:
        raise InputError("capacity needs a WORKLOAD")
    source = signal_source(ctx)
    if source is None:  # before reading the ledger
        raise InputError(
            "no Prometheus URL", hint="pass --prometheus URL or set IMAGETRAIL_PROMETHEUS_URL"
        )
    spans, start, end = ctx.spans(query, default_range=30 * 86400.0)
    one_workload(spans, query.workload)
    groups: dict[tuple[str, str, str | None], list[Span]] = defaultdict(list)
    for s in spans:
        groups[(s.container, s.image, s.digest)].append(s)
    step = max(60.0, ctx.settings.scrape_interval, math.ceil((end - start) / 8000 / 60) * 60)
    rate_range = max(4 * ctx.settings.scrape_interval, step)
    rows = []
    reader = source.open()
    try:
        for (container, image, digest), group in sorted(
            groups.items(), key=lambda kv: min(s.first_seen for s in kv[1])
        ):
            lo = max(start, min(s.first_seen for s in group))
            hi = min(end, max(s.last_seen for s in group))
            pods = sorted({s.pod for s in group})
            key = (group[0].cluster, group[0].namespace, group[0].workload_kind,
                   group[0].workload, container)  # fmt: skip
            cpu: list[float] = []
            mem: list[float] = []
            if hi > lo:
                inside = _inside(group)
                cpu_points, mem_points = reader.usage(key, pods, lo, hi, step, rate_range)
                cpu = [v for pod, t, v in cpu_points if inside(pod, t)]
                mem = [v for pod, t, v in mem_points if inside(pod, t)]
            c50, c95 = _quantiles(cpu)
            m50, m95 = _quantiles(mem)
            rows.append(
                Capacity(*key, image, digest, lo, hi, max(len(cpu), len(mem)), c50, c95, m50, m95)
            )
    finally:
        reader.close()
    return rows


def _inside(group: Sequence[Span]) -> Callable[[str, float], bool]:
    by_pod: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in group:
        by_pod[s.pod].append((s.first_seen, s.last_seen))

    def check(pod: str, t: float) -> bool:
        return any(a <= t <= b for a, b in by_pod.get(pod, ()))

    return check


# -- DORA -------------------------------------------------------------------------------------
def dora_for(
    ctx: QueryContext,
    query: Query,
    *,
    by: str = "workload",
    lead_times: Mapping[Change, float] | None = None,
) -> list[DoraFigures]:
    """DORA figures for deployments in the query's window (default the last 7 days).

    Regressions count as failures when there is a signal source (:func:`signal_source`:
    Prometheus, or a demo ledger's simulator; impact is computed for the window's changes);
    without one, only rollbacks and failed rollouts do.
    """
    start, end = ctx.window(query)
    with ctx.open_ledger(create=False) as ledger:
        data_start, _ = data_range(ledger)
    # The rates divide by the days the ledger holds: 30d asked of a 14-day ledger is 14 days.
    start = max(start, data_start)
    if start >= end:
        raise InputError("the range holds no recorded data", hint="widen it with --since")
    # Changes past the window's end: a failure near the end finds its restore there.
    later = Query(
        cluster=query.cluster,
        namespace=query.namespace,
        workload=query.workload,
        window=Window(start=start),
        clusters=query.clusters,
    )
    found = ctx.changes(later)
    regressions: list[Change] = []
    if signal_source(ctx) is not None:
        inside = [c for c in found if start <= c.started < end]
        regressions = [i.change for i in impacts_for(ctx, inside) if i.verdict == "regression"]
    return dora(found, start=start, end=end, by=by, regressions=regressions, lead_times=lead_times)


def lead_times_for(ctx: QueryContext, query: Query) -> dict[Change, float]:
    """Lead time of each detected change a CI/CD event with a commit time matched (when
    several events matched one change, the earliest commit: the longest wait)."""
    from imagetrail.service.deployments import deployments_with_matches

    out: dict[Change, float] = {}
    for m in deployments_with_matches(ctx, query):
        if m.change is not None and m.lead_time is not None:
            out[m.change] = max(out.get(m.change, 0.0), m.lead_time)
    return out
