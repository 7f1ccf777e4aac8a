"""``imagetrail demo``: a simulated fleet recorded in a ledger, and the three answers."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

from imagetrail import analysis
from imagetrail.ledger import Ledger
from imagetrail.model import ChangeKind
from imagetrail.output import record, render_rows
from imagetrail.sim import SimConfig, simulate
from imagetrail.sync import rederive_changes
from imagetrail.timeutil import format_time

DEMO_SYNC_KEY = "demo|simulator|"


def default_demo_ledger() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagetrail" / "demo.db"


def build_demo_ledger(path: Path, *, seed: int = 7, days: float = 14) -> tuple[Ledger, float]:
    """Simulate ``days`` ending now (hour-aligned) and record it in a fresh ledger at ``path``."""
    end = math.floor(time.time() / 3600) * 3600
    fleet = simulate(SimConfig(seed=seed, start=end - days * 86400, days=days))
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    ledger = Ledger.open(path)
    ledger.merge_spans(
        fleet.spans(),
        sync_key=DEMO_SYNC_KEY,
        synced_from=fleet.config.start,
        synced_until=fleet.end,
    )
    rederive_changes(ledger, tolerance=2 * fleet.config.scrape_interval)
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
        rows = analysis.distribution([s for s in spans if s.covers(at)], at=at)
        render_rows(
            [record(r) for r in rows[:15]],
            "table",
            columns=["image", "containers", "workloads"],
            title=f"1. Versions running now ({format_time(at)}), top 15 of {len(rows)}",
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
        # 3. This week's changes.
        week = [c for c in changes if c.started >= end - 7 * 86400]
        render_rows(
            [record(c) for c in week],
            "table",
            columns=[
                "started",
                "kind",
                "cluster",
                "namespace",
                "workload",
                "container",
                "from_image",
                "to_image",
                "finished",
            ],
            title=f"3. This week's changes ({len(week)})",
            console=console,
        )
        console.print(
            Text(
                "Explore further, e.g.:\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail heatmap --since 14d\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail changes --since 14d --kind rollback\n"
                f"  IMAGETRAIL_LEDGER={path} imagetrail workloads --namespace shop",
                style="dim",
            )
        )
    finally:
        ledger.close()
