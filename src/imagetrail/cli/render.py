"""Answers for people and scripts: tables (rich, kubectl-style), JSON arrays and CSV.

Every string that came from a cluster is attacker-controlled: tables print it as plain
``Text`` (never rich markup) through :func:`~imagetrail.text.printable`, and CSV cells go
through :func:`~imagetrail.text.csv_cell`. The JSON objects themselves are built in
:mod:`imagetrail.service.shapes`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from imagetrail.model import Heatmap
from imagetrail.service.shapes import heatmap_json
from imagetrail.text import csv_cell, printable, short_digest
from imagetrail.timeutil import format_time

Format = Literal["table", "wide", "json", "csv"]


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
        _print_csv(cols, ([csv_cell(row.get(c)) for c in cols] for row in rows))
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


def _print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    print(buffer.getvalue(), end="")


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
        _print_csv(
            ["time", "image", "containers"],
            (
                [format_time(t), csv_cell(image), count]
                for image, row in zip(heatmap.images, heatmap.counts, strict=True)
                for t, count in zip(heatmap.times, row, strict=True)
                if count
            ),
        )
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
