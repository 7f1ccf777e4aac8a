"""The cAdvisor signal and the original Grafana panel, against a real Prometheus.

`--exact-panel` must give the panel's numbers exactly (its query, taken from the real dashboard
JSON, run directly); the default view must differ from it only by what the panel gets wrong:
the pod sandbox (pause) containers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from imagetrail.cli import app
from imagetrail.imageref import is_sandbox, resolve
from imagetrail.timeutil import format_time
from paths import FIXTURES
from servers import Server, start_prometheus
from simdata import DAY, SimData, sim_data, sim_tsdb

pytestmark = pytest.mark.slow
DASHBOARD = FIXTURES / "grafana-dashboards-kubernetes" / "k8s-views-namespaces.json"
STEP = 300.0
SCRAPE = 30.0


def _panel_expr() -> str:
    def walk(panels: list[dict[str, object]]) -> Iterator[dict[str, object]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))  # type: ignore[arg-type]

    dashboard = json.loads(DASHBOARD.read_text())
    panel = next(p for p in walk(dashboard["panels"]) if p.get("title") == "Container Image Used")
    return str(panel["targets"][0]["expr"])  # type: ignore[index]


@pytest.fixture(scope="module")
def cadvisor_data() -> SimData:
    return sim_data(window=(4 * DAY, 5 * DAY), signals=("cadvisor",))


@pytest.fixture(scope="module")
def cadvisor_prometheus(cadvisor_data: SimData) -> Iterator[Server]:
    server = start_prometheus(sim_tsdb(cadvisor_data))
    try:
        yield server
    finally:
        server.stop()


def _cli_heatmap(url: str, data: SimData, *extra: str) -> dict[str, list[object]]:
    result = CliRunner().invoke(
        app,
        [
            "heatmap",
            "--prometheus",
            url,
            "--from",
            format_time(data.start + 3600),
            "--to",
            format_time(data.end - 3600),
            "--step",
            "5m",
            "--cluster",
            "prod-eu",
            "--namespace",
            "shop",
            "--format",
            "json",
            *extra,
        ],
        env={"IMAGETRAIL_SIGNAL": "cadvisor"},
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _panel_direct(url: str, data: SimData) -> dict[str, dict[float, int]]:
    """The dashboard's own expression, its variables filled in the way Grafana fills them."""
    rate_interval = max(STEP + SCRAPE, 4 * SCRAPE)
    expr = (
        _panel_expr()
        .replace("$namespace", "shop")
        .replace("${created_by}", ".*")  # the "All" value of the workload variable
        .replace("$cluster", "prod-eu")
        .replace("$__rate_interval", f"{int(rate_interval)}s")
    )
    start = math.floor((data.start + 3600) / STEP) * STEP
    response = httpx.post(
        f"{url}/api/v1/query_range",
        data={"query": expr, "start": start, "end": data.end - 3600, "step": STEP},
        timeout=60,
    )
    response.raise_for_status()
    out: dict[str, dict[float, int]] = {}
    for series in response.json()["data"]["result"]:
        out[series["metric"]["image"]] = {float(t): int(float(v)) for t, v in series["values"]}
    return out


def _by_image(heatmap: dict[str, list[object]]) -> dict[str, dict[str, int]]:
    return {
        str(image): {str(t): int(c) for t, c in zip(heatmap["times"], row, strict=True) if c}  # type: ignore[call-overload]
        for image, row in zip(heatmap["images"], heatmap["counts"], strict=True)
    }


def test_exact_panel_equals_the_dashboard_query(
    cadvisor_prometheus: Server, cadvisor_data: SimData
) -> None:
    ours = _by_image(_cli_heatmap(cadvisor_prometheus.url, cadvisor_data, "--exact-panel"))
    direct = {
        image: {format_time(t): c for t, c in points.items() if c}
        for image, points in _panel_direct(cadvisor_prometheus.url, cadvisor_data).items()
    }
    assert ours == direct
    assert any(is_sandbox(image) for image in ours), "the panel counts pause containers"


def test_default_view_drops_only_the_sandbox_over_count(
    cadvisor_prometheus: Server, cadvisor_data: SimData
) -> None:
    panel = _by_image(_cli_heatmap(cadvisor_prometheus.url, cadvisor_data, "--exact-panel"))
    ours = _by_image(_cli_heatmap(cadvisor_prometheus.url, cadvisor_data, "--source", "prometheus"))
    pause = {image: counts for image, counts in panel.items() if is_sandbox(image)}
    assert pause
    assert not any(is_sandbox(image) for image in ours)
    # Compare at instants far (> the rate window) from any container start or end: there the
    # panel and imagetrail must agree image by image once the pause rows are set aside.
    edges = [
        t
        for s in cadvisor_data.fleet.spans(include_init=True)
        if s.cluster == "prod-eu" and s.namespace == "shop"
        for t in (s.first_seen, s.last_seen)
    ]
    quiet = [
        t for t in next(iter(panel.values())) if all(abs(_ts(t) - e) > 2 * STEP for e in edges)
    ]
    assert len(quiet) > 20
    truth_spans = [
        s
        for s in cadvisor_data.fleet.spans(include_init=True)
        if s.cluster == "prod-eu" and s.namespace == "shop"
    ]
    for t in quiet:
        at = _ts(t)
        truth: dict[str, int] = {}
        for s in truth_spans:
            if s.covers(at):
                truth[s.image] = truth.get(s.image, 0) + 1
        ours_at = {image: c[t] for image, c in ours.items() if c.get(t)}
        assert ours_at == truth, t
        panel_at: dict[str, int] = {}
        for image, c in panel.items():
            if image not in pause and c.get(t):
                key = resolve(image)[0]
                panel_at[key] = panel_at.get(key, 0) + c[t]
        # The panel never sees fewer; it sees more where a crash-looping container's restarts
        # are separate cgroup series inside one rate window.
        assert set(panel_at) == set(truth)
        assert all(panel_at[k] >= truth[k] for k in truth)
        pods = {s.pod for s in truth_spans if s.covers(at)}
        # the over-count: one pause container per running pod
        assert sum(c.get(t, 0) for c in pause.values()) == len(pods)


def _ts(value: str) -> float:
    from imagetrail.timeutil import parse_time

    return parse_time(value)
