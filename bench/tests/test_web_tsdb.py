"""The web benchmark's cAdvisor TSDB is cached apart from the sync benchmark's ksm one."""

from __future__ import annotations

from bench.tsdb import SIGNALS, bench_config, cache_key
from bench.web_bench import PANEL_SIGNALS


def test_signals_are_part_of_the_cache_key_and_the_default_key_is_unchanged() -> None:
    config = bench_config(1000)
    assert SIGNALS == ("ksm",)
    assert cache_key(config) == cache_key(config, ("ksm",))
    assert cache_key(config, PANEL_SIGNALS) != cache_key(config)
    assert cache_key(config, ("cadvisor", "ksm")) not in {
        cache_key(config),
        cache_key(config, PANEL_SIGNALS),
    }
    assert cache_key(config, PANEL_SIGNALS).startswith("bench-1000-")
