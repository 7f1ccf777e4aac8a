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
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from imagetrail.model import Heatmap
from imagetrail.service.shapes import heatmap_json
from imagetrail.text import csv_cell, printable, short_digest, table_time
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
    whole: Sequence[str] = (),
    keep: Sequence[str] = (),
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a list of JSON objects as a table, JSON array or CSV.

    ``table`` is kubectl's ``get``: one line per row, upper-case headers, no box lines, no
    trailing blanks, short digests and compact times. When the terminal is narrow the ``drop``
    columns go first (in that order); then more columns go, from the right (a column whose
    cells are all the same first; the ``keep`` ones and a cluster column the rows need,
    because they come from several clusters, last); then cells are cut: first the ``key``
    column (default ``image``, else the first) loses the middle of its images' paths
    (:func:`elide_image`), then other cells are cut with an ellipsis, and as a last resort an
    image loses its registry host (``…/kube-state-metrics:v2.14.0``), never its name or tag.
    The ``whole`` columns (small vocabularies: kinds, states, verdicts), times, digests and
    numbers are never cut. ``wide`` adds the ``wide`` columns and full digests, and is as wide
    as its content. JSON and CSV print the ``columns`` in full.
    """
    console = console or Console()
    cols = list(columns) if columns else (list(rows[0]) if rows else [])
    if fmt == "json":
        print(json.dumps(list(rows), indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        _print_csv(cols, ([csv_cell(row.get(c)) for c in cols] for row in rows))
        return
    if title:
        print_title(console, title)
    if not rows:
        console.print(
            Text(printable(f"{title or 'result'}: nothing found"), style="dim"), soft_wrap=True
        )
        return
    is_wide = fmt == "wide"
    if is_wide:
        cols += [c for c in wide if c not in cols]
    key = key if key in cols else ("image" if "image" in cols else cols[0])
    cells = {c: [_cell_text(row.get(c), short=not is_wide) for row in rows] for c in cols}
    headers = {c: c.replace("_", " ").upper() for c in cols}
    natural = {c: max(cell_len(t) for t in [headers[c], *cells[c]]) for c in cols}
    width = console.width

    # Never cut: small vocabularies, times, digests, numbers. The key column is never cut at
    # its end: an image loses the middle of its path (registry.k8s.io/…/controller:v1.11.3),
    # then, as a last resort, its registry host; never its name or tag.
    uncut = {c for c in cols if c in whole or all(_UNCUT.match(t) for t in cells[c])}
    key_host = max(cell_len(t) for t in [headers[key], *map(shortest_image, cells[key])])
    key_least = max(
        cell_len(t) for t in [headers[key], *(shortest_image(t, host=False) for t in cells[key])]
    )
    needed = {c for c in ("cluster",) if c in cols and len(set(cells[c])) > 1}
    last = [c for c in keep if c in cols] + [c for c in needed if c not in keep]

    def least(c: str) -> int:
        if c == key:
            return key_least
        return natural[c] if c in uncut else min(natural[c], max(len(headers[c]), _MIN_CELL))

    def total(widths: dict[str, int]) -> int:
        return sum(widths[c] for c in cols) + _GAP * (len(cols) - 1)

    widths = dict(natural)
    if not is_wide:
        # Narrow terminal: leave out the ``drop`` columns (less important than a whole image)
        # until the rest fits with each cut to its least; if that is not enough, leave out more,
        # from the right, the ``keep`` and needed ones last.
        for c in drop:
            if total({**{c: least(c) for c in cols}, key: natural[key]}) <= width:
                break
            if c in cols and c != key and c not in last:
                cols.remove(c)
        # A column whose cells are all the same says nothing a row needs: it goes first.
        rest = [c for c in reversed(cols) if c != key and c not in last]
        rest.sort(key=lambda c: len(set(cells[c])) > 1)
        for c in [*rest, *reversed(last)]:
            if total({c: least(c) for c in cols}) <= width:
                break
            cols.remove(c)
        # Then cut: the key's middle first, then the widest other cells, then the key's host.
        excess = total(widths) - width
        if excess > 0:
            cut = min(excess, max(0, widths[key] - max(key_host, least(key))))
            widths[key] -= cut
            excess -= cut
        while excess > 0:
            cuttable = [c for c in cols if c != key and widths[c] > least(c)]
            if not cuttable:
                break
            widest = max(cuttable, key=lambda c: widths[c])
            widths[widest] -= 1
            excess -= 1
        if excess > 0:
            widths[key] -= min(excess, widths[key] - least(key))
    if widths[key] < natural[key]:
        host = widths[key] >= key_host
        cells[key] = [elide_image(t, widths[key], host=host) for t in cells[key]]
    table = _table()
    for c in cols:
        table.add_column(headers[c], no_wrap=True, overflow="ellipsis", width=widths[c])
    for i in range(len(rows)):
        table.add_row(*(Text(cells[c][i]) for c in cols))
    # kubectl's -o wide: as wide as the rows are, never cut.
    print_table(console, table, width=total(widths) if is_wide else None)


def print_title(console: Console, title: str) -> None:
    """A table's title: one bold line, never wrapped (it names workloads and images)."""
    console.print(Text(printable(title), style="bold"), soft_wrap=True)


def print_table(console: Console, table: Table, *, width: int | None = None) -> None:
    """``table`` printed with no trailing blanks on its lines (kubectl prints none), at
    ``width`` (default: the console's)."""
    options = console.options if width is None else console.options.update_width(width)
    out: list[Segment] = []
    for line in console.render_lines(table, options, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line:
            end = line[-1]
            line[-1] = Segment(end.text.rstrip(), end.style, end.control)
        out += [*line, Segment.line()]
    console.print(Segments(out), crop=False, soft_wrap=True)


def _print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    print(buffer.getvalue(), end="")


_GAP = 2  # spaces between columns, as kubectl prints them
_MIN_CELL = 10
# Cells never cut: compact times and short digests (a cut one reads as another).
_UNCUT = re.compile(
    r"^(?:—|yes|\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z|sha256:[0-9a-f]{12}"
    r"|[-+]?\d[\d.,]*(?:e[-+]?\d+)?(?: ?(?:%|[KMGT]?i?B|[a-zA-Z]{1,3})(?:/(?:day|week))?)?"
    r"|(?:\d+(?:ms|[smhdw]))+)$"
)


def _table() -> Table:
    # No title: print_title prints it on a line of its own, never wrapped.
    return Table(
        box=None,
        pad_edge=False,
        padding=(0, _GAP // 2),
        header_style="bold",
        show_edge=False,
    )


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z$")


def elide_image(text: str, width: int, *, host: bool = True) -> str:
    """An image reference cut to ``width`` in the middle of its path, never in its name.

    ``registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0`` becomes
    ``registry.k8s.io/…/kube-state-metrics:v2.14.0``: the registry and the repository's last
    segment with its tag or digest stay whole, the path segments between them go, from the
    left, only as many as must. With ``host=False`` the registry host may go too, as a last
    resort (``…/kube-state-metrics:v2.14.0``). Text that is not one image (a list, a blank) is
    left as it is; a list of images (``a, b``) loses the middles of its longest images first.
    """
    if cell_len(text) <= width:
        return text
    if ", " in text and " " not in text.replace(", ", ""):
        images = text.split(", ")
        while cell_len(", ".join(images)) > width:
            for i in sorted(range(len(images)), key=lambda i: -cell_len(images[i])):
                cut = elide_image(images[i], cell_len(images[i]) - 1, host=host)
                if cut != images[i]:
                    images[i] = cut
                    break
            else:
                break
        return ", ".join(images)
    if " " in text:
        return text
    parts = text.split("/")
    for drop in range(1, len(parts) - 1):
        cut = "/".join([parts[0], "…", *parts[1 + drop :]])
        if cell_len(cut) <= width:
            return cut
    if host and len(parts) >= 3:
        return shortest_image(text)
    if not host and len(parts) >= 2:
        for drop in range(1, len(parts)):
            cut = "/".join(["…", *parts[drop:]])
            if cell_len(cut) <= width:
                return cut
        return shortest_image(text, host=False)
    return text


def shortest_image(text: str, *, host: bool = True) -> str:
    """The least an image cell is cut to: its registry, ``…`` and its last path segment (with
    ``host=False``: ``…`` and its last path segment)."""
    if ", " in text and " " not in text.replace(", ", ""):
        return ", ".join(shortest_image(t, host=host) for t in text.split(", "))
    parts = text.split("/")
    if " " in text or len(parts) < (3 if host else 2):
        return text
    return "/".join([parts[0], "…", parts[-1]] if host else ["…", parts[-1]])


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
_BAR_LEAST = 20  # the bar is given at least this much (its header's width) if it can


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
    # Numbers are never cut; the image loses the middle of its path (never its name or tag)
    # rather than leave the bar less than half of what is left; the bar takes the rest.
    numbers = max(len("MAX"), *map(len, maxes)) + max(len("LAST"), *map(len, lasts))
    room = console.width - numbers - 3 * _GAP
    natural = max(cell_len(t) for t in ["IMAGE", *images])
    least = max(cell_len(t) for t in ["IMAGE", *map(shortest_image, images)])
    image_width = max(least, min(natural, room - max(_BAR_LEAST, room // 2)))
    images = [elide_image(t, image_width) for t in images]
    cells = max(1, min(len(heatmap.times), room - image_width))
    stride = max(1, -(-len(heatmap.times) // cells))
    bars = []
    for row in heatmap.counts:
        buckets = [max(row[i : i + stride]) for i in range(0, len(row), stride)]
        bars.append(
            "".join(
                _BLOCKS[max(1, round(c / peak * (len(_BLOCKS) - 1)))] if c else "·" for c in buckets
            )
        )
    bar_width = max(map(len, bars))
    header = next(
        (h for h in ("CONTAINERS OVER TIME", "CONTAINERS", "") if len(h) <= bar_width), ""
    )
    first, last = heatmap.times[0], heatmap.times[-1]
    print_title(console, f"{table_time(first)} → {table_time(last)}  (█ = {peak})")
    table = _table()
    table.add_column("IMAGE", no_wrap=True, width=image_width)
    table.add_column(header, no_wrap=True, overflow="crop", width=bar_width)
    table.add_column("MAX", justify="right", no_wrap=True)
    table.add_column("LAST", justify="right", no_wrap=True)
    for image, bar, top, final in zip(images, bars, maxes, lasts, strict=True):
        table.add_row(Text(image), Text(bar, style="cyan"), top, final)
    print_table(console, table)
