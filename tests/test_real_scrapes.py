"""Real kubelet and kube-state-metrics scrapes (fixtures/nri-kubernetes) replayed into a real
Prometheus: imagetrail's version distribution is right, and the original panel's pause
over-count shows beside the corrected count."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from imagetrail.cli import app
from imagetrail.imageref import is_sandbox, resolve
from imagetrail.timeutil import format_time
from replay import FIXTURES, read_scrape, write_replay
from servers import Server, backfill_prometheus_tsdb, start_prometheus

pytestmark = pytest.mark.slow
START = 1_762_000_000.0
AT = START + 20 * 60


@pytest.fixture(scope="module")
def replay_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("replay")
    backfill_prometheus_tsdb([write_replay(work, start=START)], work / "tsdb")
    server = start_prometheus(work / "tsdb")
    try:
        yield server
    finally:
        server.stop()


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text))


def _versions(url: str, cluster: str, signal: str) -> Counter[tuple[str, str | None]]:
    result = CliRunner().invoke(
        app,
        [
            "versions",
            "--source",
            "prometheus",
            "--prometheus",
            url,
            "--cluster",
            cluster,
            "--at",
            format_time(AT),
            "--format",
            "json",
        ],
        env={"IMAGETRAIL_SIGNAL": signal},
    )
    assert result.exit_code == 0, result.output
    return Counter({(r["image"], r["digest"]): r["containers"] for r in json.loads(result.stdout)})


def _panel(url: str, cluster: str) -> dict[str, int]:
    result = CliRunner().invoke(
        app,
        [
            "heatmap",
            "--exact-panel",
            "--prometheus",
            url,
            "--cluster",
            cluster,
            "--from",
            format_time(AT - 300),
            "--to",
            format_time(AT),
            "--step",
            "5m",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {image: row[-1] for image, row in zip(data["images"], data["counts"], strict=True)}


@pytest.mark.parametrize(
    ("cluster", "folder"), [("kind-1-31", "k8s_1_31"), ("kind-1-22", "k8s_1_22")]
)
def test_ksm_distribution_matches_the_scrape(
    replay_prometheus: Server, cluster: str, folder: str
) -> None:
    rows = read_scrape(FIXTURES / folder / "ksm_metrics.txt")
    # A container counts when it runs, or when it crash-loops: it started (restarts > 0) and
    # has not terminated. (kind-1-22 has a real CrashLoopBackOff container.)
    status: dict[str, set[tuple[str, str, str]]] = {}
    for name, text, value in rows:
        if name.startswith("kube_pod_container_status_") and value > 0:
            lab = _labels(text)
            status.setdefault(name, set()).add((lab["namespace"], lab["pod"], lab["container"]))
    running = status["kube_pod_container_status_running"] | (
        status.get("kube_pod_container_status_restarts_total", set())
        - status.get("kube_pod_container_status_terminated", set())
    )
    expected: Counter[tuple[str, str | None]] = Counter()
    for name, text, _ in rows:
        if name != "kube_pod_container_info":
            continue
        lab = _labels(text)
        if (lab["namespace"], lab["pod"], lab["container"]) in running:
            expected[resolve(lab["image"], lab.get("image_id", ""), lab.get("image_spec", ""))] += 1
    assert sum(expected.values()) > 10
    assert _versions(replay_prometheus.url, cluster, "ksm") == expected


@pytest.mark.parametrize(
    ("cluster", "path"),
    [
        ("kind-1-31", "k8s_1_31/kubelet_metrics_cadvisor.txt"),
        ("kind-1-22", "k8s_1_22/kubelet_metrics_cadvisor.txt"),
        ("minikube-1-15", "legacy/k8s_v1_15_kubelet_metrics_cadvisor.txt"),
    ],
)
def test_cadvisor_distribution_and_the_panels_pause_over_count(
    replay_prometheus: Server, cluster: str, path: str
) -> None:
    containers: dict[tuple[str, str, str], str] = {}
    sandboxes: set[tuple[str, str]] = set()
    for name, text, _ in read_scrape(FIXTURES / path):
        if name != "container_cpu_usage_seconds_total":
            continue
        lab = _labels(text)
        pod, container = (
            lab.get("pod") or lab.get("pod_name", ""),
            lab.get("container") or lab.get("container_name", ""),
        )
        image = lab.get("image", "")
        if not image:
            continue
        if container in ("", "POD") or is_sandbox(image):
            sandboxes.add((lab["namespace"], pod))
        else:
            containers[(lab["namespace"], pod, container)] = image
    expected = Counter(resolve(image) for image in containers.values())
    assert _versions(replay_prometheus.url, cluster, "cadvisor") == expected

    panel = _panel(replay_prometheus.url, cluster)
    pause = {image: n for image, n in panel.items() if is_sandbox(image)}
    # The panel counts one pause container per pod: the biggest "image" on these clusters.
    assert sum(pause.values()) >= len(sandboxes) > 0
    assert max(panel, key=lambda image: panel[image]) in pause
    assert not any(
        is_sandbox(image) for image, _ in _versions(replay_prometheus.url, cluster, "cadvisor")
    )
