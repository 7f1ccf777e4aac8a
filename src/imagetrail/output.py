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
import time
import unicodedata
from collections.abc import Sequence
from enum import Enum
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from imagetrail.analysis.dora import DoraFigures
from imagetrail.model import Change, Heatmap, Impact
from imagetrail.timeutil import format_time

Format = Literal["table", "wide", "json", "csv"]
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
    wide: Sequence[str] = (),
    key: str | None = None,
    drop: Sequence[str] = (),
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a list of JSON objects as a table, JSON array or CSV.

    ``table`` is kubectl's ``get``: one line per row, upper-case headers, no box lines, short
    digests and compact times. When the terminal is narrow the ``drop`` columns go first (in
    that order), then the ``key`` column (default ``image``, else the first) loses the middle
    of its images' paths (:func:`elide_image`), then other cells are cut with an ellipsis. A
    cluster column stays while rows come from several clusters. ``wide`` adds the ``wide``
    columns and full digests, and is as wide as it needs to be. JSON and CSV print the
    ``columns`` in full.
    """
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
    is_wide = fmt == "wide"
    if is_wide:
        cols += [c for c in wide if c not in cols]
    key = key if key in cols else ("image" if "image" in cols else cols[0])
    cells = {c: [_cell_text(row.get(c), short=not is_wide) for row in rows] for c in cols}
    headers = {c: c.replace("_", " ").upper() for c in cols}
    natural = {c: max(cell_len(t) for t in [headers[c], *cells[c]]) for c in cols}
    width = console.width

    # Never cut: times and digests. The key column is never cut at its end: an image loses
    # the middle of its path (registry.k8s.io/…/controller:v1.11.3), never its name, and only
    # when that keeps a cluster column the rows need (they come from several clusters).
    whole = {c for c in cols if all(t == "—" or _UNCUT.match(t) for t in cells[c])}
    shortest_key = max(cell_len(t) for t in [headers[key], *map(shortest_image, cells[key])])
    needed = {c for c in ("cluster",) if c in cols and len(set(cells[c])) > 1}

    def least(c: str, key_least: int) -> int:
        if c == key:
            return key_least
        return natural[c] if c in whole else min(natural[c], max(len(headers[c]), _MIN_CELL))

    def fits(key_least: int) -> bool:
        return sum(least(c, key_least) for c in cols) + _GAP * (len(cols) - 1) <= width

    widths = dict(natural)
    if not is_wide:
        # Narrow terminal: leave out the ``drop`` columns (less important than a whole image)
        # until the rest fits with each cut to its least; if that is not enough, elide the
        # middle of the images; then leave out more, from the right, the needed ones last.
        for c in drop:
            if fits(natural[key]):
                break
            if c in cols and c != key and c not in needed:
                cols.remove(c)
        rest = [c for c in reversed(cols) if c != key]
        for c in [*(c for c in rest if c not in needed), *(c for c in rest if c in needed)]:
            if fits(shortest_key):
                break
            cols.remove(c)
        # Then cut the widest cells first (the key by eliding).
        excess = sum(widths[c] for c in cols) + _GAP * (len(cols) - 1) - width
        while excess > 0:
            cuttable = [c for c in cols if widths[c] > least(c, shortest_key)]
            if not cuttable:
                break
            widest = max(cuttable, key=lambda c: widths[c])
            widths[widest] -= 1
            excess -= 1
    if widths[key] < natural[key]:
        cells[key] = [elide_image(t, widths[key]) for t in cells[key]]
    table = _table(title)
    for c in cols:
        table.add_column(headers[c], no_wrap=True, overflow="ellipsis", width=widths[c])
    for i in range(len(rows)):
        table.add_row(*(Text(cells[c][i]) for c in cols))
    if is_wide:
        # kubectl's -o wide: as wide as the rows are, never cut.
        total = sum(natural[c] for c in cols) + _GAP * (len(cols) - 1)
        console.width = max(width, total)
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
    else:
        console.print(table)


_GAP = 2  # spaces between columns, as kubectl prints them
_MIN_CELL = 10
# Cells never cut: compact times and short digests (a cut one reads as another).
_UNCUT = re.compile(r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z|sha256:[0-9a-f]{12})$")


def _table(title: str | None) -> Table:
    # A Text title: a str would be read as rich markup, and titles hold workload names.
    return Table(
        title=Text(printable(title)) if title else None,
        title_justify="left",
        title_style="bold",
        box=None,
        pad_edge=False,
        padding=(0, _GAP // 2),
        header_style="bold",
        show_edge=False,
    )


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z$")
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{12})[0-9a-f]{52}$")


def table_time(t: float) -> str:
    """A time as tables print it: to the minute, UTC (``2026-11-23 22:48Z``)."""
    return time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(t))


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits (as ``docker images`` shows an id)."""
    match = _DIGEST.match(digest)
    return match.group(1) if match else digest


def elide_image(text: str, width: int) -> str:
    """An image reference cut to ``width`` in the middle of its path, never in its name.

    ``registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0`` becomes
    ``registry.k8s.io/…/kube-state-metrics:v2.14.0``: the registry and the repository's last
    segment with its tag or digest stay whole, the path segments between them go, from the
    left, only as many as must. Text that is not one image (a list, a blank) is left as it is.
    """
    if cell_len(text) <= width or " " in text:
        return text
    parts = text.split("/")
    for drop in range(1, len(parts) - 1):
        cut = "/".join([parts[0], "…", *parts[1 + drop :]])
        if cell_len(cut) <= width:
            return cut
    return shortest_image(text)


def shortest_image(text: str) -> str:
    """The least an image cell is cut to: its registry, ``…`` and its last path segment."""
    parts = text.split("/")
    if " " in text or len(parts) < 3:
        return text
    return "/".join([parts[0], "…", parts[-1]])


def _cell_text(value: Any, *, short: bool = True) -> str:
    """One table cell on one line: compact times, yes/— for booleans, short digests."""
    if value is None or value is False or value == [] or value == "":
        return "—"
    if value is True:
        return "yes"
    if isinstance(value, list | tuple):
        return ", ".join(_cell_text(v, short=short) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    text = printable(str(value)).replace("\n", " ")
    # Tables are for people: to the minute, UTC (JSON and CSV keep RFC 3339).
    match = _RFC3339.match(text)
    if match:
        return f"{match.group(1)} {match.group(2)}Z"
    return short_digest(text) if short else text


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
    images = [printable(image) for image in heatmap.images]
    maxes = [str(max(row)) for row in heatmap.counts]
    lasts = [str(row[-1]) for row in heatmap.counts]
    # The bar takes the width the terminal has, after the image (never cut), MAX and LAST.
    fixed = max(cell_len(t) for t in ["IMAGE", *images])
    fixed += max(len("MAX"), *map(len, maxes)) + max(len("LAST"), *map(len, lasts)) + 3 * _GAP
    cells = max(8, min(len(heatmap.times), console.width - fixed))
    stride = max(1, -(-len(heatmap.times) // cells))
    title = f"{format_time(heatmap.times[0])} → {format_time(heatmap.times[-1])}  (█ = {peak})"
    table = _table(title)
    table.add_column("IMAGE", no_wrap=True)
    table.add_column("CONTAINERS OVER TIME", no_wrap=True, overflow="crop")
    table.add_column("MAX", justify="right", no_wrap=True)
    table.add_column("LAST", justify="right", no_wrap=True)
    for image, row, top, last in zip(images, heatmap.counts, maxes, lasts, strict=True):
        buckets = [max(row[i : i + stride]) for i in range(0, len(row), stride)]
        bar = "".join(_BLOCKS[round(c / peak * (len(_BLOCKS) - 1))] if c else "·" for c in buckets)
        table.add_row(Text(image), Text(bar, style="cyan"), top, last)
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


def per_day_text(per_day: float | None) -> str | None:
    """A rate for people: ``1.4/day`` when at least daily, else ``3.2/week``."""
    if per_day is None:
        return None
    if per_day >= 1:
        return f"{per_day:.1f}/day"
    return f"{per_day * 7:.1f}/week"


def percent_text(fraction: float | None) -> str | None:
    """A fraction as a percentage to one decimal (``7.7 %``)."""
    return None if fraction is None else f"{fraction * 100:.1f} %"
