"""Percentiles, summaries and the app's request-duration histogram as the web bench reads it."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.web_stats import (
    DURATION_METRIC,
    column_totals,
    percentile,
    ratio,
    request_histograms,
    since,
    summarize,
)
from bench.web_stats import (
    Histogram as Hist,
)

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=200)


@given(samples)
def test_percentile_ends_are_min_and_max_and_the_middle_is_the_median(xs: list[float]) -> None:
    assert percentile(xs, 0) == min(xs)
    assert percentile(xs, 100) == max(xs)
    assert math.isclose(percentile(xs, 50), statistics.median(xs), rel_tol=1e-9, abs_tol=1e-6)


@given(st.lists(finite, min_size=2, max_size=200), st.integers(1, 99))
def test_percentile_is_statistics_inclusive_quantile(xs: list[float], q: int) -> None:
    # statistics.quantiles(method="inclusive") is the same linear rule as numpy's default.
    expected = statistics.quantiles(xs, n=100, method="inclusive")[q - 1]
    assert math.isclose(percentile(xs, q), expected, rel_tol=1e-9, abs_tol=1e-6)


@given(samples, st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotone_and_within_the_data(xs: list[float], a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert min(xs) <= percentile(xs, lo) <= percentile(xs, hi) <= max(xs)


@given(samples)
def test_percentile_does_not_depend_on_order(xs: list[float]) -> None:
    assert percentile(xs, 99) == percentile(list(reversed(xs)), 99)


def test_percentile_p99_of_few_samples_lies_between_the_two_largest() -> None:
    assert percentile([1.0, 2.0, 3.0, 10.0], 99) == pytest.approx(3.0 + 0.97 * 7.0)


@pytest.mark.parametrize("q", [-1.0, 100.5, math.nan])
def test_percentile_rejects_bad_input(q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], q)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=50))
def test_summarize_reports_milliseconds(seconds: list[float]) -> None:
    s = summarize(seconds)
    assert s["n"] == len(seconds)
    assert s["min_ms"] <= s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["max_ms"] == pytest.approx(1000 * max(seconds), abs=0.01)
    assert summarize([]) == {"n": 0}


def test_ratio() -> None:
    assert ratio(250.0, 10.0) == 25.0
    assert ratio(1.0, 3.0) == 0.3
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None


def _exposition(observations: dict[str, list[float]]) -> str:
    registry = CollectorRegistry()
    h = Histogram(
        DURATION_METRIC,
        "Time to answer.",
        ["route", "method"],
        buckets=(0.01, 0.1, 1.0),
        registry=registry,
    )
    for route, values in observations.items():
        for v in values:
            h.labels(route, "GET").observe(v)
    return generate_latest(registry).decode()


def test_request_histograms_read_the_apps_metric_by_route() -> None:
    text = _exposition({"/api/v1/heatmap": [0.005, 0.05, 0.05, 0.5], "/": [0.001]})
    hists = request_histograms(text + "# HELP other_total x\n# TYPE other_total counter\n")
    assert set(hists) == {"/api/v1/heatmap", "/"}
    hm = hists["/api/v1/heatmap"]
    assert hm.count == 4
    assert hm.sum == pytest.approx(0.605)
    assert hm.buckets == ((0.01, 1.0), (0.1, 3.0), (1.0, 4.0), (math.inf, 4.0))
    # rank 2 of 4 lies in (0.01, 0.1], one of its two observations in: halfway
    assert hm.quantile(0.5) == pytest.approx(0.055)
    assert hm.summary()["n"] == 4
    assert hm.summary()["mean_ms"] == pytest.approx(151.25)


def test_histogram_difference_counts_only_what_came_after() -> None:
    before = request_histograms(_exposition({"/x": [0.5, 0.5]}))
    after = request_histograms(_exposition({"/x": [0.5, 0.5, 0.005], "/y": [0.05]}))
    delta = since(after, before)
    assert delta["/x"].count == 1
    assert delta["/x"].quantile(0.99) is not None
    assert delta["/x"].quantile(0.99) <= 0.01  # type: ignore[operator]
    assert delta["/y"].count == 1
    assert Hist(((1.0, 0.0), (math.inf, 0.0)), 0.0, 0.0).quantile(0.5) is None
    with pytest.raises(ValueError, match="buckets"):
        delta["/x"].minus(Hist(((5.0, 0.0),), 0.0, 0.0))


def test_histogram_quantile_in_the_inf_bucket_is_the_largest_bound() -> None:
    h = request_histograms(_exposition({"/slow": [3.0, 4.0]}))["/slow"]
    assert h.quantile(0.99) == 1.0


@given(st.lists(st.lists(st.integers(0, 50), min_size=5, max_size=5), max_size=20))
def test_column_totals_sum_rows(rows: list[list[int]]) -> None:
    totals = column_totals(rows, 5)
    assert sum(totals) == sum(map(sum, rows))
    assert all(t == sum(r[i] for r in rows) for i, t in enumerate(totals))


def test_column_totals_refuse_ragged_rows() -> None:
    with pytest.raises(ValueError, match="columns"):
        column_totals([[1, 2], [1]], 2)
