"""``imagetrail demo``: a simulated fleet recorded in a ledger, and the three answers."""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.text import Text

from imagetrail import analysis
from imagetrail.ledger import Ledger
from imagetrail.ledger.schema import DEMO_SIMULATION
from imagetrail.model import Change, ChangeKind
from imagetrail.output import render_rows
from imagetrail.service.shapes import record
from imagetrail.service.sync import rederive_changes
from imagetrail.sim import SimConfig, simulate
from imagetrail.sim.signals import remember
from imagetrail.text import transition
from imagetrail.timeutil import format_duration, format_time

DEMO_SYNC_KEY = "demo|simulator|"


def default_demo_ledger() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagetrail" / "demo.db"


def build_demo_ledger(
    path: Path,
    *,
    seed: int = 7,
    days: float = 14,
    signals: bool = True,
    end: float | None = None,
) -> tuple[Ledger, float]:
    """Simulate ``days`` ending now (hour-aligned) and record it in a fresh ledger at ``path``.

    With ``signals`` the ledger's ``meta`` keeps the simulation's parameters, so impact,
    capacity and the report read the same fleet's signals from the simulator
    (``imagetrail.sim.signals``); without, it is a ledger like any other that has no
    Prometheus (for tests of that case). A fixed ``end`` makes it the same ledger every time
    (golden outputs)."""
    if end is None:
        end = math.floor(time.time() / 3600) * 3600
    start = end - days * 86400
    fleet = simulate(SimConfig(seed=seed, start=start, days=days))
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    ledger = Ledger.open(path)
    ledger.merge_spans(
        fleet.spans(),
        waits=fleet.waits(),
        sync_key=DEMO_SYNC_KEY,
        synced_from=fleet.config.start,
        synced_until=fleet.end,
    )
    rederive_changes(ledger, tolerance=2 * fleet.config.scrape_interval)
    if signals:
        params = {"seed": seed, "start": start, "days": days}
        ledger.set_meta_value(DEMO_SIMULATION, json.dumps(params))
        remember(fleet)
    return ledger, fleet.end


def run_demo(console: Console, *, ledger_path: Path | None = None, seed: int = 7) -> None:
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
            wl = [
                s
                for s in spans
                if (s.cluster, s.namespace, s.workload_kind, s.workload)
                == (story.cluster, story.namespace, story.workload_kind, story.workload)
            ]
            render_rows(
                [record(h) for h in analysis.history(wl)],
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
    from imagetrail import settings as settings_mod
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
