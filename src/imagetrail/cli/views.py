"""The answers read from spans: ``versions``, ``heatmap``, ``changes``, ``history``, ``audit``
and ``workloads``. Each reads the ledger (or Prometheus live, ``--source prometheus``)
through :class:`~imagetrail.service.query.QueryContext` and prints a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

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
from imagetrail.timeutil import format_duration, format_time

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
    if shown.tabled:
        render_rows(
            [change_row(r) for r in rows],
            shown.format,
            columns=columns(
                "started kind cluster namespace workload container from_image to_image state"
            ),
            wide=["workload_kind", "from_digest", "to_digest", "finished", "reasons"],
            **CHANGE_TABLE,
            title="changes",
        )
    else:
        render_rows([record(r) for r in rows], shown.format, columns=CHANGE_COLUMNS)
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


CHANGE_TABLE: dict[str, Any] = {
    "key": "to_image",
    "drop": ["from_image", "container", "namespace"],
    "whole": ["kind", "state"],
    "keep": ["state"],
}
"""How a table of changes is laid out when narrow (``changes``, the demo): the image is the
key, the kind and state are never cut, the state stays while anything can go before it."""

STATE_TEXT = {"finished": "done", "in-progress": "running"}


def change_row(change: Change) -> dict[str, Any]:
    """A change as a table row: its JSON object with a short ``state`` (``done``,
    ``running``, ``failed``, ``stuck``, ``aborted``, ``superseded``), and, for ``-o wide``,
    ``finished`` (when it finished or was given up) and ``reasons`` (why its new pods did not
    run, or how long they waited)."""
    row = record(change)
    row["state"] = STATE_TEXT.get(change.state, change.state)
    row["finished"] = None if change.settled is None else format_time(change.settled)
    row["reasons"] = rollout_note(change)
    return row


def rollout_note(change: Change) -> str | None:
    """Why a rollout stands as it does: why its new pods did not run
    (``ErrImagePull, ImagePullBackOff (0/1 pods ran)``) or how long they waited before they did
    (``waited 10m``); None when there is nothing to say."""
    text = ", ".join(change.reasons)
    if change.pods is not None and change.reasons:
        text += f" ({change.pods_ran or 0}/{change.pods} pods ran)"
    if change.waited:
        text = ", ".join(filter(None, [text, f"waited {format_duration(round(change.waited))}"]))
    return text or None


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
        drop=["last_change", "stale", "container", "namespace"],
        title="workloads",
    )


COMMANDS = (versions, heatmap, changes, history, audit, workloads)
