"""The load test's counting (against a mock transport) and the results it writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.web_bench import TARGET_P99_MS, TARGET_RATIO, targets
from bench.web_load import run_load
from bench.web_mix import LoadRequest
from bench.web_report import markdown, write_results
from bench.web_stats import summarize


def _handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/boom":
        raise httpx.ConnectError("refused", request=request)
    if request.url.path == "/bad":
        return httpx.Response(400, json={"error": "no"})
    return httpx.Response(200, text="x" * int(request.url.params.get("n", "1")))


def test_load_counts_requests_bytes_and_every_kind_of_error() -> None:
    mix = [
        LoadRequest("ok", "/ok", (("n", "10"),)),
        LoadRequest("bad", "/bad"),
        LoadRequest("boom", "/boom"),
    ]
    result = run_load(
        "http://bench.invalid", mix, clients=3, seconds=0.3, transport=httpx.MockTransport(_handler)
    )
    s = result.summary()
    by_kind = {k: v["n"] for k, v in s["by_kind"].items()}
    assert s["requests"] == sum(by_kind.values()) > 3
    assert s["errors"] == by_kind["bad"] + by_kind["boom"]
    assert s["bytes_received"] >= 10 * by_kind["ok"]
    assert {e["kind"] for e in s["error_examples"]} <= {"bad", "boom"}
    assert any(e["status"] is None and "ConnectError" in e["error"] for e in s["error_examples"])
    # elapsed_seconds is rounded to 10 ms; requests/s is computed before rounding
    lo = s["requests"] / (s["elapsed_seconds"] + 0.005)
    hi = s["requests"] / (s["elapsed_seconds"] - 0.005)
    assert lo - 0.01 <= s["requests_per_second"] <= hi + 0.01
    assert s["elapsed_seconds"] >= 0.3


def test_load_without_errors_says_zero() -> None:
    ok = [LoadRequest("ok", "/ok")]
    s = run_load(
        "http://bench.invalid", ok, clients=2, seconds=0.1, transport=httpx.MockTransport(_handler)
    ).summary()
    assert s["errors"] == 0
    assert s["error_examples"] == []
    with pytest.raises(ValueError, match="client"):
        run_load("http://bench.invalid", ok, clients=0, seconds=1.0)


def _report(ledger_ms: list[float], panel_ms: list[float], month_ms: list[float]) -> dict[str, Any]:
    api = summarize([x / 1000 for x in ledger_ms])
    pan = summarize([x / 1000 for x in panel_ms])
    compare = {
        "containers": 1000,
        "days": 7,
        "ledger": {"spans": 12345},
        "rounds": 2,
        "mix": [{"name": "full range"}],
        "cases": {"full range": {"ledger_api": api, "panel": pan, "ratio_p50": 3.0}},
        "ledger_api": api,
        "panel": pan,
        "ratio_p50": round(pan["p50_ms"] / api["p50_ms"], 1),
        "ratio_p99": round(pan["p99_ms"] / api["p99_ms"], 1),
        "browser": {"measured": False, "why": "no chromium"},
    }
    month_summary = summarize([x / 1000 for x in month_ms])
    load = {
        "clients": 32,
        "duration_seconds": 30.0,
        "requests": 900,
        "requests_per_second": 29.5,
        "latency": month_summary,
        "errors": 0,
    }
    month = {
        "containers": 2000,
        "days": 30,
        "ledger": {"spans": 66942},
        "rounds": 2,
        "mix": [{"name": "full range"}],
        "cases": {"full range": month_summary},
        "heatmap": month_summary,
        "load": load,
    }
    return {
        "generated": "2026-11-26T00:00:00+00:00",
        "command": "python -m bench --only web",
        "total_seconds": 12.0,
        "machine": {"cpus": 2},
        "versions": {"uvicorn": "0", "fastapi": "0", "prometheus": "prometheus 2.42"},
        "targets": targets(compare, month),
        "ledger_vs_panel": compare,
        "month": month,
    }


def test_targets_are_judged_from_the_measured_figures() -> None:
    fast = _report([10, 11, 12], [500, 600, 700], [20, 30, 40])["targets"]
    assert fast["ledger_vs_panel"]["met"]
    assert fast["ledger_vs_panel"]["ratio_min"] == TARGET_RATIO
    assert fast["month_p99"]["met"]
    assert fast["month_p99"]["p99_ms_max"] == TARGET_P99_MS
    assert fast["load_errors"]["met"]
    slow = _report([100, 110, 120], [500, 600, 700], [900, 1000, 1100])["targets"]
    assert not slow["ledger_vs_panel"]["met"]
    assert not slow["month_p99"]["met"]
    # a p50 ratio above target does not hide a p99 ratio below it
    mixed = _report([10, 10, 200], [500, 500, 500], [1, 1, 1])["targets"]["ledger_vs_panel"]
    assert mixed["ratio_p50"] >= TARGET_RATIO > mixed["ratio_p99"]
    assert not mixed["met"]
    assert targets(None, None) == {}


def test_results_are_written_as_json_and_a_markdown_table(tmp_path: Path) -> None:
    report = _report([10, 11, 12], [500, 600, 700], [900, 1000, 1100])
    js, md = write_results(report, tmp_path / "results")
    assert json.loads(js.read_text()) == report
    text = md.read_text()
    assert text == markdown(report)
    assert "| **all** |" in text
    assert "**MISSED**" in text  # the month's p99 of 1,098 ms is over 100 ms
    assert f"{report['ledger_vs_panel']['ratio_p50']}×" in text
    assert "not measured: no chromium" in text
    assert "0 errors" in text


def test_results_refuse_nan(tmp_path: Path) -> None:
    report = _report([10], [20], [30])
    report["month"]["heatmap"]["p99_ms"] = math.nan
    with pytest.raises(ValueError, match="JSON"):
        write_results(report, tmp_path)
