"""Times and durations: what users type and what they read."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetrail.errors import InputError
from imagetrail.timeutil import format_duration, format_time, now, parse_duration, parse_time

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604_800),
        ("1w", 604_800),
        ("1y", 365 * 86_400),
        ("1h30m", 5400),
        ("1d2h3m4s", 93_784),
        ("1s500ms", 1.5),
        ("250ms", 0.25),
        ("1.5h", 5400),
        ("90", 90),
        ("0", 0),
        ("2.5", 2.5),
        (" 5m ", 300),
    ],
)
def test_parse_duration(value: str, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-5m", "negative"),
        ("", "empty"),
        ("   ", "empty"),
        ("5x", "invalid duration"),
        ("m", "invalid duration"),
        ("5m5m", "largest to smallest"),
        ("5s5m", "largest to smallest"),
        ("5 m", "invalid duration"),
        ("1e3", "invalid duration"),
        ("nan", "invalid duration"),
        ("inf", "invalid duration"),
        ("5M", "invalid duration"),
        ("٥m", "invalid duration"),  # Arabic-Indic five: not an ASCII digit
        ("9" * 400, "too long"),
        ("99999999999999y", "too long"),
        ("x" * 10_000, "invalid duration"),
    ],
)
def test_parse_duration_rejects(value: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        parse_duration(value)
    assert info.value.hint
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (9000, "2h30m"),
        (273_600, "3d4h"),
        (90_061, "1d1h1m1s"),
        (1.5, "1.5s"),
        (0.25, "0.25s"),
        (3600.125, "1h0.125s"),
        (14 * 86_400, "14d"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=200 * 365 * 86_400))
def test_duration_round_trip_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=10**9))
def test_duration_round_trip_milliseconds(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == pytest.approx(ms / 1000, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", NOW),
        ("2026-11-20t10:00:00z", NOW),
        ("2026-11-20 10:00:00Z", NOW),
        ("2026-11-20T12:00:00+02:00", NOW),
        ("2026-11-20T05:30:00-04:30", NOW),
        ("2026-11-20T10:00:00.5Z", NOW + 0.5),
        ("2026-11-20T10:00:00.123456789Z", (1_795_168_800 * 10**9 + 123_456_789) / 10**9),
        ("2026-11-20T10:00Z", NOW),
        ("2026-11-20", NOW - 10 * 3600),
        ("1970-01-01T00:00:00Z", 0.0),
        ("2016-12-31T23:59:60Z", 1_483_228_800.0),  # leap second: the next second
        ("1732100000", 1_732_100_000.0),
        ("1732100000.5", 1_732_100_000.5),
        ("0", 0.0),
        ("now", NOW),
        ("NOW", NOW),
        ("7d", NOW - 7 * 86_400),
        ("2h", NOW - 7200),
        ("1h30m", NOW - 5400),
        ("now-2h", NOW - 7200),
        ("now-90", NOW - 90),
        (" 2h ", NOW - 7200),
    ],
)
def test_parse_time(value: str, expected: float) -> None:
    assert parse_time(value, now=NOW) == expected


def test_parse_time_agrees_with_datetime() -> None:
    text = "2024-02-29T23:59:59.250+05:45"
    assert parse_time(text) == datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("yesterday", "invalid time"),
        ("2026-11-20T10:00:00", "no time zone"),
        ("2026-02-30T00:00:00Z", "day is out of range"),
        ("2026-13-01T00:00:00Z", "month must be in"),
        ("2026-11-20T25:00:00Z", "hour must be in"),
        ("2026-11-20T10:00:61Z", "second"),
        ("2026-11-20T10:00:00+24:00", "offset"),
        ("2026-11-20T10:00:00+0200", "invalid time"),
        ("0000-01-01T00:00:00Z", "year"),
        ("1732100000000", "too far in the future"),
        ("-5", "invalid time"),
        ("-2h", "invalid time"),
        ("now-", "invalid time"),
        ("now-5x", "invalid duration"),
        ("now+2h", "invalid time"),
        ("5x", "invalid time"),
        ("99999999d", "too long"),
        ("now-200000w", "outside the years"),
        ("2026W47", "invalid time"),
        ("<script>", "invalid time"),
        ("2026-11-20T10:00:00Z\n2026", "invalid time"),
        ("1" * 10_000, "too far|outside"),
    ],
)
def test_parse_time_rejects(value: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        parse_time(value, now=NOW)
    assert info.value.hint
    assert len(str(info.value)) < 200


def test_milliseconds_hint() -> None:
    with pytest.raises(InputError) as info:
        parse_time("1732100000000")
    assert info.value.hint is not None
    assert "milliseconds" in info.value.hint


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (NOW, "2026-11-20T10:00:00Z"),
        (NOW + 0.5, "2026-11-20T10:00:00.500Z"),
        (NOW + 0.0004, "2026-11-20T10:00:00Z"),
        (NOW + 0.9996, "2026-11-20T10:00:01Z"),
        (0.0, "1970-01-01T00:00:00Z"),
        (-0.5, "1969-12-31T23:59:59.500Z"),
        (-62_135_596_800.0, "0001-01-01T00:00:00Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59Z"),
    ],
)
def test_format_time(t: float, text: str) -> None:
    assert format_time(t) == text


@pytest.mark.parametrize("t", [float("nan"), float("inf"), -1e300, 1e300, 253_402_300_800.0])
def test_format_time_rejects_impossible_times(t: float) -> None:
    with pytest.raises(InputError):
        format_time(t)


_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999


@given(st.integers(min_value=_MIN_MS, max_value=_MAX_MS))
def test_time_round_trip_milliseconds(ms: int) -> None:
    t = ms / 1000
    assert parse_time(format_time(t)) == t


@given(st.integers(min_value=_MIN_MS // 1000, max_value=_MAX_MS // 1000))
def test_time_round_trip_whole_seconds(seconds: int) -> None:
    text = format_time(float(seconds))
    assert text.endswith("Z")
    assert "." not in text
    assert parse_time(text) == seconds
    assert format_time(parse_time(text)) == text


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_format_time_matches_datetime(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    text = format_time(parse_time(moment.isoformat()))
    assert datetime.fromisoformat(text) == moment


@given(st.text(max_size=60))
def test_parsers_raise_only_input_errors(value: str) -> None:
    for parser in (parse_duration, parse_time):
        try:
            result = parser(value)
        except InputError:
            continue
        assert result == result  # not NaN


def test_now_is_the_clock() -> None:
    before = time.time()
    current = now()
    assert before <= current <= time.time()
    assert abs(parse_time("now") - current) < 60
