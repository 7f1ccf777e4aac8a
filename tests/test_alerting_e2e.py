"""End to end: real Prometheus scrapes a running ``imagetrail serve`` on the demo fleet,
evaluates ``imagetrail rules`` and sends to a real Alertmanager; the generated dashboards'
queries all return data from that Prometheus.

The demo ledger gets one extra, hand-made event at its end — a canary of
prod-eu/shop/checkout that started two hours before the end of the data and never finished —
because the simulated fleet ends with every rollout complete, and a stuck rollout is what the
first rule is for. The simulated kube-state-metrics and cAdvisor series of the last hours are
backfilled into the same Prometheus, for the dashboards' panels that read them. A second
``imagetrail serve --prometheus`` (syncing from that Prometheus into a ledger of its own) is
scraped too, so that the sync-health panels have their metrics: the demo serves a finished
ledger and runs no sync.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagetrail.service.demo import DEMO_SYNC_KEY, build_demo_ledger
from imagetrail.service.sync import rederive_changes
from imagetrail.sim import SimConfig, simulate, write_openmetrics
from servers import Server, backfill_prometheus_tsdb, start_alertmanager, start_prometheus
from test_web_serve import BIN, Served

pytestmark = pytest.mark.slow
HOUR, DAY = 3600.0, 86400.0
CANARY = "ghcr.io/acme/checkout:5.3.0"
CANARY_DIGEST = "sha256:" + "5" * 64
# Thresholds low enough for a 14-day demo fleet to trip every rule within a test's minutes.
THRESHOLDS = {
    "IMAGETRAIL_ALERT_RECENT_WINDOW": "30d",
    "IMAGETRAIL_ALERT_IMAGE_MAX_AGE": "10d",
    "IMAGETRAIL_ALERT_ROLLOUT_STUCK_AFTER": "10s",
    "IMAGETRAIL_ALERT_DRIFT_AFTER": "10s",
    "IMAGETRAIL_ALERT_CHURN_CHANGES": "2",
    "IMAGETRAIL_CHURN_WINDOW": "30d",
}


@dataclass(frozen=True)
class Stack:
    serve: Served
    syncing: Served
    prometheus: Server
    alertmanager: Server
    end: float


def _with_stuck_canary(path: Path) -> float:
    ledger, end = build_demo_ledger(path)
    try:
        (base,) = ledger.spans(
            workload="prod-eu/shop/Deployment/checkout",
            container="checkout",
            start=end - 60,
            end=end,
        )[:1]
        canary = replace(
            base,
            pod="checkout-7d9f8c6b5-canry",
            pod_uid="canary-uid",
            image=CANARY,
            digest=CANARY_DIGEST,
            first_seen=end - 2 * HOUR,
            last_seen=end,
        )
        ledger.merge_spans(
            [canary], sync_key=DEMO_SYNC_KEY, synced_from=end - 14 * DAY, synced_until=end
        )
        rederive_changes(ledger, tolerance=60)
    finally:
        ledger.close()
    return end


def _backfill(tmp: Path, end: float) -> Path:
    fleet = simulate(SimConfig(seed=7, start=end - 14 * DAY, days=14))
    files = write_openmetrics(
        fleet, tmp / "om", signals=("ksm", "cadvisor"), start=end - 3 * HOUR, end=end
    )
    backfill_prometheus_tsdb(files, tmp / "tsdb")
    return tmp / "tsdb"


def _hostport(url: str) -> str:
    return url.split("://", 1)[1].strip("/")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("alerting")
    end = _with_stuck_canary(tmp / "demo.db")
    rules = tmp / "rules.yml"
    env = {"PATH": "/usr/bin:/bin", **THRESHOLDS}
    subprocess.run(
        [BIN, "rules", "--format", "prometheus", "--output", str(rules)],
        check=True,
        env=env,
        cwd=tmp,
        capture_output=True,
    )
    tsdb = _backfill(tmp, end)
    serve = Served(["serve", "--ledger", str(tmp / "demo.db"), "--port", "0"], tmp, env=THRESHOLDS)
    alertmanager = start_alertmanager()
    # Prometheus' port is known only once it runs; the syncing serve is started after it and
    # found by the file service discovery below.
    targets = tmp / "targets.json"
    targets.write_text("[]")
    config = f"""
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files: ['{rules}']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{_hostport(alertmanager.url)}']
scrape_configs:
  - job_name: imagetrail
    honor_labels: true
    static_configs:
      - targets: ['{_hostport(serve.url)}']
  - job_name: imagetrail-syncing
    honor_labels: true
    file_sd_configs:
      - files: ['{targets}']
        refresh_interval: 1s
"""
    prometheus = start_prometheus(tsdb, config_yaml=config)
    syncing_dir = tmp / "syncing"
    syncing_dir.mkdir()
    syncing = Served(
        ["serve", "--prometheus", prometheus.url, "--ledger", "s.db", "--port", "0"],
        syncing_dir,
        env={**THRESHOLDS, "IMAGETRAIL_FOLLOW_INTERVAL": "5s"},
    )
    targets.write_text(f'[{{"targets": ["{_hostport(syncing.url)}"]}}]')
    try:
        yield Stack(serve, syncing, prometheus, alertmanager, end)
    finally:
        syncing.stop()
        prometheus.stop()
        alertmanager.stop()
        serve.stop()


def _alerts(alertmanager: Server) -> list[dict[str, Any]]:
    response = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=10)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


EXPECTED = {
    # alert name -> labels every firing instance of it must include
    "ImagetrailRolloutStuck": {"cluster": "prod-eu", "namespace": "shop", "workload": "checkout"},
    "ImagetrailVersionDrift": {"namespace": "shop", "workload": "checkout"},
    "ImagetrailLatestTag": {"namespace": "shop", "workload": "search"},
    "ImagetrailRollback": {"cluster": "prod-eu", "namespace": "shop", "workload": "cart"},
    "ImagetrailTagRepushed": {"namespace": "payments", "workload": "ledger-worker"},
    "ImagetrailImageNotUpdated": {},
    "ImagetrailVersionChurn": {},
}


def test_alertmanager_receives_every_expected_alert(stack: Stack) -> None:
    deadline = time.monotonic() + 180
    names: set[str] = set()
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        alerts = _alerts(stack.alertmanager)
        names = {a["labels"]["alertname"] for a in alerts}
        if set(EXPECTED) <= names:
            break
        time.sleep(2)
    assert set(EXPECTED) <= names, f"missing {set(EXPECTED) - names}; got {sorted(names)}"
    for name, labels in EXPECTED.items():
        firing = [a for a in alerts if a["labels"]["alertname"] == name]
        assert any(labels.items() <= a["labels"].items() for a in firing), (name, firing)
        for alert in firing:
            assert alert["labels"]["severity"]
            assert alert["annotations"]["summary"]
            assert alert["annotations"]["description"]
            assert alert["annotations"]["runbook_url"].startswith("https://")
    # The canary is named in the stuck-rollout alert's description.
    stuck = next(a for a in alerts if a["labels"]["alertname"] == "ImagetrailRolloutStuck")
    assert "checkout" in stuck["annotations"]["description"]
    # Nothing fires that should not: the sync rules need a sync, and there is none here.
    assert not {"ImagetrailSyncFailing"} & names


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    from imagetrail.grafana import all_queries, dashboards

    # Wait until Prometheus holds scrapes of both servers' exporters.
    _wait_for_series(stack.prometheus, "imagetrail_image_info", 60)
    _wait_for_series(stack.prometheus, "imagetrail_sync_last_success_timestamp_seconds", 120)
    time.sleep(40)  # rate()/increase() panels need a few scrapes in their window
    empty = []
    checked = 0
    for name, dashboard in dashboards().items():
        for title, expr in all_queries(dashboard):
            query = _for_data_check(name, expr)
            checked += 1
            if not _range_has_data(stack.prometheus, query, stack.end):
                empty.append((name, title, query))
    assert checked >= 8
    assert not empty, empty


def _wait_for_series(prometheus: Server, metric: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": metric}).json()
        if found["data"]["result"]:
            return
        time.sleep(1)
    pytest.fail(f"Prometheus never scraped {metric}")


def _for_data_check(name: str, expr: str) -> str:
    """The query as Grafana would run it with every variable on "All" (the paste-in panel
    matches one cluster exactly, as dotdc's dashboard does)."""
    from imagetrail.grafana import PANEL_FILE, substitute_variables

    values = {"cluster": "prod-eu"} if name == PANEL_FILE else None
    return substitute_variables(expr, values, all_values=True)


def _range_has_data(prometheus: Server, query: str, data_end: float) -> bool:
    now = time.time()
    answer = httpx.get(
        f"{prometheus.url}/api/v1/query_range",
        params={"query": query, "start": data_end - 2 * HOUR, "end": now, "step": 30},
        timeout=30,
    ).json()
    assert answer["status"] == "success", (query, answer)
    return any(series["values"] for series in answer["data"]["result"])
