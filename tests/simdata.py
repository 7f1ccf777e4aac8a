"""Simulated fleets in real servers: cached TSDBs and VictoriaMetrics imports for the tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imagetrail.model import Change
from imagetrail.sim import Fleet, SimConfig, simulate, write_openmetrics
from servers import cached_tsdb

SIM_DIR = Path(__file__).resolve().parents[1] / "src" / "imagetrail" / "sim"
DAY = 86400.0
HOUR = 3600.0

# Two clusters and four days around the interesting events of the demo fleet: the failed
# rollout and its rollback (day 4), a workload added (day 5), the tag re-push (day 6) and a
# workload removed (day 7); and the logistics attempts whose pods wait: a missing secret fixed
# in place (day 4), a tag that does not exist undone (day 5), a crash loop rolled back (day 6).
# About 11M samples: ~40 s to backfill, once per cache.
E2E_CONFIG = SimConfig(clusters=("prod-eu", "staging"))
E2E_WINDOW = (3.5 * DAY, 7.6 * DAY)

# The demo fleet's `orders` namespace (primary cluster prod-eu) from day 12 to the end: the
# change-impact scenario (good upgrades, a bad one and its rollback, one too late to judge)
# with app metrics. A Prometheus backfilled with IMPACT_SIGNALS for IMPACT_NAMESPACES only
# holds about 1.1M samples.
IMPACT_CONFIG = SimConfig()
IMPACT_WINDOW = (12.0 * DAY, 14.0 * DAY)
IMPACT_SIGNALS = ("ksm", "cadvisor", "impact")
IMPACT_NAMESPACES = ("orders",)


@dataclass(frozen=True)
class SimData:
    fleet: Fleet
    start: float
    end: float
    signals: tuple[str, ...]
    namespaces: tuple[str, ...] | None = None  # only these namespaces' series (None: all)


def _code_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(SIM_DIR.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def sim_data(
    config: SimConfig = E2E_CONFIG,
    window: tuple[float, float] = E2E_WINDOW,
    signals: tuple[str, ...] = ("ksm",),
    namespaces: tuple[str, ...] | None = None,
) -> SimData:
    fleet = simulate(config)
    return SimData(fleet, config.start + window[0], config.start + window[1], signals, namespaces)


def impact_sim_data() -> SimData:
    """The change-impact scenario: the `orders` namespace, days 12-14, with app metrics."""
    return sim_data(IMPACT_CONFIG, IMPACT_WINDOW, IMPACT_SIGNALS, IMPACT_NAMESPACES)


def sim_tsdb(data: SimData) -> Path:
    """A Prometheus TSDB holding the simulated series (built once, then cached)."""
    ident: tuple[object, ...] = (data.fleet.config, data.start, data.end, data.signals)
    ident += (_code_hash(),) if data.namespaces is None else (_code_hash(), data.namespaces)
    key = hashlib.sha256(repr(ident).encode()).hexdigest()[:16]
    return cached_tsdb(
        f"sim-{key}",
        lambda out: write_openmetrics(
            data.fleet,
            out,
            signals=data.signals,
            start=data.start,
            end=data.end,
            namespaces=data.namespaces,
        ),
    )


CHANGE_KEY_FIELDS = (
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "from_image",
    "from_digest",
    "to_image",
    "to_digest",
    "kind",
)


def change_key(c: object) -> tuple[object, ...]:
    """What identifies a change, from a Change, an ExpectedChange or a JSON object."""
    if isinstance(c, Mapping):
        return tuple(c[f] for f in CHANGE_KEY_FIELDS)
    return tuple(getattr(c, f) for f in CHANGE_KEY_FIELDS)


def expected_window_changes(data: SimData) -> dict[tuple[object, ...], tuple[float, float | None]]:
    """Ground-truth changes that a window [start, end] of history can show."""
    lo, hi = data.start + HOUR, data.end - 2 * HOUR
    out = {}
    for c in data.fleet.expected_changes:
        if lo <= c.started <= hi:
            finished = c.finished if c.finished is not None and c.finished <= data.end else None
            out[change_key(c)] = (c.started, finished)
    return out


def found_window_changes(
    changes: list[Change], data: SimData
) -> dict[tuple[object, ...], tuple[float, float | None]]:
    lo, hi = data.start + HOUR, data.end - 2 * HOUR
    return {change_key(c): (c.started, c.finished) for c in changes if lo <= c.started <= hi}
