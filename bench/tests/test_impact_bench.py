"""The impact benchmark end to end, one round: real Prometheus, the orders scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.impact_bench import run

pytestmark = pytest.mark.slow


def test_the_impact_benchmark_measures_and_writes_its_figures(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run(1, results=tmp_path, log=lines.append)
    assert json.loads((tmp_path / "impact.json").read_text()) == report
    assert "Ratio cold / recorded" in (tmp_path / "impact.md").read_text()
    assert report["changes"] == 7
    assert sorted(report["verdicts"]) == sorted(
        ["no-change"] * 4 + ["regression", "improvement", "insufficient-data"]
    )
    # cold: 14 queries for each of the 7 (finished) changes (6 signals and the pod events,
    # before and after); recorded: only the late one,
    # whose after-window runs into the end of the data, is asked again
    assert report["cold"]["prometheus_queries"] == 98
    assert report["recorded"]["prometheus_queries"] == 14
    assert report["ratio_cold_over_recorded_p50"] > 0
    assert len(lines) == 1
