"""The ``imagetrail_*`` exporter metrics: what runs at the end of the data, read back parsed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.sync import rederive_changes
from test_web_api import HOSTILE, Api

HOUR = 3600.0
W = ("cluster", "namespace", "workload_kind", "workload", "container")
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(api: Api) -> Samples:
    out: Samples = {}
    text = api.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def workload_of(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels[k] for k in W)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("exp") / "demo.db"
    build_demo_ledger(path)[0].close()
    api = Api(path)
    yield api
    api.close()


def test_series_cover_exactly_the_running_workload_containers(demo: Api) -> None:
    samples = scrape(demo)
    running = {
        (w["cluster"], w["namespace"], w["workload_kind"], w["workload"], w["container"])
        for w in demo.json("/api/v1/workloads")
        if w["images"]
    }
    assert running
    for name in ("imagetrail_workload_versions", "imagetrail_workload_containers"):
        assert {workload_of(labels) for labels, _ in samples[name]} == running, name
    info = samples["imagetrail_image_info"]
    assert {workload_of(labels) for labels, _ in info} == running
    assert {v for _, v in info} == {1.0}
    # The removed workload of the demo fleet has no series at all.
    every = {
        workload_of(labels)
        for rows in samples.values()
        for labels, _ in rows
        if "workload" in labels
    }
    assert every == running


def test_info_labels_versions_and_tags(demo: Api) -> None:
    samples = scrape(demo)
    versions = demo.json("/api/v1/versions")
    want = {(row["image"], row["digest"] or "") for row in versions}
    got = {(labels["image"], labels["digest"]) for labels, _ in samples["imagetrail_image_info"]}
    assert got == want
    by_image = {labels["image"]: labels["tag"] for labels, _ in samples["imagetrail_image_info"]}
    assert by_image["registry.internal:5000/shop/search:latest"] == "latest"
    assert by_image["docker.io/bitnami/kafka:3.8.1"] == "3.8.1"
    counts = {
        workload_of(labels): value for labels, value in samples["imagetrail_workload_containers"]
    }
    assert sum(counts.values()) == sum(row["containers"] for row in versions)


def test_change_record_and_repushed_tags(demo: Api) -> None:
    samples = scrape(demo)
    changes = demo.json("/api/v1/changes", since="30d")
    newest: dict[tuple[str, ...], float] = {}
    for c in changes:
        key = (*(c[k] for k in W), c["kind"])
        newest[key] = max(newest.get(key, 0.0), _unix(c["started"]))
    last = {
        (*workload_of(labels), labels["kind"]): value
        for labels, value in samples["imagetrail_last_change_timestamp_seconds"]
    }
    running = {workload_of(labels) for labels, _ in samples["imagetrail_image_info"]}
    assert last == {k: v for k, v in newest.items() if k[:5] in running}
    assert any(k[5] == "rollback" for k in last)
    repushed = [labels for labels, value in samples["imagetrail_tag_digests"] if value > 1]
    assert [lab["image"] for lab in repushed] == [
        "registry.internal:5000/payments/ledger:2.1"
    ] * len(repushed)
    assert repushed


def test_ages_count_from_the_current_run(tmp_path: Path) -> None:
    t0 = 1_790_000_000.0
    end = t0 + 10 * HOUR
    base = Span("c", "ns", "Deployment", "web", "web-1", "app", "nginx:1.0", None, t0, t0 + HOUR)
    spans = [
        base,
        # upgrade to 1.1, back to 1.0 (a rollback): 1.0's current run starts at its return
        replace(
            base, pod="web-2", image="nginx:1.1", first_seen=t0 + HOUR, last_seen=t0 + 3 * HOUR
        ),
        replace(base, pod="web-3", first_seen=t0 + 3 * HOUR, last_seen=end),
        # a stuck rollout: 1.2 started an hour before the end and 1.0 still runs
        replace(base, pod="web-4", image="nginx:1.2", first_seen=end - HOUR, last_seen=end),
        # a workload that stopped before the end: no series
        replace(base, workload="gone", pod="gone-1", first_seen=t0, last_seen=t0 + HOUR),
    ]
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        ledger.merge_spans(spans, sync_key="t|x|", synced_from=t0, synced_until=end)
        rederive_changes(ledger, tolerance=60)
    api = Api(path)
    try:
        samples = scrape(api)
    finally:
        api.close()
    key = ("c", "ns", "Deployment", "web", "app")
    first = {
        labels["image"]: value
        for labels, value in samples["imagetrail_running_image_first_seen_timestamp_seconds"]
    }
    assert first == {"nginx:1.0": t0 + 3 * HOUR, "nginx:1.2": end - HOUR}
    ages = {labels["image"]: v for labels, v in samples["imagetrail_running_image_age_seconds"]}
    lag = samples["imagetrail_ledger_lag_seconds"][0][1]
    assert ages["nginx:1.2"] == pytest.approx(HOUR + lag, abs=5)
    assert samples["imagetrail_workload_versions"] == [(dict(zip(W, key, strict=True)), 2.0)]
    assert samples["imagetrail_rollout_in_progress"][0][1] == 1.0
    kinds = {labels["kind"] for labels, _ in samples["imagetrail_last_change_timestamp_seconds"]}
    assert "rollback" in kinds
    assert {workload_of(labels) for labels, _ in samples["imagetrail_image_info"]} == {key}
    assert samples["imagetrail_ledger_spans"] == [({}, 5.0)]


def test_hostile_values_survive_the_exposition_format(tmp_path: Path) -> None:
    t0 = 1_790_000_000.0
    span = Span(
        'c"1',
        "ns",
        "Deployment",
        f"web{HOSTILE}",
        "p",
        "app\\x",
        f"registry.example.com/app:{HOSTILE}",
        None,
        t0,
        t0 + HOUR,
    )
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        ledger.merge_spans([span], sync_key="t|x|", synced_from=t0, synced_until=t0 + HOUR)
    api = Api(path)
    try:
        samples = scrape(api)
    finally:
        api.close()
    ((labels, _),) = samples["imagetrail_image_info"]
    assert labels["workload"] == f"web{HOSTILE}"
    assert labels["cluster"] == 'c"1'
    assert labels["container"] == "app\\x"
    assert labels["image"] == f"registry.example.com/app:{HOSTILE}"


def test_an_empty_ledger_still_answers_metrics(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "e.db").close()
    api = Api(tmp_path / "e.db")
    try:
        response = api.get("/metrics")
    finally:
        api.close()
    assert response.status_code == 200
    assert "process_cpu_seconds_total" in response.text
    assert "imagetrail_image_info" not in response.text


def _unix(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
