"""The benchmark's methods against a real Prometheus holding a small generated fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.agree import against_truth, agree
from bench.naive import naive_spans
from bench.runner import SCRAPE_INTERVAL
from bench.sync_bench import PROMETHEUS_ARGS, run_method
from bench.tsdb import BUILD_INFO, BenchFleet, bench_config, build_tsdb
from imagetrail.service.sync import collect, merge_in_memory
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource
from servers import Server, start_prometheus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> BenchFleet:
    cache = tmp_path_factory.mktemp("tsdb-cache")
    built = build_tsdb(bench_config(60, days=2), cache_root=cache, log=lambda _: None)
    assert built.build_seconds is not None
    assert (built.tsdb / BUILD_INFO).is_file()
    again = build_tsdb(bench_config(60, days=2), cache_root=cache, log=lambda _: None)
    assert again.build_seconds is None  # from the cache
    assert again.tsdb == built.tsdb
    return built


@pytest.fixture(scope="module")
def prometheus(small_fleet: BenchFleet) -> Iterator[Server]:
    server = start_prometheus(small_fleet.tsdb, extra_args=PROMETHEUS_ARGS)
    try:
        yield server
    finally:
        server.stop()


def test_naive_ways_and_imagetrail_find_the_same_true_spans(
    small_fleet: BenchFleet, prometheus: Server
) -> None:
    bf = small_fleet
    with PromClient(PromConfig(url=prometheus.url)) as client:
        source = PrometheusSource(client, resolution=SCRAPE_INTERVAL)
        ours = merge_in_memory(collect(source, "ksm", bf.start, bf.end, chunk=86400.0))
        stamp = naive_spans(client, bf.start, bf.end, chunk=4 * 3600.0, variant="stamp")
        grid = naive_spans(client, bf.start, bf.end, chunk=4 * 3600.0, variant="grid")
    assert len(ours) > 100
    exact = agree(ours, stamp.spans, tolerance=SCRAPE_INTERVAL)
    assert exact.same, exact.examples
    assert max(exact.max_first_diff, exact.max_last_diff) < 1.0  # both exact to the sample
    late = agree(ours, grid.spans, tolerance=SCRAPE_INTERVAL)
    assert late.same, late.examples
    assert stamp.points > 10 * len(ours)  # dense: about one point per container and step
    truth = against_truth(stamp.spans, bf.fleet, bf.start, bf.end, tolerance=SCRAPE_INTERVAL)
    assert truth.ok, truth


def test_runner_child_reports_counters_memory_and_spans(
    small_fleet: BenchFleet, prometheus: Server, tmp_path: Path
) -> None:
    bf = small_fleet
    run = run_method("imagetrail", prometheus.url, bf.start, bf.end, tmp_path)
    assert run.requests is not None
    assert run.requests > 10
    assert run.bytes_received is not None
    assert run.bytes_received > 10_000
    assert sum(row["bytes"] for row in run.extra["by_query"].values()) == run.bytes_received
    assert 20 < run.peak_rss_mib < 1000
    cli = run_method("cli", prometheus.url, bf.start, bf.end, tmp_path)
    assert agree(run.spans, cli.spans, tolerance=SCRAPE_INTERVAL).same
    assert not list(tmp_path.glob("*.json"))  # the child's output is consumed
