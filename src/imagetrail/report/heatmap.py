"""The report's heatmap as a PNG: image x time -> containers, drawn with matplotlib (Agg).

A picture, not a chart script, because the report is read in mail clients that run no
JavaScript. Drawn with the object-oriented API (no pyplot): the scheduler draws in a
background thread of the web server, and pyplot's global state is not thread-safe.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from imagetrail.model import Heatmap
from imagetrail.text import printable

if TYPE_CHECKING:
    from matplotlib.colors import Colormap

MAX_ROWS = 30  # more rows than this and the labels become unreadable in a mail
_LABEL_MAX = 64


def label(image: str) -> str:
    """An image reference as a tick label: printable, at most ``_LABEL_MAX`` characters,
    shortened in the middle because the tag at the end is what tells versions apart."""
    text = printable(image)
    if len(text) <= _LABEL_MAX:
        return text
    keep = _LABEL_MAX - 1
    return text[: keep // 2 - 6] + "…" + text[-(keep - keep // 2 + 6) :]


def chosen_rows(heatmap: Heatmap, limit: int = MAX_ROWS, prefer: Collection[str] = ()) -> list[int]:
    """Indexes of at most ``limit`` non-empty rows, in the heatmap's order: images in
    ``prefer`` (those that changed) first, then those with the most container-time."""
    totals = [sum(row) for row in heatmap.counts]
    wanted = set(prefer)
    ranked = sorted(
        (i for i in range(len(totals)) if totals[i]),
        key=lambda i: (heatmap.images[i] not in wanted, -totals[i], i),
    )
    return sorted(ranked[:limit])


_TICK_STEPS = (3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


def time_ticks(start: float, end: float, most: int = 8) -> tuple[list[float], str]:
    """UTC-aligned tick times between ``start`` and ``end`` (at most ``most``) and the
    strftime format for their labels (the hour only when ticks are less than a day apart)."""
    span = max(end - start, 1.0)
    # At most span // step + 1 aligned times fit in the range.
    step = next((s for s in _TICK_STEPS if span // s + 1 <= most), None)
    if step is None:
        step = 7 * 86400 * math.ceil(span / (7 * 86400 * (most - 1)))
    first = math.ceil(start / step) * step
    if first < start:  # start / step underflowed
        first += step
    ticks = [float(t) for t in range(int(first), int(end) + 1, step)]
    return ticks, ("%b %d" if step >= 86400 else "%b %d %H:%M")


def render_png(
    heatmap: Heatmap, *, limit: int = MAX_ROWS, prefer: Collection[str] = ()
) -> tuple[bytes | None, int]:
    """The PNG and how many image rows were left out; ``(None, 0)`` when nothing ran.

    ``prefer``: images to show before busier ones when not all rows fit.
    """
    rows = chosen_rows(heatmap, limit, prefer)
    if not rows or len(heatmap.times) == 0:
        return None, 0
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    nonempty = sum(1 for row in heatmap.counts if any(row))
    data = np.ma.masked_equal(np.array([heatmap.counts[i] for i in rows], dtype=float), 0.0)
    step = (heatmap.times[1] - heatmap.times[0]) if len(heatmap.times) > 1 else 60.0
    x0, x1 = heatmap.times[0], heatmap.times[-1] + step

    fig = Figure(figsize=(10.0, 1.6 + 0.26 * len(rows)), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = _cmap()
    image = ax.imshow(
        data,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        extent=(x0, x1, len(rows) - 0.5, -0.5),
        vmin=0,
    )
    ax.set_yticks(
        range(len(rows)),
        [label(heatmap.images[i]) for i in rows],
        fontsize=8,
        # Image references come from the cluster: "$...$" must never become mathtext.
        parse_math=False,
    )
    ticks, fmt = time_ticks(x0, x1)
    ax.set_xticks(ticks, [datetime.fromtimestamp(t, UTC).strftime(fmt) for t in ticks])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("time (UTC)", fontsize=8)
    ax.set_facecolor("#f3f4f6")
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03)
    bar.set_label("containers", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue(), nonempty - len(rows)


def _cmap() -> Colormap:
    from matplotlib import colormaps

    # No container: the background colour, not cividis' darkest blue.
    return colormaps["cividis"].with_extremes(bad="#f3f4f6")
