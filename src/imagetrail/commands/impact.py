"""`imagetrail impact`, `capacity` and `dora`: what a change did, what a version costs, and
how a team deploys. Registered on :data:`imagetrail.cli.app`."""

from __future__ import annotations

from typing import Annotated

import typer

from imagetrail.cli import (
    ClusterOpt,
    FormatOpt,
    FromOpt,
    LedgerOpt,
    NamespaceOpt,
    PromOpt,
    SinceOpt,
    ToOpt,
    WorkloadOpt,
    _context,
    _fmt,
    _progress,
    _query,
    app,
)
from imagetrail.output import render_rows
from imagetrail.service.shapes import CHANGE_COLUMNS, dora_json, impact_json, record
from imagetrail.text import per_day_text, percent_text
from imagetrail.timeutil import format_duration

IMPACT_COLUMNS = (*CHANGE_COLUMNS, "verdict", "reason")
DORA_COLUMNS = (
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "days",
    "deployments",
    "deployments_per_day",
    "failures",
    "change_failure_rate",
    "open_failures",
    "time_to_restore_median_seconds",
    "lead_time_median_seconds",
)


@app.command()
def impact(
    ctx: typer.Context,
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these change kinds (repeatable).")
    ] = None,
    fmt: FormatOpt = "table",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Did a change cause trouble? Before/after each change: regression, improvement, ..."""
    from imagetrail.service.impact import impacts_for

    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster, namespace=namespace, workload=workload, since=since, from_=from_, to=to
    )
    with _progress() as progress:
        task = progress.add_task("impact: queries", total=None)
        found = impacts_for(
            qc,
            qc.changes(q, kinds=kind),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    rows = [impact_json(i) for i in found]
    chosen = _fmt(fmt)
    if chosen in ("table", "wide"):
        for row, i in zip(rows, found, strict=True):
            row["evidence"] = [
                f"{s.name}{'' if s.decides else ' (evidence only)'}: "
                f"{_num(s.before)} → {_num(s.after)} {s.unit}"
                + (f" (p={s.p_value:.3g}, δ={s.effect:+.2f})" if s.p_value is not None else "")
                for s in i.signals
                if s.verdict in ("regression", "improvement")
            ] or None
        columns = ["started", "cluster", "namespace", "workload", "container", "to_image"]
        render_rows(
            rows,
            chosen,
            columns=[*columns, "verdict", "evidence"],
            wide=["kind", "from_image", "to_digest", "reason"],
            key="to_image",
            drop=["container", "namespace", "cluster", "evidence", "started"],
            title="impact",
        )
        return
    if chosen == "csv":
        render_rows(rows, "csv", columns=IMPACT_COLUMNS)
        return
    render_rows(rows, chosen)


def _minutes(seconds: float | None) -> str | None:
    """A duration to the minute (``3h2m``) for tables; JSON keeps the seconds."""
    return None if seconds is None else format_duration(round(seconds / 60) * 60)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


@app.command()
def capacity(
    ctx: typer.Context,
    workload: Annotated[str, typer.Argument(help="Workload: name, kind/name, namespace/name.")],
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    fmt: FormatOpt = "table",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """CPU and memory (p50, p95 per container) of each version a workload ran (default 30d)."""
    from imagetrail.service.impact import capacity_for

    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster, namespace=namespace, workload=workload, since=since, from_=from_, to=to
    )
    rows = [record(r) for r in capacity_for(qc, q)]
    chosen = _fmt(fmt)
    if chosen in ("table", "wide"):
        for row in rows:
            for name in ("cpu_p50", "cpu_p95"):
                row[name] = None if row[name] is None else f"{row[name] * 1000:.0f}m"
            for name in ("memory_p50", "memory_p95"):
                row[name] = None if row[name] is None else f"{row[name] / 2**20:.0f}Mi"
        columns = ["container", "image", "first_seen", "last_seen", "cpu_p50", "cpu_p95"]
        render_rows(
            rows,
            chosen,
            columns=[*columns, "memory_p50", "memory_p95"],
            wide=["digest"],
            drop=["first_seen", "container"],
            title="capacity",
        )
        return
    render_rows(rows, chosen)


@app.command()
def dora(
    ctx: typer.Context,
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    by: Annotated[str, typer.Option("--by", help="workload or namespace.")] = "workload",
    fmt: FormatOpt = "table",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """DORA figures: deployment frequency, change failure rate, time to restore, lead time."""
    from imagetrail.errors import InputError
    from imagetrail.service.impact import dora_for, lead_times_for

    if by not in ("workload", "namespace"):
        raise InputError(f"--by must be workload or namespace, not {by!r}")
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster, namespace=namespace, workload=workload, since=since, from_=from_, to=to
    )
    figures = dora_for(qc, q, by=by, lead_times=lead_times_for(qc, q))
    rows = [dora_json(f) for f in figures]
    chosen = _fmt(fmt)
    if chosen in ("table", "wide"):
        for row, f in zip(rows, figures, strict=True):
            row["deploys"] = row["deployments"]
            row["frequency"] = per_day_text(f.deployments_per_day)
            row["failure_rate"] = percent_text(f.change_failure_rate)
            row["restore"] = _minutes(row["time_to_restore_median_seconds"])
            row["lead_time"] = _minutes(row["lead_time_median_seconds"])
            row["days"] = format_duration(round(f.days * 24) * 3600)
            row["open"] = f.open_failures
        columns = ["cluster", "namespace"] + (["workload"] if by == "workload" else [])
        columns += ["deploys", "frequency", "failures", "failure_rate"]
        render_rows(
            rows,
            chosen,
            columns=[*columns, "restore", "lead_time"],
            wide=["workload_kind", "open", "days"],
            key=columns[-5],
            drop=["namespace", "cluster"],
            title=f"dora over {rows[0]['days']}" if rows else "dora",
        )
        return
    if chosen == "csv":
        render_rows(rows, "csv", columns=DORA_COLUMNS)
        return
    render_rows(rows, chosen)
