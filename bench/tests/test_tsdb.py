"""Sizing of the backfill files and the cache key."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bench.tsdb import (
    HOUR,
    MAX_SAMPLES_PER_FILE,
    SERIES_PER_CONTAINER,
    bench_config,
    cache_key,
    file_hours,
    windows,
)


@given(st.integers(1, 20_000))
def test_file_hours_divide_a_day_and_bound_promtool_memory(containers: int) -> None:
    config = bench_config(containers)
    hours = file_hours(config)
    assert 24 % hours == 0
    per_file = containers * SERIES_PER_CONTAINER * hours * HOUR / config.scrape_interval
    assert hours == 1 or per_file <= MAX_SAMPLES_PER_FILE


@given(
    st.integers(0, 10**6).map(lambda k: k * 900.0),
    st.integers(1, 10**6).map(float),
    st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24]),
)
def test_windows_tile_the_range_at_aligned_cuts(start: float, length: float, hours: int) -> None:
    pieces = windows(start, start + length, hours)
    assert pieces[0][0] == start
    assert pieces[-1][1] == start + length
    for (_, b), (a, _) in itertools.pairwise(pieces):
        assert a == b
        assert a % (hours * HOUR) == 0
    assert all(a < b <= a + hours * HOUR for a, b in pieces)


def test_cache_key_changes_with_the_fleet() -> None:
    config = bench_config(250)
    assert cache_key(config) == cache_key(bench_config(250))
    assert cache_key(config) != cache_key(bench_config(251))
    assert cache_key(config) != cache_key(replace(config, seed=8))
    assert cache_key(config).startswith("bench-250-")
