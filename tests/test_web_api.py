"""The JSON API through an in-process ASGI client: same answers as the CLI, errors, security.

The demo fleet's ledger is the data; every comparison is against the CLI's JSON for the same
filters (the API promises the CLI's shapes) or against values computed from the ledger.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from clirun import invoke
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.model import Span, Wait
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.shapes import CHANGE_COLUMNS
from imagetrail.service.sync import rederive_changes
from imagetrail.timeutil import format_time
from imagetrail.web import create_app

HOUR, DAY = 3600.0, 86400.0
HOSTILE = "<img src=x onerror=alert(1)>\"'\n"


class Api:
    """A synchronous face on httpx's ASGI transport (the app runs in this process)."""

    def __init__(self, path: Path, **settings: Any) -> None:
        self.path = path
        flags = {"ledger": str(path), **settings}
        self.settings = settings_mod.load(flags, environ={})
        self.ledger = Ledger.open(path, create=False)
        self.app = create_app(self.settings, self.ledger)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.get(url, **kwargs)

        return asyncio.run(call())

    def json(self, url: str, **params: Any) -> Any:
        response = self.get(url, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.ledger.close()


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    path = tmp_path_factory.mktemp("webdemo") / "demo.db"
    ledger, end = build_demo_ledger(path)
    ledger.close()
    return path, end


@pytest.fixture
def api(demo_path: tuple[Path, float]) -> Iterator[Api]:
    client = Api(demo_path[0])
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def cli_json(path: Path, *args: str) -> Any:
    return invoke([*args, "--format", "json"], {"IMAGETRAIL_LEDGER": str(path)}).json()


# -- same answers as the CLI ---------------------------------------------------------------------
def test_every_answer_equals_the_cli_json(api: Api, demo_path: tuple[Path, float]) -> None:
    path, end = demo_path
    frm, to, at = format_time(end - 3 * DAY), format_time(end - DAY), format_time(end - 2 * DAY)
    window = {"from": frm, "to": to}
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("versions", {"at": at}, ["versions", "--at", at]),
        ("changes", window, ["changes", "--from", frm, "--to", to]),
        (
            "audit",
            window | {"namespace": "shop"},
            ["audit", "--from", frm, "--to", to, "-n", "shop"],
        ),
        ("workloads", {"at": at}, ["workloads", "--at", at]),
        (
            "history",
            {"workload": "prod-eu/shop/Deployment/cart"},
            ["history", "prod-eu/shop/Deployment/cart"],
        ),
    ]
    for endpoint, params, args in cases:
        got = api.json(f"/api/v1/{endpoint}", **params)
        want = cli_json(path, *args)
        assert got, endpoint  # the demo fleet has something for every question
        if endpoint == "versions":
            assert {r.pop("at") for r in got} == {at}
        assert got == want, endpoint


def test_heatmap_equals_the_cli_and_fits_the_width(api: Api, demo_path: tuple[Path, float]) -> None:
    path, end = demo_path
    frm, to = format_time(end - 2 * DAY), format_time(end)
    got = api.json("/api/v1/heatmap", **{"from": frm, "to": to, "step": "1h"})
    want = cli_json(path, "heatmap", "--from", frm, "--to", to, "--step", "1h")
    assert {k: got[k] for k in want} == want
    assert got["step"] == HOUR
    assert got["from"] == frm
    assert got["to"] == to
    assert len(got["workloads"]) == len(got["images"]) == len(got["digests"])
    # Every row names the workloads that ran it: cross-check one against the audit.
    image = got["images"][0]
    audit = api.json("/api/v1/audit", image=image, **{"from": frm, "to": to})
    ids = {f"{a['cluster']}/{a['namespace']}/{a['workload_kind']}/{a['workload']}" for a in audit}
    assert set(got["workloads"][0]) == ids
    assert {a["image"] for a in audit} == {image}
    narrow = api.json("/api/v1/heatmap", width=300, **{"from": frm, "to": to})
    wide = api.json("/api/v1/heatmap", width=3000, **{"from": frm, "to": to})
    assert len(narrow["times"]) < len(wide["times"]) <= 3000 // 6 + 1
    assert narrow["step"] > wide["step"]


def test_heatmap_digest_rows(api: Api) -> None:
    plain = api.json("/api/v1/heatmap", since="14d")
    split = api.json("/api/v1/heatmap", since="14d", digests="true")
    assert len(split["images"]) > len(plain["images"])
    assert all("@sha256:" in row for row in split["images"])
    # The tag re-push: one tag, two digests, two rows.
    tags = [row.split("@")[0] for row in split["images"]]
    assert any(tags.count(t) > 1 for t in tags)
    assert all(len(d) == 1 for d in split["digests"])


def test_repeated_filters_mean_any_of(api: Api) -> None:
    def ids(**params: Any) -> set[str]:
        return {w for row in api.json("/api/v1/versions", **params) for w in row["workloads"]}

    eu, staging = ids(cluster="prod-eu"), ids(cluster="staging")
    both = ids(cluster=["prod-eu", "staging"])
    assert eu
    assert staging
    assert both == eu | staging
    shop, data = ids(namespace="shop"), ids(namespace="data")
    assert shop
    assert data
    assert ids(namespace=["shop", "data"]) == shop | data
    assert all(w.split("/")[1] in ("shop", "data") for w in ids(namespace=["shop", "data"]))


def test_changes_kind_filter_and_csv(api: Api) -> None:
    rollbacks = api.json("/api/v1/changes", since="14d", kind="rollback")
    assert rollbacks
    assert {c["kind"] for c in rollbacks} == {"rollback"}
    response = api.get("/api/v1/changes", params={"since": "14d", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CHANGE_COLUMNS
    assert len(rows) == len(api.json("/api/v1/changes", since="14d"))


def test_spans_are_truncated_with_a_header(api: Api) -> None:
    response = api.get("/api/v1/spans", params={"since": "14d", "limit": 3})
    assert response.status_code == 200
    assert len(response.json()) == 3
    assert "3 returned" in response.headers["x-imagetrail-truncated"]
    whole = api.json("/api/v1/spans", workload="prod-eu/shop/Deployment/cart", since="14d")
    assert whole
    assert {s["workload"] for s in whole} == {"cart"}
    assert [s["first_seen"] for s in whole] == sorted(s["first_seen"] for s in whole)


def test_status_lists_the_filter_choices(api: Api, demo_path: tuple[Path, float]) -> None:
    status = api.json("/api/v1/status")
    assert status["ready"] is True
    assert status["sync"]["enabled"] is False
    assert status["clusters"] == ["prod-eu", "prod-us", "staging"]
    assert "shop" in status["namespaces"]["prod-eu"]
    assert status["data_until"] == format_time(demo_path[1])


# -- errors: one JSON shape, the right status ------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/api/v1/heatmap?since=bogus", 400, "invalid duration"),
        ("/api/v1/heatmap?since=7d&from=2026-01-01T00:00:00Z", 400, "not both"),
        ("/api/v1/heatmap?width=abc", 400, "width"),
        ("/api/v1/heatmap?width=1", 400, "width"),
        ("/api/v1/heatmap?step=1s&since=90d", 400, "too many"),
        ("/api/v1/changes?kind=explosion", 400, "unknown change kind"),
        ("/api/v1/changes?format=xml", 400, "format"),
        ("/api/v1/history", 400, "needs a workload"),
        ("/api/v1/history?workload=nope", 400, "no workload matches"),
        ("/api/v1/versions?source=elsewhere", 400, "source"),
        ("/api/v1/versions?source=prometheus", 400, "no Prometheus URL"),
        ("/api/v1/versions?namespace=(", 400, "namespace"),
        ("/api/v1/nothing", 404, "Not Found"),
    ],
)
def test_errors_are_json_with_a_status(api: Api, url: str, status: int, needle: str) -> None:
    response = api.get(url)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "hint"}
    assert needle in body["error"]


def test_unreachable_prometheus_is_a_502(demo_path: tuple[Path, float]) -> None:
    client = Api(demo_path[0], prometheus_url="http://127.0.0.1:9", retries="0", timeout="2s")
    try:
        response = client.get("/api/v1/versions", params={"source": "prometheus"})
    finally:
        client.close()
    assert response.status_code == 502
    assert "127.0.0.1:9" in response.json()["error"]


def test_empty_ledger_is_not_ready(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "empty.db").close()
    client = Api(tmp_path / "empty.db")
    try:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "no completed sync" in ready.text
        response = client.get("/api/v1/heatmap")
        assert response.status_code == 500
        assert "is empty" in response.json()["error"]
        assert "imagetrail sync" in response.json()["hint"]
    finally:
        client.close()


# -- security ------------------------------------------------------------------------------------
def test_security_headers_on_every_kind_of_response(api: Api) -> None:
    for url in ("/", "/changes", "/api/v1/status", "/api/v1/nothing", "/docs", "/static/docs.js"):
        response = api.get(url)
        csp = response.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp)
        assert script_src, url
        assert script_src.group(1) == "'self'", url
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script(api: Api) -> None:
    for url in ("/", "/versions", "/workload", "/changes", "/docs"):
        html = api.get(url).text
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts, url
        assert all(" src=" in tag for tag in scripts), (url, scripts)
        assert not re.search(r"\son[a-z]+\s*=", html), url  # no inline event handlers
        assert "cdn" not in html.lower(), url
        assert "https://" not in html, url


def test_no_cors_by_default_and_only_named_origins(demo_path: tuple[Path, float]) -> None:
    plain = Api(demo_path[0])
    allowed = Api(demo_path[0], cors_origins="https://grafana.example.com")
    try:
        headers = {"Origin": "https://evil.example.com"}
        response = plain.get("/api/v1/status", headers=headers)
        assert "access-control-allow-origin" not in response.headers
        response = allowed.get("/api/v1/status", headers=headers)
        assert "access-control-allow-origin" not in response.headers
        good = {"Origin": "https://grafana.example.com"}
        response = allowed.get("/api/v1/status", headers=good)
        assert response.headers["access-control-allow-origin"] == "https://grafana.example.com"
    finally:
        plain.close()
        allowed.close()


def test_hostile_label_values_come_back_exact_and_inert(tmp_path: Path) -> None:
    path = tmp_path / "hostile.db"
    ledger = Ledger.open(path)
    t0 = 1_790_000_000.0
    span = Span(
        cluster="c1",
        namespace="ns",
        workload_kind="Deployment",
        workload="web<script>alert(1)</script>",
        pod=f"web-{HOSTILE}",
        container="=cmd|' /C calc'!A0",
        image=f"registry.example.com/app:{HOSTILE}",
        digest=None,
        first_seen=t0,
        last_seen=t0 + 2 * HOUR,
    )
    upgraded = replace(
        span,
        image="registry.example.com/app:2",
        pod="web-2",
        first_seen=t0 + 2 * HOUR,
        last_seen=t0 + 4 * HOUR,
    )
    ledger.merge_spans(
        [span, upgraded], sync_key="test|hostile|", synced_from=t0, synced_until=t0 + 4 * HOUR
    )
    rederive_changes(ledger, tolerance=60)
    ledger.close()
    client = Api(path)
    try:
        window = {"from": str(int(t0)), "to": str(int(t0 + 4 * HOUR))}
        spans = client.json("/api/v1/spans", **window)
        assert {s["pod"] for s in spans} == {f"web-{HOSTILE}", "web-2"}
        heat = client.json("/api/v1/heatmap", **window)
        assert f"registry.example.com/app:{HOSTILE}" in heat["images"]
        assert heat["workloads"][0] == ["c1/ns/Deployment/web<script>alert(1)</script>"]
        # JSON is served as JSON (never sniffed as HTML), and the raw text escapes nothing
        # it should not: the values are JSON strings.
        raw = client.get("/api/v1/heatmap", params=window)
        assert raw.headers["content-type"] == "application/json"
        assert json.loads(raw.text) == heat
        changes = client.get("/api/v1/changes", params={**window, "format": "csv"}).text
        assert "'=cmd|" in changes  # the spreadsheet formula guard
    finally:
        client.close()


# -- /metrics ------------------------------------------------------------------------------------
def test_metrics_count_requests_by_route_template(api: Api) -> None:
    api.get("/api/v1/heatmap", params={"since": "1d", "namespace": "shop"})
    api.get("/api/v1/heatmap", params={"since": "2d"})
    api.get("/no/such/page/at/all")
    text = api.get("/metrics").text
    assert (
        'imagetrail_http_requests_total{method="GET",route="/api/v1/heatmap",status="200"} 2.0'
        in text
    )
    assert 'route="unmatched"' in text
    assert "/no/such" not in text
    assert "imagetrail_http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


def test_openapi_names_parameters_like_the_cli(api: Api) -> None:
    spec = api.json("/openapi.json")
    heatmap = spec["paths"]["/api/v1/heatmap"]["get"]
    names = {p["name"] for p in heatmap["parameters"]}
    assert {"cluster", "namespace", "workload", "from", "to", "since", "step"} <= names
    for path in ("versions", "heatmap", "changes", "workloads", "history", "audit", "status"):
        assert f"/api/v1/{path}" in spec["paths"]
    assert api.get("/static/vendor/plotly.min.js").status_code == 200
    assert api.get("/static/vendor/swagger-ui-bundle.js").status_code == 200
    assert api.get("/static/vendor/../app.py").status_code == 404


def test_versions_and_workloads_default_to_the_same_instant(tmp_path: Path) -> None:
    """Without `at`, both describe the end of the data: a container that started in the
    last scrape interval is in both answers (it once was only in `versions`)."""
    t0, end = 1_790_000_000.0, 1_790_003_600.0
    old = Span("c", "ns", "Deployment", "web", "web-1", "app", "nginx:1.0", None, t0, end - 10)
    new = replace(old, pod="web-2", image="nginx:1.1", first_seen=end - 20, last_seen=end - 5)
    ledger = Ledger.open(tmp_path / "l.db")
    ledger.merge_spans([old, new], sync_key="test|x|", synced_from=t0, synced_until=end)
    ledger.close()
    client = Api(tmp_path / "l.db")
    try:
        versions = client.json("/api/v1/versions")
        (workload,) = client.json("/api/v1/workloads")
    finally:
        client.close()
    assert {v["image"] for v in versions} == {"nginx:1.0", "nginx:1.1"}
    assert set(workload["images"]) == {"nginx:1.0", "nginx:1.1"}
    assert workload["containers"] == 2


# -- /api/v1/waits -------------------------------------------------------------------------------
WAIT_FIELDS = {
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "pod",
    "pod_uid",
    "container",
    "image",
    "digest",
    "first_seen",
    "last_seen",
    "reason",
}


def _wait(
    cluster: str,
    namespace: str,
    workload: str,
    pod: str,
    image: str,
    first: float,
    last: float,
    reason: str,
    *,
    container: str = "app",
) -> Wait:
    return Wait(
        Span(
            cluster=cluster,
            namespace=namespace,
            workload_kind="Deployment",
            workload=workload,
            pod=pod,
            container=container,
            image=image,
            digest=None,
            first_seen=first,
            last_seen=last,
            pod_uid=f"uid-{pod}",
        ),
        reason,
    )


@pytest.fixture
def waits_api(tmp_path: Path) -> Iterator[tuple[Api, float, list[Wait]]]:
    """Two clusters: a tag that does not exist (c1/shop/web), a missing secret (c2/data/api),
    and a wait whose every label value is hostile; plus what ran beside them."""
    t0 = time.time() // 60 * 60 - 6 * HOUR
    running = [
        Span(
            "c1", "shop", "Deployment", "web", "web-1", "app", "acme/web:1", None, t0, t0 + 5 * HOUR
        ),
        Span(
            "c2", "data", "Deployment", "api", "api-1", "app", "acme/api:1", None, t0, t0 + 5 * HOUR
        ),
    ]
    waits = [
        _wait(
            "c1",
            "shop",
            "web",
            "web-2",
            "acme/web:9.9.9",
            t0 + HOUR,
            t0 + HOUR + 1500,
            "ImagePullBackOff",
        ),
        _wait(
            "c2",
            "data",
            "api",
            "api-2",
            "acme/api:2",
            t0 + 3 * HOUR,
            t0 + 3 * HOUR + 600,
            "CreateContainerConfigError",
        ),
        _wait(
            "c1",
            "shop",
            f"evil{HOSTILE}",
            f"p-{HOSTILE}",
            f"evil.example/x:{HOSTILE}",
            t0 + 2 * HOUR,
            t0 + 2 * HOUR + 300,
            f"Crash{HOSTILE}",
            container="=cmd|' /C calc'!A0",
        ),
        # Older than the default range of 7 days: only an explicit range shows it.
        _wait(
            "c1",
            "shop",
            "web",
            "web-0",
            "acme/web:0",
            t0 - 9 * DAY,
            t0 - 9 * DAY + 600,
            "ErrImagePull",
        ),
    ]
    path = tmp_path / "waits.db"
    ledger = Ledger.open(path)
    ledger.merge_spans(
        running,
        waits=waits,
        sync_key="test|waits|",
        synced_from=t0 - 9 * DAY,
        synced_until=t0 + 5 * HOUR,
    )
    ledger.close()
    client = Api(path)
    yield client, t0, waits
    client.close()


def _wait_json(w: Wait) -> dict[str, Any]:
    s = w.span
    return {
        "cluster": s.cluster,
        "namespace": s.namespace,
        "workload_kind": s.workload_kind,
        "workload": s.workload,
        "pod": s.pod,
        "pod_uid": s.pod_uid,
        "container": s.container,
        "image": s.image,
        "digest": s.digest,
        "first_seen": format_time(s.first_seen),
        "last_seen": format_time(s.last_seen),
        "reason": w.reason,
    }


def test_waits_answer_the_scope_and_range_oldest_first(
    waits_api: tuple[Api, float, list[Wait]],
) -> None:
    client, t0, waits = waits_api
    pull, config, evil, old = waits
    everything = {"from": str(int(t0 - 10 * DAY)), "to": str(int(t0 + 5 * HOUR))}
    got = client.json("/api/v1/waits", **everything)
    assert got == [_wait_json(w) for w in (old, pull, evil, config)]
    assert all(set(row) == WAIT_FIELDS for row in got)
    # Without a range: the last 7 days, as every answer.
    assert client.json("/api/v1/waits") == [_wait_json(w) for w in (pull, evil, config)]

    def pods(**params: Any) -> list[str]:
        return [row["pod"] for row in client.json("/api/v1/waits", **params)]

    assert pods(cluster="c2") == ["api-2"]
    assert pods(cluster=["c1", "c2"]) == ["web-2", evil.span.pod, "api-2"]
    assert pods(namespace="dat.") == ["api-2"]
    assert pods(namespace=["data", "sh.p"]) == ["web-2", evil.span.pod, "api-2"]
    assert pods(workload="shop/web") == ["web-2"]
    assert pods(workload="c2/data/Deployment/api") == ["api-2"]
    unknown = client.get("/api/v1/waits", params={"workload": "nothing-here"})
    assert unknown.status_code == 400, unknown.text  # an unknown name: not an empty answer
    # A range selects the waits overlapping it, whatever part of them is inside.
    assert pods(**{"from": str(int(t0 + HOUR + 1400)), "to": str(int(t0 + HOUR + 1450))}) == [
        "web-2"
    ]
    assert pods(**{"from": str(int(t0 + HOUR + 1501)), "to": str(int(t0 + 2 * HOUR - 1))}) == []
    assert pods(since="2h", to=str(int(t0 + 5 * HOUR))) == ["api-2"]


def test_waits_are_truncated_with_a_header_and_refuse_bad_input(
    waits_api: tuple[Api, float, list[Wait]],
) -> None:
    client, _, _ = waits_api
    response = client.get("/api/v1/waits", params={"limit": 2})
    assert response.status_code == 200
    assert response.headers["x-imagetrail-truncated"] == "3 waits, 2 returned"
    assert [w["reason"] for w in response.json()] == ["ImagePullBackOff", f"Crash{HOSTILE}"]
    assert "x-imagetrail-truncated" not in client.get("/api/v1/waits").headers
    for params, needle in [
        ({"since": "bogus"}, "invalid duration"),
        ({"namespace": "(("}, "regex"),
        ({"source": "prometheus"}, "ledger only"),
        ({"limit": 0}, ""),
    ]:
        response = client.get("/api/v1/waits", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert needle in response.text, (params, response.text)
    assert "/api/v1/waits" in client.json("/openapi.json")["paths"]


def test_hostile_waits_come_back_exact_as_json(waits_api: tuple[Api, float, list[Wait]]) -> None:
    client, _, waits = waits_api
    evil = waits[2]
    raw = client.get("/api/v1/waits", params={"workload": evil.span.workload})
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json"
    assert json.loads(raw.text) == [_wait_json(evil)]
    # Nothing of the markup is left unquoted by JSON, nor altered.
    (row,) = raw.json()
    assert row["reason"] == f"Crash{HOSTILE}"
    assert row["container"] == "=cmd|' /C calc'!A0"
