"""``imagetrail impact``, ``capacity`` and ``dora``: what a change did, what a version costs
and how a team deploys. The ledger says what ran where; Prometheus how it behaved."""

from __future__ import annotations

from typing import Annotated

import typer

from imagetrail.cli.options import (
    ChangeFilters,
    Measured,
    RangeFilters,
    RangePlace,
    progress_bar,
    with_blocks,
)
from imagetrail.cli.render import render_rows
from imagetrail.errors import InputError
from imagetrail.service.shapes import CHANGE_COLUMNS, dora_json, impact_json, record
from imagetrail.text import measure_text, per_day_text, percent_text, rough_duration
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


@with_blocks
def impact(ctx: typer.Context, filters: ChangeFilters, measured: Measured) -> None:
    """Did a change cause trouble? Before/after each change: regression, improvement, ..."""
    from imagetrail.service.impact import impacts_for

    context = measured.context(ctx)
    query = filters.query()
    with progress_bar() as progress:
        task = progress.add_task("impact: queries", total=None)
        found = impacts_for(
            context,
            context.changes(query, kinds=filters.kind),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    rows = [impact_json(i) for i in found]
    chosen = measured.format
    if chosen in ("table", "wide"):
        for row, i in zip(rows, found, strict=True):
            row["evidence"] = [
                f"{s.name}{'' if s.decides else ' (evidence only)'}: "
                f"{measure_text(s.before, s.unit)} → {measure_text(s.after, s.unit)}"
                f"{_unit(s.unit)}"
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
            whole=["kind", "verdict"],
            keep=["verdict"],
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


def _unit(unit: str) -> str:
    """What follows a measured value: `` cores/container``; bytes are in the value itself
    (``180 MiB/container``)."""
    return unit.removeprefix("bytes") if unit.split("/")[0] == "bytes" else f" {unit}"


@with_blocks
def capacity(
    ctx: typer.Context,
    *,
    workload: Annotated[str, typer.Argument(help="Workload: name, kind/name, namespace/name.")],
    filters: RangePlace,
    measured: Measured,
) -> None:
    """CPU and memory (p50, p95 per container) of each version a workload ran (default 30d)."""
    from imagetrail.service.impact import capacity_for

    context = measured.context(ctx)
    query = filters.query(workload=workload)
    rows = [record(r) for r in capacity_for(context, query)]
    chosen = measured.format
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


@with_blocks
def dora(
    ctx: typer.Context,
    *,
    filters: RangeFilters,
    by: Annotated[str, typer.Option("--by", help="workload or namespace.")] = "workload",
    measured: Measured,
) -> None:
    """DORA figures: deployment frequency, change failure rate, time to restore, lead time."""
    from imagetrail.service.impact import dora_for, lead_times_for

    if by not in ("workload", "namespace"):
        raise InputError(f"--by must be workload or namespace, not {by!r}")
    context = measured.context(ctx)
    query = filters.query()
    figures = dora_for(context, query, by=by, lead_times=lead_times_for(context, query))
    rows = [dora_json(f) for f in figures]
    chosen = measured.format
    if chosen in ("table", "wide"):
        for row, f in zip(rows, figures, strict=True):
            row["deploys"] = row["deployments"]
            row["frequency"] = per_day_text(f.deployments_per_day)
            row["failure_rate"] = percent_text(f.change_failure_rate)
            row["restore"] = _minutes(row["time_to_restore_median_seconds"])
            row["lead_time"] = _minutes(row["lead_time_median_seconds"])
            row["days"] = rough_duration(f.days * 86400)
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
