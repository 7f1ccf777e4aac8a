"""Building the report from the ledger: the same answers as the CLI and the web app.

:func:`build_report` takes the impact verdicts as an input (``None``: not available) so that
the report works without Prometheus; :func:`gather_impacts` is the one guarded call that
computes them, and :func:`make_report` puts the two together for the command and scheduler.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from imagetrail import analysis
from imagetrail.analysis.current import current_state
from imagetrail.errors import ConfigError, InputError, SourceError
from imagetrail.imageref import classify
from imagetrail.model import Change, ChangeKind, Impact, Span, Verdict, VersionCount
from imagetrail.report.heatmap import render_png
from imagetrail.report.model import (
    NOTABLE_REASONS,
    FloatingImage,
    NamespaceSection,
    Report,
    ReportChange,
    StaleImage,
    Summary,
)
from imagetrail.service.query import Query, QueryContext, Window

log = logging.getLogger("imagetrail.report")

NOTABLE_LIMIT = 20
NAMESPACE_CHANGES_LIMIT = 15
NAMESPACE_VERSIONS_LIMIT = 15
STALE_LIMIT = 50
FAILED_LIMIT = 20
FAILED_STATES = ("failed", "stuck")
HEATMAP_POINTS = 120
NO_PROMETHEUS = "impact not available: no Prometheus configured (prometheus_url is unset)"


def report_query(ctx: QueryContext, query: Query, *, now: float) -> Query:
    """The query with its range resolved: ``report_since`` before ``--to`` (or now) when no
    start was given."""
    w = query.window
    if w.start is not None:
        return query
    end = w.end if w.end is not None else now
    return replace(query, window=replace(w, start=end - float(ctx.settings.report_since)))


def gather_impacts(ctx: QueryContext, changes: Sequence[Change]) -> tuple[list[Impact] | None, str]:
    """The impact verdicts of ``changes`` and a note saying what happened.

    The signals come from :func:`imagetrail.service.impact.signal_source` (Prometheus, or a demo
    ledger's simulator). Never raises for a missing or failing Prometheus: the report is
    still worth sending, and its note says why the verdicts are missing.
    """
    from imagetrail.service.impact import impacts_for, signal_source

    source = signal_source(ctx)
    if source is None:
        return None, NO_PROMETHEUS
    try:
        impacts = list(impacts_for(ctx, changes))
    except (ConfigError, InputError) as exc:
        return None, f"impact not available: {exc.message}"
    except SourceError as exc:
        log.warning("impact for the report failed: %s", exc.message)
        return None, f"impact not available: {source.name} failed ({exc.message})"
    return impacts, f"impact computed from {source.name} for {len(impacts)} changes"


def make_report(
    ctx: QueryContext, query: Query, *, now: float | None = None, impact: bool = True
) -> Report:
    """The report for ``query``, with impact verdicts when Prometheus can give them."""
    now = time.time() if now is None else now
    resolved = report_query(ctx, query, now=now)
    changes = ctx.changes(resolved)
    if impact:
        impacts, note = gather_impacts(ctx, changes)
    else:
        impacts, note = None, "impact not requested"
    return build_report(ctx, resolved, impacts=impacts, now=now, impact_note=note, changes=changes)


def build_report(
    ctx: QueryContext,
    query: Query,
    *,
    impacts: Sequence[Impact] | None,
    now: float,
    impact_note: str | None = None,
    changes: Sequence[Change] | None = None,
) -> Report:
    """Everything the report says about ``query``'s range (default: ``report_since``).

    ``impacts``: verdicts of the range's changes, or None when impact is not available (the
    report then says so, with ``impact_note`` as the reason). ``changes``: the range's
    changes when the caller has read them already.
    """
    query = report_query(ctx, query, now=now)
    start = query.window.start
    assert start is not None  # report_query resolved it
    if changes is None:
        changes = ctx.changes(query)
    verdicts: dict[Change, Verdict] = {i.change: i.verdict for i in impacts or ()}
    listed = [_listed(c, verdicts.get(c)) for c in changes]

    # Everything recorded up to the end: how long a version has run needs its whole history.
    history = replace(query, window=Window(end=query.window.end))
    spans, _, end = ctx.spans(history, default_range=None)
    stale = _stale(spans, at=end, stale_after=float(ctx.settings.report_stale_after))
    running = analysis.distribution(spans, at=end)
    floating = _floating(running)
    heat = ctx.heatmap_answer(query, points=HEATMAP_POINTS, sandbox=False)
    changed = {i for c in changes for i in (c.from_image, c.to_image) if i is not None}
    png, hidden = render_png(heat.heatmap, prefer=changed)

    # Every change, the telling ones first; the cap keeps the mail short.
    notable = sorted(
        listed,
        key=lambda r: (NOTABLE_REASONS.index(r.reason), -r.change.started),
    )
    failed = sorted((c for c in changes if c.state in FAILED_STATES), key=lambda c: -c.started)
    regressions = None if impacts is None else sum(1 for r in listed if r.verdict == "regression")
    if impact_note is None:
        impact_note = (
            NO_PROMETHEUS if impacts is None else f"impact computed for {len(verdicts)} changes"
        )
    link = ctx.settings.public_url
    return Report(
        generated=now,
        start=start,
        end=end,
        scope=_scope(query),
        stale_after=float(ctx.settings.report_stale_after),
        summary=Summary(
            changes=len(changes),
            workloads_changed=len(
                {(c.cluster, c.namespace, c.workload_kind, c.workload) for c in changes}
            ),
            rollbacks=sum(1 for c in changes if c.kind == ChangeKind.ROLLBACK),
            regressions=regressions,
            stale_images=len(stale),
            floating_images=len(floating),
            failed_rollouts=len(failed),
            stuck_rollouts=sum(1 for c in failed if c.state == "stuck"),
        ),
        notable=tuple(notable[:NOTABLE_LIMIT]),
        notable_total=len(notable),
        stale=tuple(stale[:STALE_LIMIT]),
        floating=tuple(floating),
        namespaces=_sections(listed, spans, at=end),
        heatmap_png=png,
        heatmap_rows_hidden=hidden,
        impact_note=impact_note,
        link=link.rstrip("/") + "/" if link else None,
        failed=tuple(failed[:FAILED_LIMIT]),
    )


def _listed(change: Change, verdict: Verdict | None) -> ReportChange:
    if change.state in FAILED_STATES:
        reason = "failed"
    elif change.kind == ChangeKind.ROLLBACK:
        reason = "rollback"
    elif verdict == "regression":
        reason = "regression"
    elif change.kind == ChangeKind.DOWNGRADE:
        reason = "downgrade"
    elif change.kind == ChangeKind.TAG_REPUSH:
        reason = "tag-repush"
    else:
        reason = "other"
    return ReportChange(change=change, verdict=verdict, reason=reason)


def _stale(spans: Sequence[Span], *, at: float, stale_after: float) -> list[StaleImage]:
    """Workload containers running one version for longer than ``stale_after`` at ``at``,
    oldest first."""
    found = []
    for state in current_state(spans, (), at=at, window=1.0):
        cluster, namespace, kind, workload, container = state.key
        for version in state.versions:
            age = at - version.first_seen
            if age > stale_after:
                found.append(
                    StaleImage(
                        cluster=cluster,
                        namespace=namespace,
                        workload_kind=kind,
                        workload=workload,
                        container=container,
                        image=version.image,
                        running_since=version.first_seen,
                        age=age,
                    )
                )
    return sorted(found, key=lambda s: (s.running_since, s.cluster, s.namespace, s.workload))


def floating_problem(image: str) -> str | None:
    """``"latest tag"``, ``"no tag"`` (digest only, bare id, not a reference) or None."""
    ref = classify(image).ref
    if ref is None or ref.tag is None:
        return "no tag"
    if ref.tag == "latest":
        return "latest tag"
    return None


def _floating(running: Sequence[VersionCount]) -> list[FloatingImage]:
    out = []
    for row in running:
        problem = floating_problem(row.image)
        if problem is not None:
            out.append(
                FloatingImage(
                    image=row.image,
                    problem=problem,
                    containers=row.containers,
                    workloads=row.workloads,
                )
            )
    # One image with several digests is one problem: merge the rows.
    merged: dict[str, FloatingImage] = {}
    for item in out:
        seen = merged.get(item.image)
        if seen is None:
            merged[item.image] = item
        else:
            merged[item.image] = replace(
                seen,
                containers=seen.containers + item.containers,
                workloads=tuple(sorted(set(seen.workloads) | set(item.workloads))),
            )
    return sorted(merged.values(), key=lambda f: (-f.containers, f.image))


def _sections(
    listed: Sequence[ReportChange], spans: Sequence[Span], *, at: float
) -> tuple[NamespaceSection, ...]:
    changes: dict[tuple[str, str], list[ReportChange]] = defaultdict(list)
    for item in listed:
        changes[(item.change.cluster, item.change.namespace)].append(item)
    running: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in spans:
        if span.covers(at):
            running[(span.cluster, span.namespace)].append(span)
    sections = []
    for key in sorted(set(changes) | set(running)):
        mine = sorted(changes.get(key, ()), key=lambda r: -r.change.started)
        versions = analysis.distribution(running.get(key, ()), at=at)
        sections.append(
            NamespaceSection(
                cluster=key[0],
                namespace=key[1],
                changes=tuple(mine[:NAMESPACE_CHANGES_LIMIT]),
                changes_total=len(mine),
                versions=tuple(versions[:NAMESPACE_VERSIONS_LIMIT]),
                versions_total=len(versions),
            )
        )
    return tuple(sections)


def _scope(query: Query) -> str:
    parts = []
    if query.cluster:
        parts.append(f"cluster {query.cluster}")
    if query.clusters:
        parts.append("clusters " + ", ".join(query.clusters))
    if query.namespace:
        parts.append(f"namespaces matching {query.namespace}")
    if query.workload:
        parts.append(f"workload {query.workload}")
    return "; ".join(parts) or "all clusters"
