"""Pure text helpers for people and spreadsheets: terminal-safe strings, compact times and
digests, rates, CSV cells and a change's ``from → to``. No rich, no I/O: the CLI, the web app,
the report and the Grafana annotations all print through these.
"""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Any

from imagetrail.errors import ImageRefError
from imagetrail.imageref import ImageRef, parse
from imagetrail.model import Change

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Bidirectional overrides and isolates: they make a terminal show text in another order.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{12})[0-9a-f]{52}$")


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


def csv_cell(value: Any) -> str:
    """One CSV cell: a list space-separated; a cell a spreadsheet would run as a formula is
    prefixed with a quote."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def table_time(t: float) -> str:
    """A time as tables print it: to the minute, UTC (``2026-11-23 22:48Z``)."""
    return time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(t))


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits (as ``docker images`` shows an id)."""
    match = _DIGEST.match(digest)
    return match.group(1) if match else digest


def per_day_text(per_day: float | None) -> str | None:
    """A rate for people: ``1.4/day`` when at least daily, else ``3.2/week``."""
    if per_day is None:
        return None
    if per_day >= 1:
        return f"{per_day:.1f}/day"
    return f"{per_day * 7:.1f}/week"


def rough_duration(seconds: float) -> str:
    """A duration for people, to its largest unit: ``14d`` (not ``13d23h``), ``5h``, ``12m``,
    ``40s``; two units below two of the largest (``1d6h``, ``1h30m``)."""
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (name, size) in enumerate(units):
        if seconds >= 2 * size or name == "s":
            return f"{round(seconds / size)}{name}"
        if seconds >= size:
            small, small_size = units[i + 1]
            whole, rest = divmod(round(seconds / small_size), size // small_size)
            return f"{whole}{name}" + (f"{rest}{small}" if rest else "")
    raise AssertionError("unreachable")


def size_text(value: float) -> str:
    """A size in bytes for people, in binary units to three figures (``180 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1024
    raise AssertionError("unreachable")


def measure_text(value: float | None, unit: str) -> str:
    """A measured value for people: bytes as ``180 MiB``, anything else to three figures."""
    if value is None:
        return "—"
    if unit.split("/")[0] == "bytes":
        return size_text(value)
    return f"{value:.3g}"


def percent_text(fraction: float | None) -> str | None:
    """A fraction as a percentage to one decimal (``7.7 %``)."""
    return None if fraction is None else f"{fraction * 100:.1f} %"


def transition(change: Change) -> str:
    """``repo  1.2 → 1.3`` when one repository changes version, else both references."""
    try:
        a = parse(change.from_image) if change.from_image else None
        b = parse(change.to_image) if change.to_image else None
    except ImageRefError:
        a = b = None
    if a is not None and b is not None and a.name == b.name:
        if a.tag == b.tag:
            return f"{b.familiar}  {_short(change.from_digest)} → {_short(change.to_digest)}"
        return f"{ImageRef(b.registry, b.repository).familiar}  {a.tag} → {b.tag}"
    return f"{change.from_image or '—'} → {change.to_image or '—'}"


def _short(digest: str | None) -> str:
    return digest[:19] + "…" if digest else "?"
