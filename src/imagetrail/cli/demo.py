"""``imagetrail demo``: a simulated fleet recorded in a ledger, its answers printed, and the
web app served on it. The ledger is built in :mod:`imagetrail.service.demo`."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from imagetrail import analysis
from imagetrail import settings as settings_mod
from imagetrail.cli.options import HostOpt, PortOpt, config_path, console
from imagetrail.cli.render import render_rows
from imagetrail.cli.server import serve_ledger
from imagetrail.cli.views import CHANGE_TABLE, change_row
from imagetrail.model import Change, ChangeKind
from imagetrail.service.shapes import record
from imagetrail.text import measure_text, transition
from imagetrail.timeutil import format_duration, format_time

if TYPE_CHECKING:
    from imagetrail.ledger import Ledger


def demo(
    ctx: typer.Context,
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Where to write the demo ledger (default: a cache file)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the web app on the demo fleet.")
    ] = True,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Simulate a realistic fleet, record it in a ledger, show the answers and serve the UI."""
    from imagetrail.service.demo import default_demo_ledger

    path = ledger or default_demo_ledger()
    # Settings first: a bad --port fails before a minute of simulation, not after.
    resolved = settings_mod.load(
        {"ledger": str(path), "host": host, "port": port}, config_path=config_path(ctx)
    )
    run_demo(console, ledger_path=path, seed=seed)
    if serve:
        serve_ledger(resolved, sync=False, what="The demo fleet is served")


def run_demo(console: Console, *, ledger_path: Path | None = None, seed: int = 7) -> None:
    """Build the demo ledger and print what imagetrail answers on it."""
    from imagetrail.service.demo import build_demo_ledger, default_demo_ledger

    path = ledger_path or default_demo_ledger()
    began = time.monotonic()
    ledger, end = build_demo_ledger(path, seed=seed)
    try:
        spans = ledger.spans()
        stats = ledger.stats()
        console.print(
            Text(
                f"Simulated {len({s.cluster for s in spans})} clusters, "
                f"{len({s.workload_ref for s in spans})} workloads, {stats.get('spans', 0)} "
                f"container spans over 14 days in {time.monotonic() - began:.1f}s → {path}",
                style="bold",
            ),
            soft_wrap=True,
        )
        at = end - 60
        # 1. Which versions run now?
        rows = analysis.distribution(spans, at=at)
        render_rows(
            [
                {
                    "image": r.image,
                    "containers": r.containers,
                    "clusters": len({w.split("/")[0] for w in r.workloads}),
                    "workloads": sorted({"/".join(w.split("/")[1::2]) for w in r.workloads}),
                }
                for r in rows[:12]
            ],
            "table",
            title=f"1. Versions running now ({format_time(at)}): top 12 of {len(rows)}",
            console=console,
        )
        # 2. One workload's history: the one that rolled back, the most telling story.
        changes = ledger.changes(start=end - 14 * 86400)
        story = next((c for c in changes if c.kind == ChangeKind.ROLLBACK), None) or (
            changes[0] if changes else None
        )
        if story is not None:
            story_spans = [
                s
                for s in spans
                if (s.cluster, s.namespace, s.workload_kind, s.workload)
                == (story.cluster, story.namespace, story.workload_kind, story.workload)
            ]
            render_rows(
                [record(h) for h in analysis.history(story_spans)],
                "table",
                columns=["container", "image", "first_seen", "last_seen", "containers_max"],
                drop=["containers_max"],
                title=f"2. History of {story.cluster}/{story.namespace}/"
                f"{story.workload_kind}/{story.workload}",
                console=console,
            )
            own = [
                c
                for c in changes
                if (c.cluster, c.namespace, c.workload_kind, c.workload)
                == (story.cluster, story.namespace, story.workload_kind, story.workload)
            ]
            render_rows(
                [change_row(c) | {"took": _took(c)} for c in own],
                "table",
                columns=["started", "kind", "container", "to_image", "state", "took"],
                key="to_image",
                whole=["kind", "state", "took"],
                keep=["state", "took"],
                title="   … and its changes: how each rollout ended",
                console=console,
            )
        # 3. This week's changes, newest first: the table `imagetrail changes` prints.
        week = sorted(
            (c for c in changes if c.started >= end - 7 * 86400),
            key=lambda c: c.started,
            reverse=True,
        )
        render_rows(
            [change_row(c) for c in week[:15]],
            "table",
            columns=["started", "kind", "cluster", "namespace", "workload", "to_image", "state"],
            **(CHANGE_TABLE | {"keep": ["state", "workload"]}),
            title=f"3. This week's changes: {len(week)}, the 15 newest",
            console=console,
        )
        failing = [c for c in changes if c.state in ("failed", "stuck")]
        if failing:
            console.print(Text(f"Rollouts whose new pods did not run: {len(failing)}"))
            for c in failing:
                console.print(
                    Text(f"   {c.workload} {c.state}: {', '.join(c.reasons) or '?'}"),
                    soft_wrap=True,
                )
        _show_impact(console, ledger, path, changes)
        console.print(Text("Explore further, e.g.:", style="dim"))
        for command, why in (
            ("heatmap --since 14d", ""),
            ("changes --since 14d --kind rollback", ""),
            ("changes --since 14d -n logistics", "failed and stuck rollouts"),
            ("workloads --namespace shop", ""),
            ("impact --since 14d -n orders", ""),
            ("capacity orders/orders-api --since 14d", ""),
            ("dora --since 14d --by namespace", ""),
            ("report --since 7d -o report.html", ""),
        ):
            # One line each, never wrapped: they are to be copied and pasted.
            if why:
                console.print(Text(f"  # {why}:", style="dim"), soft_wrap=True)
            line = f"  IMAGETRAIL_LEDGER={path} imagetrail {command}"
            console.print(Text(line, style="dim"), soft_wrap=True)
    finally:
        ledger.close()


def _show_impact(console: Console, ledger: Ledger, path: Path, changes: list[Change]) -> None:
    """4. The regression among the app-metric workloads' changes, with its evidence: the
    verdicts come from the simulator's signals (no Prometheus), as the web app shows them."""
    from imagetrail.service.impact import impacts_for
    from imagetrail.service.query import QueryContext

    # The demo's own settings: a Prometheus URL in the environment is not the demo fleet's.
    ctx = QueryContext(settings_mod.load({"ledger": str(path)}, environ={}), ledger=ledger)
    judged = [c for c in changes if c.namespace == "orders"]
    impacts = impacts_for(ctx, judged)
    counts = Counter(i.verdict for i in impacts)
    console.print(
        Text(
            f"4. Change impact of the {len(judged)} changes in orders (signals from the simulator)",
            style="bold",
        ),
        soft_wrap=True,
    )
    console.print(
        Text("   " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))), soft_wrap=True
    )
    bad = next((i for i in impacts if i.verdict == "regression"), None)
    if bad is None:
        return
    render_rows(
        [
            {
                "signal": sig.name,
                "before": measure_text(sig.before, sig.unit),
                "after": measure_text(sig.after, sig.unit),
                "verdict": sig.verdict,
                "decides": "yes" if sig.decides else "evidence",
            }
            for sig in bad.signals
        ],
        "table",
        title=f"   regression: {bad.change.workload} {transition(bad.change)}",
        console=console,
    )


def _took(change: Change) -> str | None:
    """How long the rollout took until it finished or was given up (``23m``); None while it
    runs (its state says how it stands)."""
    if change.settled is None:
        return None
    return format_duration(round(max(0.0, change.settled - change.started)))
