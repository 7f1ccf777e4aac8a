"""Load and a runaway request against the real `imagetrail serve`.

- 32 clients for 30 s walk the pages' request mix (bench/web_mix.py) on a ledger: no errors;
  requests/s and latency percentiles are recorded.
- ``GET /api/v1/changes?source=prometheus&from=0&to=99999999999`` asks a real Prometheus for
  three thousand years: the answer must be a quick 4xx naming ``live_max_range`` that sends
  no query to the source (counted by a proxy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.web_load import run_load
from bench.web_mix import load_mix
from bench.web_stats import percentile

from faultproxy import FaultProxy
from reliability.conftest import Clean, Fleet
from reliability.helpers import Served, base_env, record

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
CLIENTS = 32
SECONDS = 30.0


def test_load(fleet: Fleet, clean: Clean, clean_copy: Path, tmp_path: Path) -> None:
    spans = [dict(row) for row in clean.dump["spans"]]
    clusters = sorted({s["cluster"] for s in spans})
    namespaces = sorted({s["namespace"] for s in spans})
    with Served(["--ledger", str(clean_copy)], tmp_path, base_env(tmp_path)) as srv:
        srv.wait_ready()
        mix = load_mix(fleet.start, fleet.end, clusters=clusters, namespaces=namespaces)
        result = run_load(srv.url, mix, clients=CLIENTS, seconds=SECONDS, timeout=60)
        tracebacks = srv.log_text().count("Traceback")
    summary = result.summary()
    ms = [o.seconds * 1000 for o in result.outcomes]
    figures: dict[str, Any] = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "requests": summary["requests"],
        "requests_per_second": summary["requests_per_second"],
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "errors": summary["errors"],
        "error_examples": summary["error_examples"],
        "tracebacks_in_log": tracebacks,
        "rows": [
            {"kind": kind, **{k: v for k, v in stats.items() if k != "min_ms"}}
            for kind, stats in summary["by_kind"].items()
        ],
    }
    passed = summary["errors"] == 0 and tracebacks == 0 and summary["requests"] > 0
    record("load", f"load: {CLIENTS} clients for {SECONDS:.0f} s", figures, passed=passed)
    assert summary["errors"] == 0, summary["error_examples"]
    assert tracebacks == 0


def test_runaway_live_request(fleet: Fleet, clean: Clean, clean_copy: Path, tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        IMAGETRAIL_FOLLOW_INTERVAL="1h",
        IMAGETRAIL_REQUEST_TIMEOUT="10s",
        IMAGETRAIL_TIMEOUT="10s",
    )
    with (
        FaultProxy(fleet.url) as proxy,
        Served(["--prometheus", proxy.url, "--ledger", str(clean_copy)], tmp_path, env) as srv,
    ):
        srv.wait_ready()  # the background sync's first pass is done: its queries are counted
        time.sleep(1.0)
        before = proxy.counts()["requests"]
        began = time.monotonic()
        try:
            answer = httpx.get(
                srv.url + "/api/v1/changes",
                params={"source": "prometheus", "from": "0", "to": "99999999999"},
                timeout=180,
            )
            status: int | str = answer.status_code
            body = answer.text[:300]
        except httpx.HTTPError as exc:
            status, body = f"{type(exc).__name__}", str(exc)[:300]
        seconds = time.monotonic() - began
        time.sleep(0.5)  # queries the request left behind still arrive
        queries = proxy.counts()["requests"] - before
        tracebacks = srv.log_text().count("Traceback")
    figures = {
        "request": "GET /api/v1/changes?source=prometheus&from=0&to=99999999999",
        "status": status,
        "seconds": round(seconds, 2),
        "prometheus_requests": queries,
        "answer": body,
        "tracebacks_in_log": tracebacks,
    }
    refused = isinstance(status, int) and 400 <= status < 500 and "live_max_range" in body
    passed = refused and queries == 0 and seconds < 5 and tracebacks == 0
    record("runaway", "runaway live request", figures, passed=passed)
    assert refused, figures
    assert queries == 0, figures
    assert seconds < 5, figures
    assert tracebacks == 0
