"""Times and durations at the edges: parse what users type, format what they read.

Inside imagetrail a time is float unix seconds (UTC). Users give RFC 3339
(``2026-11-20T10:00:00Z``), unix seconds (``1732100000``) or relative times (``7d`` = seven
days ago, ``now``, ``now-2h``); durations are Prometheus-style (``30s``, ``1h30m``, ``90``).
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from imagetrail.errors import InputError

_UNIT_SECONDS: dict[str, Decimal] = {
    "y": Decimal(365 * 86400),
    "w": Decimal(7 * 86400),
    "d": Decimal(86400),
    "h": Decimal(3600),
    "m": Decimal(60),
    "s": Decimal(1),
    "ms": Decimal("0.001"),
}
_UNIT_ORDER = list(_UNIT_SECONDS)
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|[ywdhms])")
_RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?)?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# datetime's range, years 1..9999, bounds every time imagetrail accepts or prints.
_MIN_UNIX = -62135596800
_MAX_UNIX = 253402300799
_SHOWN_MAX = 60

_DURATION_HINT = "e.g. 30s, 5m, 2h, 7d, 1w, 1h30m; a plain number means seconds"
_TIME_HINT = (
    "use RFC 3339 (2026-11-20T10:00:00Z), unix seconds (1732100000) "
    "or a relative time (7d, 2h, now, now-1h)"
)


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "...")


def now() -> float:
    """The current time in unix seconds."""
    return time.time()


def parse_duration(value: str) -> float:
    """Seconds in a duration: ``30s``, ``5m``, ``2h``, ``7d``, ``1w``, ``1h30m``, ``90``.

    Units go from largest to smallest, each at most once (as in Prometheus); ``y`` is 365
    days. Raises :class:`~imagetrail.errors.InputError` on anything else, negative included.
    """
    text = value.strip()
    if not text:
        raise InputError("invalid duration: the value is empty", hint=_DURATION_HINT)
    if text.startswith("-"):
        raise InputError(
            f"invalid duration {_shown(value)}: cannot be negative", hint=_DURATION_HINT
        )
    total = Decimal(0)
    if _NUMBER.fullmatch(text):
        total = Decimal(text)
    else:
        pos, last_unit = 0, -1
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if match is None:
                raise InputError(f"invalid duration {_shown(value)}", hint=_DURATION_HINT)
            unit = _UNIT_ORDER.index(match[2])
            if unit <= last_unit:
                raise InputError(
                    f"invalid duration {_shown(value)}: units must go from largest to smallest, "
                    "each once",
                    hint=_DURATION_HINT,
                )
            last_unit = unit
            total += Decimal(match[1]) * _UNIT_SECONDS[match[2]]
            pos = match.end()
    try:
        seconds = float(total)
    except (InvalidOperation, OverflowError):  # pragma: no cover - Decimal->float saturates
        seconds = math.inf
    if not math.isfinite(seconds) or seconds > _MAX_UNIX - _MIN_UNIX:
        raise InputError(f"invalid duration {_shown(value)}: too long", hint=_DURATION_HINT)
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as ``2h30m``, ``45s``, ``3d4h`` or ``1.5s``; milliseconds at most."""
    if not math.isfinite(seconds):
        raise InputError(f"cannot format duration {seconds!r}")
    sign = "-" if seconds < 0 else ""
    total_ms = round(Fraction(abs(seconds)) * 1000)
    whole, ms = divmod(total_ms, 1000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if ms:
        parts.append(f"{secs}.{ms:03d}".rstrip("0") + "s")
    elif secs or not parts:
        parts.append(f"{secs}s")
    return sign + "".join(parts)


def _check_range(value: str, t: float) -> float:
    if not math.isfinite(t) or not _MIN_UNIX <= t < _MAX_UNIX + 1:
        raise InputError(
            f"invalid time {_shown(value)}: outside the years 1 to 9999", hint=_TIME_HINT
        )
    return t


def _parse_rfc3339(value: str, match: re.Match[str]) -> float:
    if match["h"] is not None and match["tz"] is None:
        raise InputError(
            f"invalid time {_shown(value)}: no time zone",
            hint="add Z for UTC or an offset such as +02:00",
        )
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    hour, minute = int(match["h"] or 0), int(match["mi"] or 0)
    second = int(match["s"] or 0)
    try:
        # second 60 is a leap second in RFC 3339; datetime rejects it, arithmetic does not.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as exc:
        raise InputError(f"invalid time {_shown(value)}: {exc}", hint=_TIME_HINT) from exc
    if second > 60:
        raise InputError(f"invalid time {_shown(value)}: second out of range", hint=_TIME_HINT)
    offset = 0
    tz = match["tz"]
    if tz is not None and tz not in "Zz":
        off_h, off_m = int(tz[1:3]), int(tz[4:6])
        if off_h > 23 or off_m > 59:
            raise InputError(f"invalid time {_shown(value)}: bad UTC offset", hint=_TIME_HINT)
        offset = (off_h * 3600 + off_m * 60) * (-1 if tz[0] == "-" else 1)
    days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    whole = days * 86400 + hour * 3600 + minute * 60 + second - offset
    nanos = int((match["f"] or "").ljust(9, "0"))
    # One correctly rounded division of exact integers: format_time output parses back to
    # the very same float.
    return (whole * 1_000_000_000 + nanos) / 1_000_000_000


def parse_time(value: str, now: float | None = None) -> float:
    """Unix seconds from RFC 3339, unix seconds, or a relative time (``7d`` ago, ``now``).

    A date alone (``2026-11-20``) is midnight UTC; a date-time needs ``Z`` or an offset.
    ``now`` defaults to the current time. Raises :class:`~imagetrail.errors.InputError`.
    """
    text = value.strip()
    if not text:
        raise InputError("invalid time: the value is empty", hint=_TIME_HINT)
    current = time.time() if now is None else now
    lowered = text.lower()
    if lowered == "now":
        return current
    if _NUMBER.fullmatch(text):
        t = float(text)
        if t > _MAX_UNIX and t < _MAX_UNIX * 1000:
            raise InputError(
                f"invalid time {_shown(value)}: too far in the future",
                hint="unix time is expected in seconds; this looks like milliseconds",
            )
        return _check_range(value, t)
    match = _RFC3339.fullmatch(text)
    if match is not None:
        return _check_range(value, _parse_rfc3339(value, match))
    # "now-90" is 90 s ago, but a bare "90" was unix seconds above: only "now-" or a unit
    # makes a value relative.
    explicit = lowered.startswith("now-")
    relative = text[4:] if explicit else text
    if explicit or (relative[:1].isdigit() and _DURATION_PART.match(relative)):
        try:
            ago = parse_duration(relative)
        except InputError as exc:
            raise InputError(f"invalid time {_shown(value)}: {exc}", hint=_TIME_HINT) from exc
        return _check_range(value, current - ago)
    raise InputError(f"invalid time {_shown(value)}", hint=_TIME_HINT)


def format_time(t: float) -> str:
    """RFC 3339 in UTC with ``Z``: seconds, or milliseconds when ``t`` has a fraction."""
    if not math.isfinite(t):
        raise InputError(f"cannot format time {t!r}")
    total_ms = round(Fraction(t) * 1000)
    whole, ms = divmod(total_ms, 1000)
    if not _MIN_UNIX <= whole <= _MAX_UNIX:
        raise InputError(f"cannot format time {t!r}: outside the years 1 to 9999")
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=whole)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if ms:
        text += f".{ms:03d}"
    return text + "Z"


__all__ = ["format_duration", "format_time", "now", "parse_duration", "parse_time"]
