"""Impact, capacity and DORA against a real Prometheus holding the simulator's `orders` namespace.

The simulator scripts a bad rollout of orders-api (restarts, OOM kills, errors up) and its
rollback, good rollouts with no effect and a rollout 20 minutes before the end of the data.
Its ground truth (``Fleet.expected_impacts``, ``expected_dora``) comes from the script, not from
imagetrail's analysis; imagetrail must reach the same answers from Prometheus alone.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clirun import invoke
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.sim import expected_dora
from imagetrail.timeutil import format_time
from imagetrail.web.app import create_app
from servers import Server, start_prometheus
from simdata import SimData, impact_sim_data, sim_tsdb

pytestmark = pytest.mark.slow
TOLERANCE = 60.0  # two scrape intervals: where a span edge can land


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class World:
    data: SimData
    prometheus: Server
    ledger: Path

    def args(self, *extra: str) -> list[str]:
        return [
            *extra,
            "--from",
            format_time(self.data.start),
            "--to",
            format_time(self.data.end),
            "--ledger",
            str(self.ledger),
        ]

    def env(self) -> dict[str, str | None]:
        return {"IMAGETRAIL_PROMETHEUS_URL": self.prometheus.url}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = impact_sim_data()
    server = start_prometheus(sim_tsdb(data))
    ledger = tmp_path_factory.mktemp("impact") / "ledger.db"
    try:
        run = invoke(
            [
                "sync",
                "--prometheus",
                server.url,
                "--ledger",
                str(ledger),
                "--since",
                format_time(data.start),
                "--until",
                format_time(data.end),
            ]
        )
        assert run.code == 0, run.err
        for e in data.fleet.deploy_events:
            run = invoke(
                [
                    "deploy",
                    "record",
                    "--workload",
                    f"{e.namespace}/{e.workload}",
                    "--cluster",
                    e.cluster,
                    "--container",
                    e.container,
                    "--image",
                    e.image,
                    "--commit",
                    e.commit,
                    "--commit-time",
                    format_time(e.commit_time),
                    "--deployed-at",
                    format_time(e.deployed_at),
                    "--pipeline-url",
                    e.pipeline_url,
                    "--ledger",
                    str(ledger),
                ]
            )
            assert run.code == 0, run.err
        yield World(data, server, ledger)
    finally:
        server.stop()


def _impacts(world: World) -> list[dict[str, Any]]:
    rows = invoke(world.args("impact", "-n", "orders", "-f", "json"), env=world.env()).json()
    assert isinstance(rows, list)
    return rows


def test_impact_verdicts_match_the_script(world: World) -> None:
    rows = _impacts(world)
    expected = world.data.fleet.expected_impacts
    assert {e.verdict for e in expected} >= {"regression", "no-change", "insufficient-data"}
    for e in expected:
        matches = [
            r
            for r in rows
            if (r["workload"], r["container"], r["to_image"])
            == (e.workload, e.container, e.to_image)
            and abs(_unix(r["started"]) - e.started) <= TOLERANCE
        ]
        assert len(matches) == 1, (e, [(r["workload"], r["to_image"]) for r in rows])
        [row] = matches
        assert row["verdict"] == e.verdict, (e, row["reason"], row["signals"])


def test_the_regression_names_its_evidence(world: World) -> None:
    [bad] = [r for r in _impacts(world) if r["verdict"] == "regression"]
    assert bad["workload"] == "orders-api"
    signals = {s["name"]: s for s in bad["signals"]}
    for name in ("restarts", "oom_kills", "cpu_throttling", "alerts"):
        s = signals[name]
        assert s["verdict"] == "regression", s
        assert s["after"] > s["before"]
        assert s["p_value"] < 0.05
        assert s["effect"] >= 0.474
        assert s["blocks_before"] >= 6
        assert s["blocks_after"] >= 6
        assert len(s["after_values"]) == s["blocks_after"]
    # memory grew by about 40 %: shown, but evidence only
    assert not signals["memory"]["decides"]
    assert signals["memory"]["after"] / signals["memory"]["before"] == pytest.approx(1.4, rel=0.15)
    # rollout time excluded: the after window starts when the rollout finished
    assert _unix(bad["after"]["from"]) == _unix(bad["finished"])
    assert _unix(bad["before"]["to"]) == _unix(bad["started"])


def test_a_user_template_for_the_error_rate(world: World) -> None:
    template = (
        'sum(rate(http_requests_total{namespace="$namespace",pod=~"$pods",code="500"}[$__block]))'
        ' / sum(rate(http_requests_total{namespace="$namespace",pod=~"$pods"}[$__block]))'
    )
    queries = {
        "error_rate": template,
        "worker_errors": {"query": template, "workload": "orders/orders-worker"},
        "elsewhere": {"query": template, "namespace": "shop|payments"},
    }
    env = world.env() | {"IMAGETRAIL_IMPACT_QUERIES": json.dumps(queries)}
    rows = invoke(world.args("impact", "-n", "orders", "-f", "json"), env=env).json()
    assert isinstance(rows, list)
    # scoped queries apply only to their workload / namespaces
    for row in rows:
        names = {s["name"] for s in row["signals"]}
        assert "elsewhere" not in names
        assert ("worker_errors" in names) == (row["workload"] == "orders-worker"), row["workload"]
    rows = [r for r in rows if r["workload"] == "orders-api"]
    [bad] = [r for r in rows if r["to_image"].endswith(":1.9.0")]
    [err] = [s for s in bad["signals"] if s["name"] == "error_rate"]
    assert err["verdict"] == "regression"
    assert err["before"] == pytest.approx(0.005, rel=0.5)
    assert err["after"] == pytest.approx(0.08, rel=0.3)
    [back] = [r for r in rows if r["kind"] == "rollback"]
    [err_back] = [s for s in back["signals"] if s["name"] == "error_rate"]
    assert err_back["verdict"] == "improvement"


def test_dora_matches_the_ground_truth(world: World) -> None:
    rows = invoke(world.args("dora", "-n", "orders", "-f", "json"), env=world.env()).json()
    assert isinstance(rows, list)
    truth = [
        t
        for t in expected_dora(world.data.fleet, world.data.start, world.data.end)
        if t.namespace == "orders"
    ]
    assert truth
    assert sorted((r["workload"], r["deployments"], r["failures"]) for r in rows) == sorted(
        (t.workload, t.deployments, t.failures) for t in truth
    )
    for t in truth:
        [row] = [r for r in rows if r["workload"] == t.workload]
        assert len(row["restore_seconds"]) == len(t.restore_seconds)
        for got, want in zip(row["restore_seconds"], t.restore_seconds, strict=True):
            assert got == pytest.approx(want, abs=TOLERANCE)
        assert len(row["lead_seconds"]) == len(t.lead_seconds), t
        for got, want in zip(row["lead_seconds"], t.lead_seconds, strict=True):
            assert got == pytest.approx(want, abs=TOLERANCE)
    [api] = [r for r in rows if r["workload"] == "orders-api"]
    assert api["failures"] == 1
    assert api["change_failure_rate"] == pytest.approx(1 / api["deployments"], rel=1e-3)


def test_capacity_shows_what_the_bad_version_cost(world: World) -> None:
    rows = invoke(world.args("capacity", "orders/orders-api", "-f", "json"), env=world.env()).json()
    assert isinstance(rows, list)
    by_tag = {r["image"].rsplit(":", 1)[1]: r for r in rows}
    assert {"1.8.1", "1.9.0"} <= set(by_tag)
    good, bad = by_tag["1.8.1"], by_tag["1.9.0"]
    assert bad["memory_p50"] / good["memory_p50"] == pytest.approx(1.4, rel=0.15)
    assert bad["cpu_p50"] > good["cpu_p50"]
    assert all(r["samples"] > 0 for r in rows)
    assert all(r["cpu_p95"] >= r["cpu_p50"] for r in rows)


def test_the_api_gives_the_cli_answers(world: World) -> None:
    settings = settings_mod.load(
        {"ledger": str(world.ledger), "prometheus_url": world.prometheus.url}, environ={}
    )
    params = {"from": format_time(world.data.start), "to": format_time(world.data.end)}

    async def fetch() -> tuple[list[Any], list[Any], list[Any]]:
        with Ledger.open(world.ledger, create=False) as led:
            transport = httpx.ASGITransport(app=create_app(settings, led))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                got = [
                    (await client.get(path, params=params | extra)).json()
                    for path, extra in (
                        ("/api/v1/impact", {"namespace": "orders"}),
                        ("/api/v1/dora", {"namespace": "orders"}),
                        ("/api/v1/capacity", {"workload": "orders/orders-api"}),
                    )
                ]
        return got[0], got[1], got[2]

    impact, dora, capacity = asyncio.run(fetch())
    assert impact == _impacts(world)
    cli_dora = invoke(world.args("dora", "-n", "orders", "-f", "json"), env=world.env()).json()
    assert dora == cli_dora
    cli_capacity = invoke(
        world.args("capacity", "orders/orders-api", "-f", "json"), env=world.env()
    ).json()
    assert capacity == cli_capacity


def test_impact_without_prometheus_is_one_clear_error(world: World) -> None:
    # The rollout 20 minutes before the end has no final verdict: it needs Prometheus.
    run = invoke(world.args("impact", "-w", "orders/orders-notifier"))
    assert run.code == 2
    assert run.err.startswith("error: impact needs Prometheus")


def test_final_verdicts_outlive_prometheus(world: World, tmp_path: Path) -> None:
    ledger = tmp_path / "copy.db"
    ledger.write_bytes(world.ledger.read_bytes())
    args = ["impact", "-w", "orders/orders-api", "-f", "json", "--ledger", str(ledger)]
    args += ["--from", format_time(world.data.start), "--to", format_time(world.data.end)]
    live = invoke(args, env=world.env()).json()
    assert isinstance(live, list)
    assert [r["verdict"] for r in live] == ["no-change", "regression", "improvement"]
    # Prometheus gone (retention, outage, an archived ledger): the ledger still answers.
    for env in ({}, {"IMAGETRAIL_PROMETHEUS_URL": "http://127.0.0.1:9"}):
        assert invoke(args, env=env).json() == live
    # Other thresholds are another method: recomputed, which needs Prometheus again.
    other = invoke(args, env={"IMAGETRAIL_IMPACT_ALPHA": "0.01"})
    assert other.code == 2
    assert other.err.startswith("error: impact needs Prometheus")
    # DORA reads the same recorded verdicts (nothing to ask the dead Prometheus).
    dead = {"IMAGETRAIL_PROMETHEUS_URL": "http://127.0.0.1:9"}
    dora = invoke(["dora", "-w", "orders/orders-api", "-f", "json", *args[5:]], env=dead).json()
    assert isinstance(dora, list)
    assert [(r["deployments"], r["failures"]) for r in dora] == [(3, 1)]


def test_impact_with_prometheus_down_is_one_clear_error(world: World) -> None:
    env = {"IMAGETRAIL_PROMETHEUS_URL": "http://127.0.0.1:9", "IMAGETRAIL_RETRIES": "0"}
    run = invoke(world.args("impact", "-n", "orders"), env=env)
    assert run.code == 3, run.err
    assert run.err.startswith("error: ")
    assert "Traceback" not in run.err


def test_changes_page_shows_verdicts_and_the_before_after_chart(world: World) -> None:
    from playwright.sync_api import sync_playwright

    from browser import PageWatch, launch, new_context, open_page, screenshot, serve_ledger

    range_ = f"from={format_time(world.data.start)}&to={format_time(world.data.end)}"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = new_context(browser)
            watch = PageWatch(context.new_page())
            page = watch.page
            with serve_ledger(world.ledger, prometheus_url=world.prometheus.url) as url:
                open_page(page, f"{url}/changes?namespace=orders&{range_}")
                badges = page.locator("#changes-table button.verdict")
                badges.first.wait_for(timeout=30_000)
                verdicts = sorted(b.text_content() or "" for b in badges.all())
                assert verdicts == sorted(e.verdict for e in world.data.fleet.expected_impacts)
                page.locator("#changes-table button.verdict-regression").click()
                chart = page.locator("#impact-chart")
                chart.locator(".main-svg").first.wait_for()
                traces = page.evaluate(
                    "() => document.getElementById('impact-chart').data.map((t) => t.name)"
                )
                assert traces.count("before") == traces.count("after") >= 4
                evidence = page.locator(".impact-detail table.evidence tbody tr")
                assert "restarts" in (evidence.first.text_content() or "")
                screenshot(page, "changes-impact")

                open_page(page, f"{url}/capacity?workload=orders/orders-api&{range_}")
                rows = page.locator("#capacity-table tbody tr")
                rows.first.wait_for()
                assert rows.count() == 3
                assert "1.9.0" in (page.locator("#capacity-table").text_content() or "")
                screenshot(page, "capacity")
            watch.check()
            context.close()
        finally:
            browser.close()


def test_the_report_carries_the_verdicts(world: World, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from browser import ARTIFACTS, DOCS_SCREENSHOTS, launch

    out = tmp_path / "report.html"
    run = invoke(
        world.args("report", "-n", "orders", "--format", "html", "--output", str(out)),
        env=world.env(),
    )
    assert run.code == 0, run.err
    assert "impact computed from Prometheus for 7 changes" in run.err
    md = invoke(world.args("report", "-n", "orders", "-f", "markdown", "-o", "-"), env=world.env())
    assert md.code == 0, md.err
    expected = {e.verdict for e in world.data.fleet.expected_impacts}
    for verdict in expected:
        assert verdict in md.out
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 1100, "height": 900}, java_script_enabled=False
            )
            page = context.new_page()
            page.goto(out.as_uri())
            body = page.locator("body").inner_text()
            # the summary counts the one regression; the notable changes show the verdicts
            tile = page.locator("text=regressions").locator("..").inner_text()
            assert tile.split()[0] == "1", tile
            assert "regression" in body
            assert "insufficient-data" in body
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-impact.png"), full_page=True)
            if os.environ.get("IMAGETRAIL_UPDATE_SCREENSHOTS") == "1":
                page.screenshot(path=str(DOCS_SCREENSHOTS / "report-impact.png"), full_page=True)
            context.close()
        finally:
            browser.close()


def test_progress_counts_every_query(world: World) -> None:
    from imagetrail.service.impact import impacts_for
    from imagetrail.service.query import Query, QueryContext, Window

    # A method of its own (alpha), so that no verdict recorded by another test is reused.
    settings = settings_mod.load(
        {"ledger": str(world.ledger), "prometheus_url": world.prometheus.url},
        environ={"IMAGETRAIL_IMPACT_ALPHA": "0.049"},
    )
    qc = QueryContext(settings)
    changes = qc.changes(Query(window=Window(start=world.data.start, end=world.data.end)))
    seen: list[tuple[int, int]] = []
    impacts_for(qc, changes, progress=lambda done, total: seen.append((done, total)))
    judged = [c for c in changes if c.finished is not None]
    # six built-in signals and the events query, two windows each, for every finished change
    assert seen[-1] == (len(judged) * 14, len(judged) * 14)
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1))
    # now recorded: a second run asks Prometheus only about the change that is not final
    seen.clear()
    impacts_for(qc, changes, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (14, 14)


def test_serve_records_verdicts_after_each_sync_pass(world: World, tmp_path: Path) -> None:
    from imagetrail.service.impact import method_of
    from imagetrail.service.query import Query, QueryContext, Window
    from imagetrail.web.syncer import BackgroundSync

    ledger = tmp_path / "serve.db"
    ledger.write_bytes(world.ledger.read_bytes())
    settings = settings_mod.load(
        {"ledger": str(ledger), "prometheus_url": world.prometheus.url},
        environ={"IMAGETRAIL_IMPACT_ALPHA": "0.048"},  # a method no other test recorded
    )
    qc = QueryContext(settings)
    syncer = BackgroundSync(qc)
    syncer.after_pass()
    assert syncer.status.impact_error is None
    # every change of the orders namespace but the one 20 minutes before the end
    assert syncer.status.final_verdicts == 6
    changes = qc.changes(Query(window=Window(start=world.data.start, end=world.data.end)))
    with Ledger.open(ledger, create=False) as led:
        stored = led.stored_impacts(changes, method_of(settings))
    assert len(stored) == 6
    assert sorted(i.verdict for i in stored.values()) == sorted(
        e.verdict for e in world.data.fleet.expected_impacts if e.verdict != "insufficient-data"
    )
    down = BackgroundSync(
        QueryContext(
            settings_mod.load(
                {"ledger": str(ledger), "prometheus_url": "http://127.0.0.1:9"},
                environ={"IMAGETRAIL_IMPACT_ALPHA": "0.047", "IMAGETRAIL_RETRIES": "0"},
            )
        )
    )
    down.after_pass()  # recorded, never raised
    assert down.status.impact_error is not None
