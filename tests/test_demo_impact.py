"""The demo's signals: the simulator answers impact and capacity as Prometheus does.

``imagetrail demo`` has no Prometheus; a ledger it wrote reads its signals from the simulator
(``imagetrail.sim.signals``) through the same reader interface, judged by the same statistics.
The first tests hold the simulator to a real Prometheus backfilled with the same fleet: same
block values, same events, same capacity samples, same verdicts. The others check what a new
user sees: verdicts with their evidence, capacity per version, regressions in the report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clirun import invoke
from imagetrail import settings as settings_mod
from imagetrail.errors import ConfigError, InputError
from imagetrail.model import Impact
from imagetrail.report import make_report
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.impact import (
    ImpactRunner,
    _context_spans,
    capacity_for,
    dora_for,
    impacts_for,
    signal_source,
)
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.sim import SimConfig, simulate
from imagetrail.sim.signals import SimSignals
from imagetrail.sources.signals import PrometheusSignals
from imagetrail.timeutil import format_time
from servers import Server, start_prometheus
from simdata import SimData, impact_sim_data, sim_tsdb

DAY = 86400.0


@dataclass(frozen=True)
class Twin:
    data: SimData
    prometheus: Server
    ledger: Path


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """The `orders` namespace, days 12-14, in a real Prometheus, and a ledger synced from it."""
    data = impact_sim_data()
    server = start_prometheus(sim_tsdb(data))
    ledger = tmp_path_factory.mktemp("twin") / "ledger.db"
    try:
        args = ["sync", "--prometheus", server.url, "--ledger", str(ledger)]
        args += ["--since", format_time(data.start), "--until", format_time(data.end)]
        run = invoke(args)
        assert run.code == 0, run.err
        yield Twin(data, server, ledger)
    finally:
        server.stop()


def _judge_both(twin: Twin) -> tuple[list[Impact], list[Impact]]:
    settings = settings_mod.load(
        {"ledger": str(twin.ledger), "prometheus_url": twin.prometheus.url}, environ={}
    )
    ctx = QueryContext(settings)
    changes = ctx.changes(Query(window=Window(start=twin.data.start, end=twin.data.end)))
    assert len(changes) >= 7
    sim = SimSignals(twin.data.fleet, start=twin.data.start, end=twin.data.end)
    prom = PrometheusSignals(ctx.settings, ctx.prom_client())
    try:
        out = []
        for reader in (prom, sim):
            runner = ImpactRunner(ctx, reader)
            lo = min(c.started for c in changes) - runner.before - runner.block
            hi = max((c.settled or c.started) for c in changes) + runner.after + runner.block
            spans, neighbours, data_end = _context_spans(ctx, changes, lo, hi)
            out.append(runner.judge(runner.plan(changes, spans, neighbours, data_end)))
    finally:
        prom.close()
    return out[0], out[1]


@pytest.mark.slow
def test_the_simulator_reads_what_prometheus_reads(twin: Twin) -> None:
    from_prom, from_sim = _judge_both(twin)
    judged = 0
    for p, s in zip(from_prom, from_sim, strict=True):
        assert p.change == s.change
        assert (p.verdict, p.reason) == (s.verdict, s.reason), p.change
        assert p.events == s.events, p.change
        assert [x.name for x in p.signals] == [x.name for x in s.signals]
        for a, b in zip(p.signals, s.signals, strict=True):
            assert a.verdict == b.verdict, (p.change, a.name)
            assert (a.blocks_before, a.blocks_after) == (b.blocks_before, b.blocks_after)
            assert a.before_values == pytest.approx(b.before_values, rel=1e-9, abs=1e-9)
            assert a.after_values == pytest.approx(b.after_values, rel=1e-9, abs=1e-9)
            judged += bool(a.before_values) + bool(a.after_values)
    assert judged > 50  # most signals had blocks on both sides: a real comparison
    assert {i.verdict for i in from_sim} >= {"regression", "improvement", "no-change"}
    # events on the bad rollout: OOM kills after, none before
    [bad] = [i for i in from_sim if i.verdict == "regression"]
    assert bad.events is not None
    assert {(e.state, e.reason, e.before) for e in bad.events} == {("terminated", "OOMKilled", 0)}
    assert all((e.after or 0) > 0 for e in bad.events)


@pytest.mark.slow
def test_capacity_samples_match_prometheus(twin: Twin) -> None:
    settings = settings_mod.load(
        {"ledger": str(twin.ledger), "prometheus_url": twin.prometheus.url}, environ={}
    )
    ctx = QueryContext(settings)
    spans, _, _ = ctx.spans(
        Query(workload="orders/orders-api", window=Window(twin.data.start, twin.data.end)),
        default_range=None,
    )
    pods = sorted({s.pod for s in spans})
    key = ("prod-eu", "orders", "Deployment", "orders-api", "api")
    lo, hi = twin.data.start + 3600, twin.data.start + 9 * 3600
    sim = SimSignals(twin.data.fleet, start=twin.data.start, end=twin.data.end)
    prom = PrometheusSignals(ctx.settings, ctx.prom_client())
    try:
        want = prom.usage(key, pods, lo, hi, 60.0, 120.0)
    finally:
        prom.close()
    got = sim.usage(key, pods, lo, hi, 60.0, 120.0)
    for w, g in zip(want, got, strict=True):
        assert len(w) > 100
        w_map = {(pod, round(t * 1000)): v for pod, t, v in w}
        g_map = {(pod, round(t * 1000)): v for pod, t, v in g}
        assert w_map.keys() == g_map.keys()
        for k, v in w_map.items():
            assert g_map[k] == pytest.approx(v, rel=1e-9), k


# ------------------------------------------------------------------- what the demo shows
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    path = tmp_path_factory.mktemp("demo-impact") / "demo.db"
    ledger, end = build_demo_ledger(path)
    ledger.close()
    return path, end


def _ctx(path: Path, **extra: str) -> QueryContext:
    return QueryContext(settings_mod.load({"ledger": str(path), **extra}, environ={}))


def test_the_demo_judges_its_changes_without_prometheus(demo: tuple[Path, float]) -> None:
    path, end = demo
    ctx = _ctx(path)
    source = signal_source(ctx)
    assert source is not None
    assert source.name == "the demo simulator"
    changes = ctx.changes(Query(namespace="orders", window=Window(start=end - 14 * DAY)))
    got = {(c.workload, c.to_image, c.kind.value): i for c, i in
           zip(changes, impacts_for(ctx, changes), strict=True)}  # fmt: skip
    # The ground truth of the same simulation (build_demo_ledger: 14 days ending at `end`).
    fleet = simulate(SimConfig(start=end - 14 * DAY, days=14))
    assert fleet.expected_impacts
    for e in fleet.expected_impacts:
        [impact] = [i for (w, to, _), i in got.items() if (w, to) == (e.workload, e.to_image)
                    and abs(i.change.started - e.started) <= 60]  # fmt: skip
        assert impact.verdict == e.verdict, (e, impact.reason)
    [bad] = [i for i in got.values() if i.verdict == "regression"]
    deciding = {s.name for s in bad.signals if s.decides and s.verdict == "regression"}
    assert deciding == {"restarts", "oom_kills", "cpu_throttling", "alerts"}
    assert bad.events


def test_the_demo_shows_capacity_per_version(demo: tuple[Path, float]) -> None:
    path, end = demo
    rows = capacity_for(
        _ctx(path), Query(workload="orders/orders-api", window=Window(end - 14 * DAY))
    )
    by_tag = {r.image.rsplit(":", 1)[1]: r for r in rows}
    assert set(by_tag) == {"1.8.0", "1.8.1", "1.9.0"}
    good, bad = by_tag["1.8.1"], by_tag["1.9.0"]
    assert good.memory_p50 is not None
    assert bad.memory_p50 is not None
    assert good.cpu_p50 is not None
    assert bad.cpu_p50 is not None
    assert bad.memory_p50 / good.memory_p50 == pytest.approx(1.4, rel=0.05)
    assert bad.cpu_p50 / good.cpu_p50 == pytest.approx(0.35 / 0.25, rel=0.1)
    assert all(r.samples > 0 for r in rows)


def test_the_demo_report_counts_its_regression(demo: tuple[Path, float]) -> None:
    path, end = demo
    ctx = _ctx(path)
    report = make_report(ctx, Query(window=Window(start=end - 7 * DAY)), now=end)
    assert report.summary.regressions == 1
    assert report.impact_note.startswith("impact computed from the demo simulator")
    figures = dora_for(ctx, Query(workload="orders/orders-api", window=Window(end - 7 * DAY, end)))
    [api] = figures
    assert api.failures == 1  # the regression (its rollback is the restore)


def test_the_demo_cli_answers_impact_and_capacity(demo: tuple[Path, float]) -> None:
    path, _ = demo
    env: dict[str, str | None] = {"IMAGETRAIL_PROMETHEUS_URL": None}
    run = invoke(["impact", "-w", "orders/orders-api", "--since", "14d", "--ledger", str(path),
                  "-f", "json"], env=env)  # fmt: skip
    assert run.code == 0, run.err
    rows = run.json()
    assert isinstance(rows, list)
    assert [r["verdict"] for r in rows] == ["no-change", "regression", "improvement"]
    run = invoke(["capacity", "orders/orders-api", "--since", "14d", "--ledger", str(path),
                  "-f", "json"], env=env)  # fmt: skip
    assert run.code == 0, run.err
    assert len(run.json()) == 3


def test_a_ledger_without_a_source_is_still_one_clear_error(tmp_path: Path) -> None:
    ledger, end = build_demo_ledger(tmp_path / "plain.db", days=2, signals=False)
    ledger.close()
    ctx = _ctx(tmp_path / "plain.db")
    assert signal_source(ctx) is None
    changes = ctx.changes(Query(window=Window(start=end - 2 * DAY)))
    unfinished = [c for c in changes if c.finished is None and c.cut_short is None]
    with pytest.raises(ConfigError, match="impact needs Prometheus"):
        impacts_for(ctx, unfinished or changes)
    with pytest.raises(InputError, match="no Prometheus URL"):
        capacity_for(ctx, Query(workload="orders/orders-api"))


def test_demo_console_shows_the_regression(tmp_path: Path) -> None:
    began = time.monotonic()
    run = invoke(["demo", "--no-serve", "--ledger", str(tmp_path / "demo.db")])
    assert run.code == 0, run.err
    assert "4. Change impact" in run.out
    assert "regression: orders-api" in run.out
    assert time.monotonic() - began < 120
