"""The answers read from spans: ``versions``, ``heatmap``, ``changes``, ``history``, ``audit``
and ``workloads``. Each reads the ledger (or Prometheus live, ``--source prometheus``)
through :class:`~imagetrail.service.query.QueryContext` and prints a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from imagetrail.cli.options import (
    AtFilters,
    ChangeFilters,
    RangeFilters,
    RangePlace,
    Shown,
    StepFilters,
    columns,
    console,
    with_blocks,
)
from imagetrail.cli.render import render_heatmap, render_rows
from imagetrail.model import Change
from imagetrail.service.query import Query, QueryContext
from imagetrail.service.shapes import CHANGE_COLUMNS, record
from imagetrail.text import table_time
from imagetrail.timeutil import format_duration

CADVISOR_NOTE = "failed rollouts need kube-state-metrics (this ledger reads cAdvisor)"


@with_blocks
def versions(ctx: typer.Context, filters: AtFilters, shown: Shown) -> None:
    """Image versions running at an instant, most containers first."""
    context = shown.context(ctx)
    rows, instant = context.versions(filters.query(source=shown.source))
    render_rows(
        [record(r) for r in rows],
        shown.format,
        columns=columns("image digest containers stale_containers")
        if shown.tabled
        else columns("image digest containers workloads stale stale_containers"),
        wide=["stale", "workloads"],
        drop=["stale_containers"],
        title=f"versions at {context.fmt_time(instant)}",
    )


@with_blocks
def heatmap(
    ctx: typer.Context,
    *,
    filters: StepFilters,
    exact_panel: Annotated[
        bool,
        typer.Option(
            "--exact-panel",
            help="Run the original Grafana panel's query live (counts pause containers).",
        ),
    ] = False,
    shown: Shown,
) -> None:
    """Image x time -> containers: the original panel's picture, without its blind spots."""
    context = shown.context(ctx)
    query = filters.query(source="prometheus" if exact_panel else shown.source)
    answer = context.panel_heatmap(query) if exact_panel else context.heatmap(query)
    render_heatmap(answer, shown.format)


@with_blocks
def changes(ctx: typer.Context, filters: ChangeFilters, shown: Shown) -> None:
    """Version changes per workload container: upgrade, downgrade, rollback, tag-repush, ..."""
    context = shown.context(ctx)
    query = filters.query(source=shown.source)
    rows = context.changes(query, kinds=filters.kind)
    render_rows(
        [record(r) | {"finished": settled(r)} if shown.tabled else record(r) for r in rows],
        shown.format,
        columns=columns(
            "started kind cluster namespace workload container from_image to_image finished"
        )
        if shown.tabled
        else CHANGE_COLUMNS,
        wide=["workload_kind", "from_digest", "to_digest"],
        key="to_image",
        drop=["from_image", "container", "namespace", "finished"],
        title="changes",
    )
    if shown.tabled and shown.source == "ledger" and reads_cadvisor(context, query):
        console.print(Text(CADVISOR_NOTE, style="dim"))


def reads_cadvisor(context: QueryContext, query: Query) -> bool:
    """Does the ledger hold cAdvisor-signal data for this query? That signal cannot see
    containers that never ran, so the table cannot show failed rollouts: say so, never guess."""
    window = query.window
    with context.open_ledger(create=False) as ledger:
        found = ledger.spans(
            cluster=query.cluster,
            namespace_regex=query.namespace,
            workload=query.workload,
            start=window.start,
            end=window.end,
            signal="cadvisor",
        )
    return any(query.keeps(s.cluster) for s in found)


def settled(change: Change) -> str:
    """The table's "finished" cell: the time, or how the rollout stands, with why its new pods
    did not run (``failed <time>: ImagePullBackOff (0/1 pods ran)``, ``stuck: …``) or how long
    they waited before they did (``… (waited 10m)``)."""
    reasons = ", ".join(change.reasons)
    if change.finished is not None:
        waited = f" (waited {format_duration(round(change.waited))})" if change.waited else ""
        return table_time(change.finished) + waited
    if change.state == "stuck":
        return f"stuck: {reasons}"
    if change.ended is not None:
        text = f"{change.state} {table_time(change.ended)}"
        if change.reasons:
            text += f": {reasons}"
        if change.pods is not None:
            text += f" ({change.pods_ran or 0}/{change.pods} pods ran)"
        return text
    return change.state.replace("-", " ")


@with_blocks
def history(
    ctx: typer.Context,
    *,
    workload_name: Annotated[
        str,
        typer.Argument(
            metavar="WORKLOAD",
            help="name, namespace/name, cluster/namespace/name or the full "
            "cluster/namespace/Kind/name (kind/name and namespace/Kind/name too)",
        ),
    ],
    filters: RangePlace,
    shown: Shown,
) -> None:
    """Every version one workload ran, per container, with when and how many."""
    context = shown.context(ctx)
    entries, target = context.history(filters.query(source=shown.source, workload=workload_name))
    everything = columns("container image digest first_seen last_seen containers_max")
    render_rows(
        [record(e) for e in entries],
        shown.format,
        columns=everything[:-1] if shown.tabled else everything,
        wide=["containers_max"],
        drop=["digest", "container"],
        title=f"history of {target}",
    )


@with_blocks
def audit(ctx: typer.Context, filters: RangeFilters, shown: Shown) -> None:
    """Everything that ran in a time window: which image, where, from when to when."""
    context = shown.context(ctx)
    render_rows(
        [record(e) for e in context.audit(filters.query(source=shown.source))],
        shown.format,
        columns=columns("cluster namespace workload container image first_seen last_seen")
        if shown.tabled
        else columns(
            "cluster namespace workload_kind workload container image digest first_seen "
            "last_seen containers_max"
        ),
        wide=["workload_kind", "digest", "containers_max"],
        drop=["first_seen", "container", "namespace", "last_seen"],
        title="audit",
    )


@with_blocks
def workloads(ctx: typer.Context, filters: AtFilters, shown: Shown) -> None:
    """Workload containers with the images they run."""
    context = shown.context(ctx)
    render_rows(
        [record(w) for w in context.workloads(filters.query(source=shown.source))],
        shown.format,
        columns=columns("cluster namespace workload container images containers last_change stale")
        if shown.tabled
        else columns(
            "cluster namespace workload_kind workload container images containers "
            "last_change inferred stale"
        ),
        wide=["workload_kind", "first_seen", "last_seen", "inferred"],
        key="images",
        drop=["last_change", "stale", "container", "namespace", "containers"],
        title="workloads",
    )


COMMANDS = (versions, heatmap, changes, history, audit, workloads)
