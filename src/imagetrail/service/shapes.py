"""The public JSON shapes of the answers (docs/json.md): one object per answer row, times as
RFC 3339 UTC. The CLI's ``-o json``/``-o csv``, the web API and the report all build them here,
so an answer has the same shape everywhere."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from imagetrail.analysis.dora import DoraFigures
from imagetrail.model import Change, Heatmap, Impact
from imagetrail.timeutil import format_time

TIME_FIELDS = frozenset(
    {"started", "finished", "ended", "first_seen", "last_seen", "last_change", "at"}
    | {"deployed_at", "received_at", "commit_time"}  # deployment events
)
# The columns of `changes --format csv` (and of the web app's CSV download), in this order.
CHANGE_COLUMNS = (
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "from_image",
    "to_image",
    "kind",
    "started",
    "finished",
    "from_digest",
    "to_digest",
    "state",
    "cut_short",
    "ended",
    "reasons",
    "pods",
    "pods_ran",
    "waited",
)


def _plain(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Enum):
        return value.value
    if name in TIME_FIELDS and isinstance(value, int | float):
        return format_time(float(value))
    if isinstance(value, tuple | list):
        return [_plain("", v) for v in value]
    return value


def record(item: Any) -> dict[str, Any]:
    """A model dataclass as its JSON object (a change with its derived ``state``)."""
    out = {f.name: _plain(f.name, getattr(item, f.name)) for f in dataclasses.fields(item)}
    if isinstance(item, Change):
        out["state"] = item.state
    return out


def heatmap_json(heatmap: Heatmap) -> dict[str, Any]:
    """The heatmap: bucket times, images and a row of container counts per image."""
    return {
        "times": [format_time(t) for t in heatmap.times],
        "images": list(heatmap.images),
        "counts": [list(row) for row in heatmap.counts],
    }


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def impact_json(impact: Impact) -> dict[str, Any]:
    """One change with its verdict and evidence (docs/json.md, "impact")."""
    out = record(impact.change)
    out["verdict"] = impact.verdict
    out["reason"] = impact.reason
    out["before"] = {"from": format_time(impact.before[0]), "to": format_time(impact.before[1])}
    out["after"] = (
        None
        if impact.after is None
        else {"from": format_time(impact.after[0]), "to": format_time(impact.after[1])}
    )
    out["signals"] = [
        {
            "name": s.name,
            "unit": s.unit,
            "before": _rounded(s.before),
            "after": _rounded(s.after),
            "p_value": _rounded(s.p_value, 4),
            "effect": _rounded(s.effect, 4),
            "verdict": s.verdict,
            "decides": s.decides,
            "blocks_before": s.blocks_before,
            "blocks_after": s.blocks_after,
            "before_values": [_rounded(v) for v in s.before_values],
            "after_values": [_rounded(v) for v in s.after_values],
        }
        for s in impact.signals
    ]
    out["events"] = (
        None
        if impact.events is None
        else [
            {"state": e.state, "reason": e.reason, "before": e.before, "after": e.after}
            for e in impact.events
        ]
    )
    return out


def dora_json(figures: DoraFigures) -> dict[str, Any]:
    """One workload's or namespace's DORA figures (docs/json.md, "dora")."""
    out = record(figures)
    out["deployments_per_day"] = _rounded(figures.deployments_per_day, 4)
    out["change_failure_rate"] = _rounded(figures.change_failure_rate, 4)
    out["time_to_restore_median_seconds"] = figures.time_to_restore_median
    out["lead_time_median_seconds"] = figures.lead_time_median
    return out
