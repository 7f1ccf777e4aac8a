"""The history engine against a real Prometheus holding the simulated fleet.

The ledger after `sync` must match the simulator's own ground truth: every change, the right
kind, and times within one scrape interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagetrail.errors import QueryRejected
from imagetrail.ledger import Ledger
from imagetrail.service.sync import sync_once
from imagetrail.sim import write_vm_import
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource
from servers import Server, start_prometheus, start_victoriametrics
from simdata import SimData, expected_window_changes, found_window_changes, sim_data, sim_tsdb

pytestmark = pytest.mark.slow
HOUR = 3600.0


@pytest.fixture(scope="module")
def ksm_data() -> SimData:
    return sim_data()


@pytest.fixture(scope="module", params=["prometheus", "victoriametrics"])
def ksm_prometheus(
    request: pytest.FixtureRequest, ksm_data: SimData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The same simulated series in a real Prometheus and in a real VictoriaMetrics."""
    if request.param == "prometheus":
        server = start_prometheus(sim_tsdb(ksm_data))
    else:
        files = write_vm_import(
            ksm_data.fleet,
            tmp_path_factory.mktemp("vm"),
            signals=ksm_data.signals,
            start=ksm_data.start,
            end=ksm_data.end,
        )
        server = start_victoriametrics(files)
    try:
        yield server
    finally:
        server.stop()


def _sync(url: str, ledger: Ledger, data: SimData, **kw: object) -> None:
    with PromClient(PromConfig(url=url)) as client:
        source = PrometheusSource(client, resolution=data.fleet.config.scrape_interval)
        sync_once(
            ledger,
            source,
            url=url,
            since=data.start,
            until=data.end,
            **kw,  # type: ignore[arg-type]
        )


def _assert_changes_match(ledger: Ledger, data: SimData) -> None:
    expected = expected_window_changes(data)
    found = found_window_changes(ledger.changes(start=data.start), data)
    assert set(found) == set(expected), (
        f"missing: {sorted(set(expected) - set(found), key=str)[:5]}\n"
        f"unexpected: {sorted(set(found) - set(expected), key=str)[:5]}"
    )
    interval = data.fleet.config.scrape_interval
    for key, (started, finished) in expected.items():
        got_started, got_finished = found[key]
        assert abs(got_started - started) <= interval, (key, got_started, started)
        if finished is None:
            assert got_finished is None, (key, got_finished)
        else:
            assert got_finished is not None, key
            assert abs(got_finished - finished) <= interval, (key, got_finished, finished)


def test_sync_reproduces_the_simulated_rollouts(
    ksm_prometheus: Server, ksm_data: SimData, tmp_path: Path
) -> None:
    with Ledger.open(tmp_path / "l.db") as ledger:
        _sync(ksm_prometheus.url, ledger, ksm_data)
        _assert_changes_match(ledger, ksm_data)
        kinds = {c.kind.value for c in ledger.changes(start=ksm_data.start)}
        # The window was chosen to hold every kind the simulator scripts.
        assert {"upgrade", "rollback", "tag-repush", "added", "removed"} <= kinds


def test_span_edges_within_one_scrape_interval(
    ksm_prometheus: Server, ksm_data: SimData, tmp_path: Path
) -> None:
    with Ledger.open(tmp_path / "l.db") as ledger:
        _sync(ksm_prometheus.url, ledger, ksm_data)
        spans = {(s.cluster, s.namespace, s.pod, s.pod_uid, s.container): s for s in ledger.spans()}
    interval = ksm_data.fleet.config.scrape_interval
    truth = [
        s
        for s in ksm_data.fleet.spans()
        if s.first_seen >= ksm_data.start + interval
        and s.last_seen <= ksm_data.end - interval
        # a container that lived less than a scrape interval may fall between two scrapes
        and s.last_seen - s.first_seen >= interval
    ]
    assert len(truth) > 500
    first_restart = {
        (pod.uid, c.name): c.restarts[0]
        for pod in ksm_data.fleet.pods
        for c in pod.containers
        if c.restarts
    }
    for t in truth:
        got = spans.get((t.cluster, t.namespace, t.pod, t.pod_uid, t.container))
        assert got is not None, t
        assert (got.image, got.digest) == (t.image, t.digest)
        assert (got.workload_kind, got.workload) == (t.workload_kind, t.workload)
        # A crash-looping container may run only seconds at a time, between two scrapes;
        # its first restart is then the earliest evidence that it started.
        restarts = first_restart.get((t.pod_uid, t.container))
        slack = interval + (restarts - t.first_seen if restarts is not None else 0.0)
        assert abs(got.first_seen - t.first_seen) <= slack, (t, got)
        assert abs(got.last_seen - t.last_seen) <= interval, (t, got)


def test_second_sync_changes_nothing(
    ksm_prometheus: Server, ksm_data: SimData, tmp_path: Path
) -> None:
    with Ledger.open(tmp_path / "l.db") as ledger:
        _sync(ksm_prometheus.url, ledger, ksm_data)
        before = (sorted(ledger.spans(), key=repr), ledger.changes(start=0))
        _sync(ksm_prometheus.url, ledger, ksm_data)
        assert (sorted(ledger.spans(), key=repr), ledger.changes(start=0)) == before


def test_ledger_on_postgresql_holds_the_same_history(
    ksm_prometheus: Server, ksm_data: SimData, tmp_path: Path, pg_database_url: str
) -> None:
    with Ledger.open(tmp_path / "l.db") as sqlite, Ledger.open(pg_database_url) as pg:
        _sync(ksm_prometheus.url, sqlite, ksm_data)
        _sync(ksm_prometheus.url, pg, ksm_data)
        _assert_changes_match(pg, ksm_data)
        assert sorted(pg.spans(), key=repr) == sorted(sqlite.spans(), key=repr)
        assert pg.changes(start=0) == sqlite.changes(start=0)


def test_chunks_too_big_for_the_server_are_read_in_halves(
    ksm_data: SimData, tmp_path: Path
) -> None:
    """A Prometheus with a tight --query.max-samples refuses day-long chunks: sync halves them
    and still records the same history."""
    server = start_prometheus(sim_tsdb(ksm_data), extra_args=["--query.max-samples=60000"])
    try:
        with (
            PromClient(PromConfig(url=server.url)) as client,
            pytest.raises(QueryRejected, match="too many samples"),
        ):
            PrometheusSource(client).chunk_spans(
                "ksm", ksm_data.start + 86400, ksm_data.start + 2 * 86400
            )
        with Ledger.open(tmp_path / "l.db") as ledger:
            _sync(server.url, ledger, ksm_data)
            _assert_changes_match(ledger, ksm_data)
    finally:
        server.stop()
