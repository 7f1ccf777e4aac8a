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

# RE2 metacharacters. Escaping only these (not everything like re.escape) keeps the output
# readable and inside the escapes RE2 accepts (a backslash before punctuation is a literal).
_RE2_META = frozenset("\\.+*?()|[]{}^$")


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
    """Escape ``value`` so that, used as an ``=~`` regex, it matches exactly itself."""
    return "".join("\\" + ch if ch in _RE2_META else ch for ch in value)


# Constructs Python's ``re`` accepts but RE2 (Prometheus, Thanos, Mimir) does not. Checked
# by a small scanner rather than by re's private parser, which is not a stable interface.
_GROUP_REJECTS = (
    ("?=", "lookahead"),
    ("?!", "negative lookahead"),
    ("?<=", "lookbehind"),
    ("?<!", "negative lookbehind"),
    ("?P=", "named backreference"),
    ("?>", "atomic group"),
    ("?(", "conditional group"),
    ("?#", "comment group"),
)
_RE2_FLAGS = frozenset("imsU-")
_RE2_MAX_REPEAT = 1000


def _reject(value: str, what: str) -> InputError:
    return InputError(
        f"regex {value!r} uses a {what}, which Prometheus' regex engine (RE2) does not support",
        hint="RE2 has no lookarounds, backreferences, atomic groups or possessive quantifiers",
    )


def _translate(value: str) -> str:
    """Reject RE2-incompatible constructs; return a Python ``re`` equivalent for compiling.

    RE2 spellings Python lacks (``\\pL``, ``\\p{Greek}``, ``\\z``, the ``U`` flag) are mapped
    to something Python compiles with the same shape, so valid RE2 is not refused.
    """
    out: list[str] = []
    i, n = 0, len(value)
    in_class = False
    while i < n:
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1 : i + 2]
            if nxt and nxt in "123456789":
                # Go reads a lone \1 as a backreference and refuses it, even inside [...].
                raise _reject(value, "backreference")
            if nxt == "g":
                raise _reject(value, "backreference")
            if nxt == "Z":
                raise _reject(value, r"\Z anchor (RE2 spells it \z)")
            if nxt in ("p", "P"):
                # Unicode class: any single-character stand-in keeps the structure valid.
                end = value.find("}", i) + 1 if value[i + 2 : i + 3] == "{" else i + 3
                if end <= i:
                    raise InputError(f"invalid regex {value!r}: unterminated \\p{{...}}")
                out.append("a")
                i = end
                continue
            out.append("\\Z" if nxt == "z" else value[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member, not the end of the class.
            j = i + 1
            if value[j : j + 1] == "^":
                j += 1
            if value[j : j + 1] == "]":
                j += 1
            out.append(value[i:j])
            i = j
            continue
        if ch == "(" and value[i + 1 : i + 2] == "?":
            rest = value[i + 1 :]
            for prefix, what in _GROUP_REJECTS:
                if rest.startswith(prefix):
                    raise _reject(value, what)
            flags = re.match(r"\?([a-zA-Z-]*)([:)])", rest)
            if flags:
                names, close = flags.group(1), flags.group(2)
                if not set(names) <= _RE2_FLAGS:
                    raise _reject(value, f"flag group (?{names})")
                # Python only allows global flags at the start, so a bare (?i) is dropped
                # (it does not change the shape); scoped (?i:...) keeps its group.
                names = names.replace("U", "")
                if close == ":":
                    out.append(f"(?{names}:" if names.strip("-") else "(?:")
                i += 1 + flags.end()
                continue
        if ch == "{":
            counts = re.match(r"\{(\d+)(?:,(\d*))?\}", value[i:])
            if counts and max(int(c) for c in counts.groups() if c) > _RE2_MAX_REPEAT:
                raise InputError(
                    f"regex {value!r} repeats more than {_RE2_MAX_REPEAT} times",
                    hint="RE2 limits {n,m} counts to 1000",
                )
        if ch == "+" and i > 0 and _is_quantifier(value, i - 1):
            raise _reject(value, "possessive quantifier")
        out.append(ch)
        i += 1
    return "".join(out)


def _is_quantifier(value: str, i: int) -> bool:
    """Whether ``value[i]`` is an unescaped quantifier (``*+?}``), not a literal."""
    if value[i] not in "*+?}":
        return False
    backslashes = 0
    j = i - 1
    while j >= 0 and value[j] == "\\":
        backslashes += 1
        j -= 1
    # '?' right after '(' opens a group; '}' is only a quantifier when a '{' opened it.
    if backslashes % 2 or (value[i] == "?" and i > 0 and value[i - 1] == "("):
        return False
    return not (value[i] == "}" and not re.search(r"\{\d*,?\d*$", value[:i]))


def check_regex(value: str) -> str:
    """Validate a user regex for use with ``=~``/``!~`` and return it unchanged.

    Python's ``re`` stands in for RE2 (the grammar is nearly the same); constructs that RE2
    lacks are rejected explicitly. Raises :class:`InputError` with the reason.
    """
    python_form = _translate(value)
    try:
        re.compile(python_form)
    except re.error as exc:
        raise InputError(f"invalid regex {value!r}: {exc}") from exc
    return value


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
