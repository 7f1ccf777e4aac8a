"""Rendering answers as table (rich), JSON or CSV.

The JSON shapes are a public interface (docs/json.md): one ``to_json`` per answer type, times
as RFC 3339 UTC. Every string that came from a cluster is attacker-controlled: tables print it as
plain ``Text`` (never rich markup), CSV cells that a spreadsheet would run as a formula are
prefixed with a quote.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import unicodedata
from collections.abc import Sequence
from enum import Enum
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from imagetrail.analysis.dora import DoraFigures
from imagetrail.model import Change, Heatmap, Impact
from imagetrail.timeutil import format_time

Format = Literal["table", "json", "csv"]
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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Bidirectional overrides and isolates: they make a terminal show text in another order.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters and bidi overrides as escapes.

    Rich drops some control characters but passes ESC through, so a label value holding
    ``\x1b[2J`` would otherwise clear the reader's screen; a newline would break one line
    (an error message) into two.
    """
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs")
        else ch
        for ch in text
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
    return {
        "times": [format_time(t) for t in heatmap.times],
        "images": list(heatmap.images),
        "counts": [list(row) for row in heatmap.counts],
    }


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def render_rows(
    rows: Sequence[dict[str, Any]],
    fmt: Format,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a list of JSON objects as a table, JSON array or CSV."""
    console = console or Console()
    cols = list(columns) if columns else (list(rows[0]) if rows else [])
    if fmt == "json":
        print(json.dumps(list(rows), indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(cols)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in cols])
        print(buffer.getvalue(), end="")
        return
    if not rows:
        console.print(Text(printable(f"{title or 'result'}: nothing found"), style="dim"))
        return
    # A Text title: a str would be read as rich markup, and titles hold workload names.
    table = Table(
        title=Text(printable(title)) if title else None, show_lines=False, title_justify="left"
    )
    for col in cols:
        table.add_column(col.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell_text(row.get(c))) for c in cols))
    console.print(table)


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$")


def _cell_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "\n".join(printable(str(v)) for v in value)
    text = printable(str(value))
    # Tables are for people: whole seconds, no T/Z (JSON and CSV keep RFC 3339).
    match = _RFC3339.match(text)
    return f"{match.group(1)} {match.group(2)}" if match else text


_BLOCKS = " ▁▂▃▄▅▆▇█"


def render_heatmap(heatmap: Heatmap, fmt: Format, *, console: Console | None = None) -> None:
    console = console or Console()
    if fmt == "json":
        print(json.dumps(heatmap_json(heatmap), indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["time", "image", "containers"])
        for image, row in zip(heatmap.images, heatmap.counts, strict=True):
            for t, count in zip(heatmap.times, row, strict=True):
                if count:
                    writer.writerow([format_time(t), csv_cell(image), count])
        print(buffer.getvalue(), end="")
        return
    if not heatmap.images:
        console.print(Text("heatmap: no containers in this range", style="dim"))
        return
    peak = max((max(row) for row in heatmap.counts if row), default=0) or 1
    width = min(len(heatmap.times), 60)
    stride = max(1, -(-len(heatmap.times) // width))
    title = f"{format_time(heatmap.times[0])} → {format_time(heatmap.times[-1])}"
    table = Table(title=title, title_justify="left")
    table.add_column("image", overflow="fold")
    table.add_column(f"containers over time (█ = {peak})", no_wrap=True)
    table.add_column("max", justify="right")
    table.add_column("last", justify="right")
    for image, row in zip(heatmap.images, heatmap.counts, strict=True):
        cells = [max(row[i : i + stride]) for i in range(0, len(row), stride)]
        bar = "".join(_BLOCKS[round(c / peak * (len(_BLOCKS) - 1))] if c else "·" for c in cells)
        table.add_row(Text(printable(image)), Text(bar, style="cyan"), str(max(row)), str(row[-1]))
    console.print(table)


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
