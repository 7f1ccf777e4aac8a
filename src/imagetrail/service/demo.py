"""The demo ledger: a simulated fleet recorded in a ledger (``imagetrail demo`` prints its
answers, see :mod:`imagetrail.cli.demo`; tests and benchmarks build it too)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from imagetrail.ledger import Ledger
from imagetrail.ledger.schema import DEMO_SIMULATION
from imagetrail.service.sync import rederive_changes
from imagetrail.sim import SimConfig, simulate
from imagetrail.sim.signals import remember

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
