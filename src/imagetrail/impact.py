"""Change impact and capacity per version: the ledger says what ran where, Prometheus says how
it behaved. The I/O half; the statistics live in :mod:`imagetrail.analysis.impact`.

For each change the ledger gives the workload container's pods on both sides and the
neighbouring changes; one range query per signal and window, stepped by the block length,
gives one value per block (``increase(...[block])`` at each block's end covers exactly that
block). Queries run ``concurrency`` at a time.
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
from imagetrail.analysis.impact import SignalData, Thresholds, Windows, assess, windows
from imagetrail.errors import ConfigError, InputError, LedgerError
from imagetrail.model import Change, ChangeKind, EventCount, Impact, Span, matches_workload
from imagetrail.query import Query, QueryContext, Window, one_workload
from imagetrail.settings import Settings
from imagetrail.sources.promapi import PromClient
from imagetrail.sources.promql import (
    check_label_name,
    duration,
    matcher,
    quote,
    regex_literal,
)
from imagetrail.sources.template import pods_regex, substitute

log = logging.getLogger("imagetrail.impact")
WorkloadKey = tuple[str, str, str, str, str]  # cluster, namespace, kind, workload, container
_MAX_PODS = 300  # beyond this many pod names the selector matches the workload's name prefix


@dataclass(frozen=True, slots=True)
class SignalDef:
    """A built-in signal: PromQL with ``{SEL}`` (workload container selector), ``{POD_SEL}``
    (namespace + pods) and ``{B}`` (block duration); higher is always worse."""

    name: str
    unit: str
    expr: str
    absent_is_zero: bool = False  # no series at all means "none" (ALERTS), not "no data"
    decides: bool = True


BUILTIN_SIGNALS = (
    SignalDef(
        "restarts",
        "restarts/h",
        "sum(increase(kube_pod_container_status_restarts_total{SEL}[B])) * 3600 / {SECONDS}",
    ),
    SignalDef(
        "oom_kills",
        "OOM kills/h",
        "sum(increase(container_oom_events_total{SEL}[B])) * 3600 / {SECONDS}",
    ),
    SignalDef(
        "cpu_throttling",
        "throttled share",
        "sum(increase(container_cpu_cfs_throttled_periods_total{SEL}[B]))"
        " / sum(increase(container_cpu_cfs_periods_total{SEL}[B]))",
    ),
    SignalDef(
        "alerts",
        "alerts firing",
        'count(max_over_time(ALERTS{alertstate="firing",POD_SEL}[B]))',
        absent_is_zero=True,
    ),
    SignalDef(
        "cpu",
        "cores/container",
        "avg(rate(container_cpu_usage_seconds_total{SEL}[B]))",
        decides=False,
    ),
    SignalDef(
        "memory",
        "bytes/container",
        "avg(avg_over_time(container_memory_working_set_bytes{SEL}[B]))",
        decides=False,
    ),
)


_PLACEHOLDER = re.compile(r"POD_SEL|\{SEL\}|\[B\]|\{SECONDS\}")


def pods_selector(
    settings: Settings, cluster: str, namespace: str, workload: str, pods: Sequence[str]
) -> str:
    """Label matchers (no braces) for exactly these pods of one workload, every value escaped.

    Series without the cluster label count as ``default_cluster``; beyond ``_MAX_PODS`` pod
    names the workload's name is matched as a prefix instead."""
    label, default = settings["cluster_label"], settings["default_cluster"]
    if cluster == default:
        in_cluster = matcher(label, "=~", "|" + regex_literal(cluster))
    else:
        in_cluster = matcher(label, "=", cluster)
    if len(pods) > _MAX_PODS:
        pod = "pod=~" + quote(regex_literal(workload) + "-.*")
    else:
        pod = "pod=~" + quote(pods_regex(list(pods)))
    return ",".join((in_cluster, matcher("namespace", "=", namespace), pod))


def events_expr(settings: Settings, key: WorkloadKey, pods: Sequence[str], seconds: float) -> str:
    """PromQL counting, per ``state`` (``waiting``/``terminated``) and ``reason``, the pod
    containers of one workload container that were waiting with that reason at some point of
    the ``seconds`` before the query's time, or restarted then with that last terminated
    reason. Every label value is escaped by the selector builders."""
    cluster, namespace, _, workload, container = key
    sel = pods_selector(settings, cluster, namespace, workload, pods)
    sel = "{" + sel + "," + matcher("container", "=", container) + "}"
    window = "[" + duration(max(1.0, round(seconds))) + "]"
    ids = ", ".join((check_label_name(settings["cluster_label"]), "namespace", "pod", "container"))
    waiting = (
        f"count by (reason) (max_over_time(kube_pod_container_status_waiting_reason{sel}"
        f"{window}) == 1)"
    )
    # The last terminated reason stays on a container until it terminates again: only the
    # containers that restarted inside the window count, so an old OOM kill is not news.
    terminated = (
        "count by (reason) ("
        f"(max_over_time(kube_pod_container_status_last_terminated_reason{sel}{window}) == 1)"
        f" and on ({ids}) (increase(kube_pod_container_status_restarts_total{sel}{window}) > 0))"
    )
    return (
        f'label_replace({waiting}, "state", "waiting", "", "")\nor\n'
        f'label_replace({terminated}, "state", "terminated", "", "")'
    )


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


class ImpactRunner:
    """Everything needed to judge changes: settings, the ledger's spans, a Prometheus client."""

    def __init__(self, ctx: QueryContext) -> None:
        s = ctx.settings
        if not s["prometheus_url"]:
            raise ConfigError(
                "impact needs Prometheus: no Prometheus URL is set",
                hint="pass --prometheus URL or set IMAGETRAIL_PROMETHEUS_URL",
            )
        self.ctx = ctx
        self.block: float = s["impact_block"]
        self.before: float = s["impact_before"]
        self.after: float = s["impact_after"]
        self.thresholds = Thresholds(
            min_blocks=s["impact_min_blocks"],
            alpha=s["impact_alpha"],
            min_effect=s["impact_min_effect"],
            min_change=s["impact_min_change"],
        )
        self.templates: dict[str, dict[str, str]] = dict(s["impact_queries"] or {})
        for name in self.templates:
            if name in {d.name for d in BUILTIN_SIGNALS}:
                raise ConfigError(f"impact_queries: {name!r} is a built-in signal's name")
        self.settings = s
        self.concurrency: int = s["concurrency"]

    def expressions(self, key: WorkloadKey, pods: Sequence[str]) -> list[tuple[SignalDef, str]]:
        """Every signal's PromQL for one workload container and its pods."""
        cluster, namespace, _, workload, container = key
        pod_sel = pods_selector(self.settings, cluster, namespace, workload, pods)
        sel = pod_sel + "," + matcher("container", "=", container)
        fill = {
            "POD_SEL": pod_sel,
            "{SEL}": "{" + sel + "}",
            "[B]": "[" + duration(self.block) + "]",
            "{SECONDS}": repr(float(self.block)),
        }
        # One pass: a label value that spells a placeholder is never substituted again.
        out = [(d, _PLACEHOLDER.sub(lambda m: fill[m.group()], d.expr)) for d in BUILTIN_SIGNALS]
        values = {
            "cluster": cluster,
            "namespace": namespace,
            "workload": workload,
            "container": container,
            "pods": pods_regex(list(pods)),
        }
        for name, spec in sorted(self.templates.items()):
            if not _in_scope(spec, key):
                continue
            expr = substitute(spec["query"], values, block=self.block)
            out.append((SignalDef(name, "template", spec["query"]), expr))
        return out

    def events_expr(self, key: WorkloadKey, pods: Sequence[str], seconds: float) -> str:
        """One instant query (at a window's end, over its ``seconds``) counting the pod
        containers per state and reason (docs/impact.md, "Events")."""
        return events_expr(self.settings, key, pods, seconds)

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
        self, client: PromClient, expr: str, ends: tuple[float, ...], absent_is_zero: bool
    ) -> tuple[float, ...]:
        if not ends:
            return ()
        result = client.query_range(expr, start=ends[0], end=ends[-1], step=self.block)
        got: dict[int, float] = {}
        for series in result.series:
            for t, v in series.values:
                if math.isfinite(v):
                    got[round(t * 1000)] = got.get(round(t * 1000), 0.0) + v
        out = []
        for t in ends:
            value = got.get(round(t * 1000))
            if value is None and absent_is_zero:
                value = 0.0
            if value is not None:
                out.append(value)
        return tuple(out)

    def judge(
        self, plans: Sequence[_Plan], progress: Callable[[int, int], None] | None = None
    ) -> list[Impact]:
        """Query every signal of every plan (``concurrency`` at a time) and assess each;
        ``progress(done, total)`` is called as the queries finish."""
        exprs: dict[int, list[tuple[SignalDef, str]]] = {
            i: self.expressions(_key(p.change), p.pods)
            for i, p in enumerate(plans)
            if p.change.kind not in (ChangeKind.ADDED, ChangeKind.REMOVED)
            and p.span.after is not None
        }
        jobs = [
            (i, d, expr, side) for i, sigs in exprs.items() for d, expr in sigs for side in (0, 1)
        ]
        # Events: one query per existing window, also for rollouts that never finished.
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
        with PromClient(self.ctx.prom_config()) as client:
            done = 0
            lock = threading.Lock()

            def run(job: tuple[int, SignalDef, str, int]) -> None:
                nonlocal done
                i, d, expr, side = job
                ends = plans[i].covered[side]
                results[(i, d.name, side)] = self._values(client, expr, ends, d.absent_is_zero)
                tick()

            def tick() -> None:
                nonlocal done
                if progress is not None:
                    with lock:
                        done += 1
                        progress(done, total)

            def run_events(job: tuple[int, int, tuple[float, float]]) -> None:
                i, side, (lo, hi) = job
                p = plans[i]
                expr = self.events_expr(_key(p.change), p.pods, hi - lo)
                counts: dict[tuple[str, str], int] = {}
                for series in client.query(expr, time=hi).series:
                    value = series.values[-1][1] if series.values else math.nan
                    if math.isfinite(value):
                        state = series.labels.get("state", "")
                        counts[(state, series.labels.get("reason", ""))] = int(value)
                events[(i, side)] = counts
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
                for d, _ in exprs.get(i, [])
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


def method_of(settings: Settings) -> str:
    """A hash of everything a verdict depends on besides the data: recorded verdicts are
    reused only by the same method (other thresholds or queries compute afresh)."""
    names = [
        "impact_before",
        "impact_after",
        "impact_block",
        "impact_min_blocks",
        "impact_alpha",
        "impact_min_effect",
        "impact_min_change",
        "impact_queries",
        "cluster_label",
        "default_cluster",
    ]
    ident: list[object] = [METHOD_VERSION, [d.expr for d in BUILTIN_SIGNALS]]
    ident += [settings[n] for n in names]
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
    outlive Prometheus' retention of the metrics; the others are computed from Prometheus
    (:class:`ConfigError` when none is configured). ``progress(done, total)`` counts the
    Prometheus queries."""
    method = method_of(ctx.settings)
    unique = list(dict.fromkeys(changes))
    if not unique:
        return []
    with ctx.open_ledger(create=False) as ledger:
        known = ledger.stored_impacts(unique, method)
    todo = [c for c in unique if c not in known]
    if todo:
        runner = ImpactRunner(ctx)
        lo = min(c.started for c in todo) - runner.before - runner.block
        hi = max((c.settled or c.started) for c in todo) + runner.after + runner.block
        spans, all_changes, data_end = _context_spans(ctx, todo, lo, hi)
        fresh = runner.judge(runner.plan(todo, spans, all_changes, data_end), progress)
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
    config = ctx.prom_config()  # no Prometheus: a clear error before reading the ledger
    spans, start, end = ctx.spans(query, default_range=30 * 86400.0)
    one_workload(spans, query.workload)
    groups: dict[tuple[str, str, str | None], list[Span]] = defaultdict(list)
    for s in spans:
        groups[(s.container, s.image, s.digest)].append(s)
    step = max(60.0, ctx.settings["scrape_interval"], math.ceil((end - start) / 8000 / 60) * 60)
    rate_range = duration(max(4 * ctx.settings["scrape_interval"], step))
    rows = []
    with PromClient(config) as client:
        for (container, image, digest), group in sorted(
            groups.items(), key=lambda kv: min(s.first_seen for s in kv[1])
        ):
            lo = max(start, min(s.first_seen for s in group))
            hi = min(end, max(s.last_seen for s in group))
            pods = sorted({s.pod for s in group})
            key = (group[0].cluster, group[0].namespace, group[0].workload_kind,
                   group[0].workload, container)  # fmt: skip
            sel = pods_selector(ctx.settings, key[0], key[1], key[3], pods)
            sel += "," + matcher("container", "=", container)
            inside = _inside(group)
            cpu = _samples(
                client,
                f"rate(container_cpu_usage_seconds_total{{{sel}}}[{rate_range}])",
                lo,
                hi,
                step,
                inside,
            )
            mem = _samples(
                client, f"container_memory_working_set_bytes{{{sel}}}", lo, hi, step, inside
            )
            c50, c95 = _quantiles(cpu)
            m50, m95 = _quantiles(mem)
            rows.append(
                Capacity(*key, image, digest, lo, hi, max(len(cpu), len(mem)), c50, c95, m50, m95)
            )
    return rows


def _inside(group: Sequence[Span]) -> Callable[[str, float], bool]:
    by_pod: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in group:
        by_pod[s.pod].append((s.first_seen, s.last_seen))

    def check(pod: str, t: float) -> bool:
        return any(a <= t <= b for a, b in by_pod.get(pod, ()))

    return check


def _samples(
    client: PromClient,
    expr: str,
    lo: float,
    hi: float,
    step: float,
    inside: Callable[[str, float], bool],
) -> list[float]:
    if hi <= lo:
        return []
    result = client.query_range(expr, start=lo, end=hi, step=step)
    return [
        v
        for series in result.series
        for t, v in series.values
        if math.isfinite(v) and inside(series.labels.get("pod", ""), t)
    ]


# -- DORA -------------------------------------------------------------------------------------
def dora_for(
    ctx: QueryContext,
    query: Query,
    *,
    by: str = "workload",
    lead_times: Mapping[Change, float] | None = None,
) -> list[DoraFigures]:
    """DORA figures for deployments in the query's window (default the last 7 days).

    Regressions count as failures when Prometheus is configured (impact is computed for the
    window's changes); without it, only rollbacks do.
    """
    start, end = ctx.window(query)
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
    if ctx.settings["prometheus_url"]:
        inside = [c for c in found if start <= c.started < end]
        regressions = [i.change for i in impacts_for(ctx, inside) if i.verdict == "regression"]
    return dora(found, start=start, end=end, by=by, regressions=regressions, lead_times=lead_times)


def lead_times_for(ctx: QueryContext, query: Query) -> dict[Change, float]:
    """Lead time of each detected change a CI/CD event with a commit time matched (when
    several events matched one change, the earliest commit: the longest wait)."""
    from imagetrail.deployments import deployments_with_matches

    out: dict[Change, float] = {}
    for m in deployments_with_matches(ctx, query):
        if m.change is not None and m.lead_time is not None:
            out[m.change] = max(out.get(m.change, 0.0), m.lead_time)
    return out
