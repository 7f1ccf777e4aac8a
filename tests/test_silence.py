"""Silent clusters on replays of real kubelet/kube-state-metrics scrapes in a real Prometheus.

Four clusters replay real scrapes for four hours: ``steady`` and ``clean`` report throughout,
``stops`` (the same scrape as ``clean``) goes silent two hours before the end, ``resumes``
(the same again) is silent for two hours in the middle. Each scrape is a still, so whatever
``clean`` shows is what the others must show: any other change is a false one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from imagetrail.cli import app
from imagetrail.ledger import Ledger
from imagetrail.timeutil import format_time
from replay import write_replay
from servers import Server, backfill_prometheus_tsdb, start_prometheus
from test_web_api import Api

pytestmark = pytest.mark.slow
START = 1_762_000_000.0
MIN = 60.0
END = START + 240 * MIN
PLAN = {
    "steady": ("kind-1-22", [(0, 240)]),
    "clean": ("kind-1-31", [(0, 240)]),
    "stops": ("kind-1-31", [(0, 120)]),
    "resumes": ("kind-1-31", [(0, 60), (180, 240)]),
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("silence")
    replay = write_replay(work, start=START, minutes=240, step=60.0, clusters=PLAN)
    backfill_prometheus_tsdb([replay], work / "tsdb")
    server = start_prometheus(work / "tsdb")
    try:
        yield server
    finally:
        server.stop()


def unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(*args: str, ledger: Path) -> Any:
    result = CliRunner().invoke(
        app, list(args), env={"IMAGETRAIL_LEDGER": str(ledger), "IMAGETRAIL_SIGNAL": "ksm"}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "json" in args else result.stdout


def synced(server: Server, path: Path, until: float) -> Path:
    run(
        "sync",
        "--prometheus",
        server.url,
        "--since",
        format_time(START - 5 * MIN),
        "--until",
        format_time(until),
        ledger=path,
    )
    return path


@pytest.fixture(scope="module")
def ledger(prometheus: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synced to the end of the data: ``stops`` is silent for the last two hours."""
    return synced(prometheus, tmp_path_factory.mktemp("l1") / "ledger.db", END)


@pytest.fixture(scope="module")
def ledger_ended(prometheus: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synced to two hours after all data ended (Prometheus itself went quiet)."""
    return synced(prometheus, tmp_path_factory.mktemp("l2") / "ledger.db", END + 120 * MIN)


def versions(path: Path, cluster: str, at: float) -> dict[tuple[str, str | None], int]:
    rows = run("versions", "--cluster", cluster, "--at", format_time(at), "-f", "json", ledger=path)
    return {(r["image"], r["digest"]): r["containers"] for r in rows}


def stale(path: Path, cluster: str, at: float) -> set[bool]:
    rows = run("versions", "--cluster", cluster, "--at", format_time(at), "-f", "json", ledger=path)
    return {r["stale"] for r in rows}


@pytest.mark.parametrize("which", ["ledger", "ledger_ended"])
def test_silence_is_never_a_change(which: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(which)
    rows = run("changes", "--from", format_time(START - 5 * MIN), "-f", "json", ledger=path)
    fields = ("namespace", "workload", "container", "kind", "started", "finished", "to_image")
    by_cluster: dict[str, list[tuple[object, ...]]] = {c: [] for c in PLAN}
    for r in rows:
        by_cluster[r["cluster"]].append(tuple(r[f] for f in fields))
    # What a cluster that never went silent shows (a terminated container's one sample at the
    # start of the replay is gone for good: a real removal), and nothing else.
    assert by_cluster["stops"] == by_cluster["resumes"] == by_cluster["clean"]
    assert all(r["kind"] == "removed" and unix(r["started"]) == START for r in rows)


def test_a_silent_cluster_keeps_its_last_known_versions_marked_stale(ledger: Path) -> None:
    before = versions(ledger, "stops", START + 110 * MIN)
    assert sum(before.values()) > 10
    for minutes in (125, 180, 239, 240):
        assert versions(ledger, "stops", START + minutes * MIN) == before, minutes
        assert stale(ledger, "stops", START + minutes * MIN) == {True}, minutes
    assert stale(ledger, "stops", START + 110 * MIN) == {False}
    assert stale(ledger, "steady", END) == {False}
    # The default instant (the end of the data) answers the same.
    rows = run("versions", "--cluster", "stops", "-f", "json", ledger=ledger)
    assert {(r["image"], r["digest"]): r["containers"] for r in rows} == before
    workloads = run("workloads", "--cluster", "stops", "-f", "json", ledger=ledger)
    running = [w for w in workloads if w["containers"]]
    assert sum(w["containers"] for w in running) == sum(before.values())
    assert all(w["stale"] for w in running)


def test_data_that_resumes_continues_its_spans(ledger: Path) -> None:
    before = versions(ledger, "resumes", START + 50 * MIN)
    assert versions(ledger, "resumes", START + 120 * MIN) == before
    assert versions(ledger, "resumes", END) == before
    assert stale(ledger, "resumes", END) == {False}
    with Ledger.open(ledger, create=False) as led:
        spans = led.spans(cluster="resumes")
    assert spans
    # One span per pod container across the silence, not one on each side of it.
    assert len({s.key() for s in spans}) == len(spans)
    running = [s for s in spans if s.last_seen > START + 230 * MIN]
    assert running
    assert all(s.first_seen < START + 5 * MIN for s in running)


def test_all_data_ending_before_now_keeps_every_cluster(ledger_ended: Path) -> None:
    for cluster in PLAN:
        last = versions(
            ledger_ended, cluster, END - 5 * MIN if cluster != "stops" else 110 * MIN + START
        )
        assert last, cluster
        assert versions(ledger_ended, cluster, END + 60 * MIN) == last, cluster
        assert stale(ledger_ended, cluster, END + 60 * MIN) == {True}, cluster
    api = Api(ledger_ended)
    try:
        status = api.json("/api/v1/status")
    finally:
        api.close()
    assert {c["cluster"] for c in status["silent_clusters"]} == set(PLAN)


def test_the_exporter_keeps_a_silent_clusters_series(ledger: Path) -> None:
    api = Api(ledger)
    try:
        text = api.get("/metrics").text
        status = api.json("/api/v1/status")
        rows = api.json("/api/v1/versions", cluster="stops")
    finally:
        api.close()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    info = {
        (labels["image"], labels["digest"] or None)
        for labels, _ in samples["imagetrail_image_info"]
        if labels["cluster"] == "stops"
    }
    assert info == {(r["image"], r["digest"]) for r in rows}
    ends = {
        labels["cluster"]: value
        for labels, value in samples["imagetrail_cluster_last_data_timestamp_seconds"]
    }
    assert set(ends) == set(PLAN)
    assert abs(ends["stops"] - (START + 120 * MIN)) <= 60
    assert abs(ends["steady"] - END) <= 60
    [silent] = status["silent_clusters"]
    assert silent["cluster"] == "stops"
    assert not silent["gone"]
    assert abs(silent["silent_for_seconds"] - 120 * MIN) <= 60


def test_the_heatmap_keeps_a_silent_cluster_in_its_last_columns(ledger: Path) -> None:
    last = versions(ledger, "stops", START + 110 * MIN)
    # Without pod sandboxes, as both the CLI and the page count them by image.
    by_image: dict[str, int] = {}
    for (image, _), n in last.items():
        by_image[image] = by_image.get(image, 0) + n
    window = ("--from", format_time(START + 60 * MIN), "--to", format_time(END))
    cli = run(
        "heatmap", "--cluster", "stops", *window, "--step", "30m", "-f", "json", ledger=ledger
    )
    api = Api(ledger)
    try:
        page = api.json(
            "/api/v1/heatmap",
            cluster="stops",
            **{"from": format_time(START + 60 * MIN), "to": format_time(END)},
            step="30m",
            sandbox="true",
        )
    finally:
        api.close()
    for answer in (cli, page):
        column = {img: row[-1] for img, row in zip(answer["images"], answer["counts"], strict=True)}
        assert {img: n for img, n in column.items() if n} == by_image
        # Every column after the silence holds the same last known counts.
        assert all(len(set(row[2:])) == 1 for row in answer["counts"])


def test_answers_over_a_range_never_claim_a_sighting_in_the_silence(ledger: Path) -> None:
    stopped = START + 120 * MIN
    window = ("--from", format_time(START + 60 * MIN), "--to", format_time(END))
    audit = run("audit", "--cluster", "stops", *window, "-f", "json", ledger=ledger)
    assert audit
    assert max(unix(r["last_seen"]) for r in audit) <= stopped + 1
    workloads = run("workloads", "--cluster", "stops", "-f", "json", ledger=ledger)
    assert max(unix(w["last_seen"]) for w in workloads) <= stopped + 1
    name = next(w for w in workloads if w["containers"])
    ref = f"stops/{name['namespace']}/{name['workload_kind']}/{name['workload']}"
    history = run("history", ref, "-f", "json", ledger=ledger)
    assert history
    assert max(unix(h["last_seen"]) for h in history) <= stopped + 1
    # The cluster that kept reporting is seen to the end.
    steady = run("audit", "--cluster", "steady", *window, "-f", "json", ledger=ledger)
    assert max(unix(r["last_seen"]) for r in steady) >= END - 60
