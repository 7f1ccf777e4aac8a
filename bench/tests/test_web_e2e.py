"""The whole web benchmark on a tiny fleet: real Prometheus, real web server, real Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.web_bench import WebConfig, run
from bench.web_browser import available

pytestmark = pytest.mark.slow


def test_the_web_benchmark_measures_every_figure_and_writes_them(tmp_path: Path) -> None:
    cfg = WebConfig(
        compare_containers=60,
        compare_days=1,
        big_containers=90,
        big_days=2,
        rounds=2,
        big_rounds=2,
        browser_loads=1,
        load_clients=4,
        load_seconds=2.0,
        browser=available(),
    )
    lines: list[str] = []
    report = run(cfg, results=tmp_path / "results", log=lines.append, tsdb_cache=tmp_path / "c")
    assert json.loads((tmp_path / "results" / "web.json").read_text()) == report
    assert "| **all** |" in (tmp_path / "results" / "web.md").read_text()

    c = report["ledger_vs_panel"]
    measured = cfg.rounds * len(c["mix"])
    assert c["ledger_api"]["n"] == c["panel"]["n"] == measured
    # the server's own histogram saw exactly the measured heatmap requests
    assert c["ledger_api_app_measured"]["n"] == measured
    assert c["ratio_p50"] is not None
    assert c["ratio_p50"] > 0
    assert 'container_cpu_usage_seconds_total{image!=""}' in c["panel_query_example"]
    pics = c["pictures_full_range"]
    assert pics["ledger"]["columns"] == pics["panel"]["columns"] > 10
    assert pics["ledger"]["median_column_total"] > 0
    # the panel counts pod sandboxes (pause) too; the ledger's page default hides them
    assert pics["panel"]["median_column_total"] >= pics["ledger"]["median_column_total"]

    m = report["month"]
    assert m["heatmap"]["n"] == cfg.big_rounds * len(m["mix"])
    assert m["ledger"]["spans"] > 100
    assert m["load"]["errors"] == 0, m["load"]["error_examples"]
    assert set(m["load"]["by_kind"]) == {"page /", "heatmap", "versions", "changes", "workloads"}
    assert m["profile_full_range"]["top_cumulative"]
    tc = m["transport_check"]
    assert tc["as_shipped"]["healthz"]["n"] == tc["ipproto_tcp_listener"]["healthz"]["n"] > 0

    assert set(report["targets"]) == {"ledger_vs_panel", "month_p99", "load_errors"}
    if cfg.browser:
        for b in (c["browser"], m["browser"]):
            assert b["measured"]
            assert b["runs"][0]["heatmap_api"] is not None
            assert 0 < b["runs"][0]["heatmap_api"]["end_ms"] <= b["drawn_ms_median"]
            assert b["runs"][0]["y_ticks"] > 0
