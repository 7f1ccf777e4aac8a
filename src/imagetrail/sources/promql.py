"""Safe PromQL building.

Label values come from clusters (pod names, image strings) and from users (filters), so they
are attacker-controlled: every value that ends up inside a query goes through :func:`quote`,
and every plain name that must match literally inside ``=~`` goes through
:func:`regex_literal` first. Nothing here talks to a server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from imagetrail import scope
from imagetrail.errors import InputError

__all__ = [
    "MATCH_OPS",
    "check_label_name",
    "check_regex",
    "duration",
    "matcher",
    "quote",
    "regex_literal",
    "selector",
]

MATCH_OPS = ("=", "!=", "=~", "!~")

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Metric names may also contain colons (recording rules: ``job:up:sum``).
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

# Go's strconv.Quote short escapes; PromQL's lexer understands the same set.
_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _escape_char(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    if ch.isprintable():
        return ch
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate cannot be encoded as UTF-8, so no server could ever hold it.
        raise InputError(f"value contains a lone surrogate U+{code:04X}, which is not text")
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(value: str) -> str:
    """Return ``value`` as a PromQL double-quoted string literal (Go ``strconv.Quote`` style).

    Backslash, double quote and every non-printable character are escaped, so the literal
    cannot end early or smuggle a second selector into the query.
    """
    return '"' + "".join(_escape_char(ch) for ch in value) + '"'


def check_label_name(label: str) -> str:
    """Return ``label`` if it is a valid Prometheus label name, else raise :class:`InputError`."""
    if not _LABEL_NAME.fullmatch(label):
        raise InputError(
            f"{label!r} is not a valid label name",
            hint="label names match [a-zA-Z_][a-zA-Z0-9_]*",
        )
    return label


def matcher(label: str, op: str, value: str) -> str:
    """Build one label matcher such as ``namespace=~"kube-.*"``.

    ``op`` is one of ``=``, ``!=``, ``=~``, ``!~``; regex values are checked with
    :func:`check_regex` so a bad user regex fails here, not on the server.
    """
    check_label_name(label)
    if op not in MATCH_OPS:
        raise InputError(f"{op!r} is not a label matcher operator", hint="use =, !=, =~ or !~")
    if op in ("=~", "!~"):
        check_regex(value)
    return f"{label}{op}{quote(value)}"


def selector(metric: str, matchers: Sequence[tuple[str, str, str]]) -> str:
    """Build ``metric{a="b",c=~"d"}`` from ``(label, op, value)`` triples."""
    if not _METRIC_NAME.fullmatch(metric):
        raise InputError(
            f"{metric!r} is not a valid metric name",
            hint="metric names match [a-zA-Z_:][a-zA-Z0-9_:]*",
        )
    inner = ",".join(matcher(label, op, value) for label, op, value in matchers)
    return f"{metric}{{{inner}}}"


def regex_literal(value: str) -> str:
    """Escape ``value`` so that, used as an ``=~`` regex, it matches exactly itself.

    Only RE2's metacharacters are escaped (not everything, as re.escape does): the output
    stays readable and inside the escapes RE2 accepts."""
    return "".join("\\" + ch if ch in scope.METACHARACTERS else ch for ch in value)


def check_regex(value: str) -> str:
    """Validate a user regex for use with ``=~``/``!~`` and return it unchanged: the one
    grammar, RE2's (:func:`imagetrail.scope.check_regex`)."""
    return scope.check_regex(value)


_DURATION_UNITS = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)


def duration(seconds: float) -> str:
    """Format seconds as a PromQL duration literal: ``30s``, ``5m``, ``1h30m``, ``1d``.

    Rounded to milliseconds (PromQL's resolution); units as Prometheus prints them
    (``y`` = 365d, ``w`` = 7d). Zero is ``0s``; negative or non-finite values are refused.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"{seconds!r} is not a usable duration", hint="use a finite value >= 0")
    remaining = round(seconds * 1000)
    if remaining == 0:
        return "0s"
    parts = []
    for unit, ms in _DURATION_UNITS:
        count, remaining = divmod(remaining, ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
