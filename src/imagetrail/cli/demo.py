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
from imagetrail.model import Change, ChangeKind
from imagetrail.service.shapes import record
from imagetrail.text import transition
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
            )
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
                [_change_row(c) for c in own],
                "table",
                key="what",
                drop=["kind"],
                title="   … and its changes: how each rollout ended",
                console=console,
            )
        # 3. This week's changes, newest first.
        week = sorted(
            (c for c in changes if c.started >= end - 7 * 86400),
            key=lambda c: c.started,
            reverse=True,
        )
        render_rows(
            [_change_row(c) for c in week[:15]],
            "table",
            key="what",
            drop=["kind"],
            title=f"3. This week's changes: {len(week)}, the 15 newest",
            console=console,
        )
        failing = [c for c in changes if c.state in ("failed", "stuck")]
        if failing:
            console.print(
                Text(
                    f"Rollouts whose new pods did not run: {len(failing)} ("
                    + "; ".join(
                        f"{c.workload} {c.state}: {', '.join(c.reasons) or '?'}" for c in failing
                    )
                    + ")"
                )
            )
        _show_impact(console, ledger, path, changes)
        console.print(
            Text(
                "Explore further, e.g.:\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail heatmap --since 14d\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail changes --since 14d --kind rollback\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail changes --since 14d -n logistics  "
                "# failed and stuck rollouts\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail workloads --namespace shop\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail impact --since 14d -n orders\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail capacity orders/orders-api --since 14d\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail dora --since 14d --by namespace\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail report --since 7d -o report.html",
                style="dim",
            )
        )
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
            f"4. Change impact of the {len(judged)} changes in orders (signals from the "
            "simulator): " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())),
            style="bold",
        )
    )
    bad = next((i for i in impacts if i.verdict == "regression"), None)
    if bad is None:
        return
    render_rows(
        [
            {
                "signal": sig.name,
                "before": f"{sig.before:.3g}" if sig.before is not None else "—",
                "after": f"{sig.after:.3g}" if sig.after is not None else "—",
                "verdict": sig.verdict,
                "decides": "yes" if sig.decides else "evidence",
            }
            for sig in bad.signals
        ],
        "table",
        title=f"   regression: {bad.change.workload} {transition(bad.change)}",
        console=console,
    )


def _change_row(c: Change) -> dict[str, str]:
    return {
        "started": record(c)["started"],
        "kind": c.kind.value,
        "where": f"{c.cluster}/{c.namespace}/{c.workload}/{c.container}",
        "what": transition(c),
        "rollout took": _rollout(c),
    }


def _rollout(change: Change) -> str:
    """How long the rollout took, or how it stands (``aborted after 23m``)."""
    if change.settled is None:
        return f"stuck: {', '.join(change.reasons)}" if change.state == "stuck" else "in progress"
    took = format_duration(round(max(0.0, change.settled - change.started)))
    return took if change.finished is not None else f"{change.state} after {took}"
