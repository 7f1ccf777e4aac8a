"""The web benchmark's request mixes: same ranges for both sides, fixed, all answerable."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.web_bench import web_config_from
from bench.web_mix import DAY, client_schedule, heatmap_mix, load_mix
from imagetrail.service.query import Window

CLUSTERS = ["prod-eu", "prod-us", "staging"]
NAMESPACES = ["data", "shop"]
START = 1_793_491_200.0


@given(st.integers(1, 90).map(lambda d: d * DAY / 2), st.integers(100, 4000))
def test_heatmap_cases_lie_in_the_range_and_the_first_is_all_of_it(span: float, w: int) -> None:
    cases = heatmap_mix(START, START + span, clusters=CLUSTERS, namespaces=NAMESPACES, width=w)
    assert (cases[0].start, cases[0].end, cases[0].clusters, cases[0].namespace) == (
        START,
        START + span,
        (),
        None,
    )
    assert len({c.name for c in cases}) == len(cases)
    for case in cases:
        assert START <= case.start < case.end <= START + span
        params = dict(case.params())
        assert float(params["from"]) == case.start
        assert float(params["to"]) == case.end
        assert 10 <= int(params["width"]) <= 10_000  # what the API accepts


def test_panel_query_asks_the_same_range_step_and_filters() -> None:
    cases = heatmap_mix(START, START + 7 * DAY, clusters=CLUSTERS, namespaces=NAMESPACES)
    for case in cases:
        q = case.panel_query(3600.0)
        assert q.window == Window(start=case.start, end=case.end, step=3600.0)
        assert q.cluster == (case.clusters[0] if case.clusters else None)
        assert q.namespace == case.namespace
        params = case.params()
        assert [v for k, v in params if k == "cluster"] == list(case.clusters)
        assert dict(params).get("namespace") == case.namespace


def test_workload_case_is_ledger_only() -> None:
    cases = heatmap_mix(
        START, START + DAY, clusters=CLUSTERS, namespaces=NAMESPACES, workload="svc-0000"
    )
    wl = cases[-1]
    assert dict(wl.params())["workload"] == "svc-0000"
    assert not wl.panel_comparable
    assert all(c.panel_comparable for c in cases[:-1])
    with pytest.raises(ValueError, match="panel cannot"):
        wl.panel_query(60.0)


def test_heatmap_mix_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="empty"):
        heatmap_mix(START, START, clusters=CLUSTERS, namespaces=NAMESPACES)
    with pytest.raises(ValueError, match="cluster"):
        heatmap_mix(START, START + DAY, clusters=[], namespaces=NAMESPACES)


def test_unix_times_are_sent_as_the_cli_writes_them() -> None:
    case = heatmap_mix(START, START + 1.5, clusters=CLUSTERS, namespaces=NAMESPACES)[0]
    assert urlencode(case.params()).startswith("from=1793491200&to=1793491201.5&")


def test_load_mix_covers_every_kind_the_issue_names() -> None:
    mix = load_mix(START, START + 30 * DAY, clusters=CLUSTERS, namespaces=NAMESPACES)
    assert {m.path for m in mix} == {
        "/",
        "/api/v1/heatmap",
        "/api/v1/versions",
        "/api/v1/changes",
        "/api/v1/workloads",
    }
    assert mix == load_mix(START, START + 30 * DAY, clusters=CLUSTERS, namespaces=NAMESPACES)


@given(st.integers(0, 200))
def test_each_client_walks_the_whole_mix_from_its_own_first_step(client: int) -> None:
    mix = load_mix(START, START + DAY, clusters=CLUSTERS, namespaces=NAMESPACES)
    schedule = client_schedule(mix, client)
    assert sorted(map(repr, schedule)) == sorted(map(repr, mix))
    assert schedule[0] == mix[client % len(mix)]
    with pytest.raises(ValueError, match="empty"):
        client_schedule([], client)


def test_the_benchmark_flags_set_the_config() -> None:
    cfg = web_config_from(rounds=3, load_seconds=5.0, browser=False)
    assert (cfg.rounds, cfg.big_rounds, cfg.load_seconds, cfg.browser) == (3, 6, 5.0, False)
    default = web_config_from()
    assert (default.compare_containers, default.compare_days) == (1000, 7)
    assert (default.big_containers, default.big_days) == (2000, 30)
    assert (default.load_clients, default.load_seconds) == (32, 30.0)
