"""Waits (a pod container listed with an image but not running, and why): stored in the ledger
on a SQLite file and a real PostgreSQL, and read from real kube-state-metrics scrapes replayed in
a real Prometheus."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, event

from imagetrail.errors import InputError, LedgerError
from imagetrail.imageref import resolve
from imagetrail.ledger import Ledger
from imagetrail.ledger import schema as S
from imagetrail.model import Change, ChangeKind, CutShort, Span, Wait
from imagetrail.service.sync import collect, merge_in_memory, sync_once
from imagetrail.sources.promapi import PromClient, PromConfig, QueryResult
from imagetrail.sources.prometheus import PrometheusSource
from replay import FIXTURES, SCRAPES, read_scrape, write_replay
from servers import Server, backfill_prometheus_tsdb, start_prometheus

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NEW = "registry.k8s.io/hpa-example:v9.9.9"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.open(ledger_url) as opened:
        yield opened


def span(
    pod: str = "web-1",
    first: float = 100.0,
    last: float = 200.0,
    *,
    cluster: str = "prod",
    namespace: str = "shop",
    kind: str = "Deployment",
    workload: str = "web",
    container: str = "app",
    image: str = "docker.io/library/nginx:1.25",
    digest: str | None = None,
    inferred: bool = False,
) -> Span:
    return Span(
        cluster, namespace, kind, workload, pod, container, image, digest, first, last,
        "ksm", inferred, pod_uid=f"uid-{pod}",
    )  # fmt: skip


def wait(reason: str = "ImagePullBackOff", pod: str = "web-9", **kw: Any) -> Wait:
    kw.setdefault("image", NEW)
    return Wait(span(pod, **kw), reason)


def rows(ledger: Ledger) -> set[tuple[Any, ...]]:
    """Everything that identifies and describes each stored wait."""
    return {
        (w.key(), w.span.first_seen, w.span.last_seen, w.span.workload_kind,
         w.span.workload_inferred)
        for w in ledger.waits()
    }  # fmt: skip


def clear(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        for table in (S.spans, S.waits, S.changes, S.sync_state, S.meta):
            if table is S.meta:
                conn.execute(delete(table).where(S.meta.c.key == S.CHANGES_STALE))
            else:
                conn.execute(delete(table))


# -- storing waits -------------------------------------------------------------------------------


def test_waits_round_trip_and_merge_like_spans(ledger: Ledger) -> None:
    stored = [
        wait(),
        wait("ErrImagePull"),  # another reason of the same container: its own row
        wait("CrashLoopBackOff", "web-8", image="docker.io/library/nginx:1.26",
             digest="sha256:" + "c" * 64),
        wait("ContainerCreating", "job-1", kind="Job", workload="nightly", inferred=True),
    ]  # fmt: skip
    assert ledger.merge_spans([], waits=stored) == 4
    assert sorted(ledger.waits(), key=Wait.key) == sorted(stored, key=Wait.key)
    assert ledger.stats() == {"spans": 0, "waits": 4, "changes": 0, "sync_state": 0}
    assert ledger.spans() == []  # versions are running-only
    # first_seen = min, last_seen = max; inside changes nothing; a known owner beats a guess
    assert ledger.merge_spans([], waits=[wait(first=120, last=180)]) == 0
    assert ledger.merge_spans([], waits=[wait(first=50, last=150), wait(first=150, last=300)]) == 1
    assert ledger.merge_spans([], waits=[wait("ContainerCreating", "job-1", kind="CronJob",
                                              workload="nightly")]) == 1  # fmt: skip
    got = {(w.span.pod, w.reason): w.span for w in ledger.waits()}
    pulled = got["web-9", "ImagePullBackOff"]
    assert (pulled.first_seen, pulled.last_seen) == (50.0, 300.0)
    erred = got["web-9", "ErrImagePull"]
    assert (erred.first_seen, erred.last_seen) == (100.0, 200.0)
    job = got["job-1", "ContainerCreating"]
    assert (job.workload_kind, job.workload_inferred) == ("CronJob", False)
    # A None digest and a known one are different waits (as for spans).
    ledger.merge_spans([], waits=[wait(digest="sha256:" + "d" * 64)])
    assert ledger.stats()["waits"] == 5


@HYPOTHESIS
@given(
    waits=st.lists(
        st.builds(
            wait,
            reason=st.sampled_from(["ImagePullBackOff", "ErrImagePull"]),
            pod=st.sampled_from(["a", "b"]),
            first=st.integers(0, 50).map(float),
            last=st.integers(50, 100).map(float),
            kind=st.sampled_from(["Deployment", "ReplicaSet"]),
            inferred=st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    data=st.data(),
)
def test_wait_merge_is_order_duplication_and_chunking_independent(
    ledger: Ledger, waits: list[Wait], data: st.DataObject
) -> None:
    clear(ledger)
    best: dict[Any, tuple[float, float, bool, str]] = {}
    for w in waits:
        s = w.span
        lo, hi, inf, kind = best.get(
            w.key(), (s.first_seen, s.last_seen, s.workload_inferred, s.workload_kind)
        )
        inf, kind = min((inf, kind), (s.workload_inferred, s.workload_kind))
        best[w.key()] = (min(lo, s.first_seen), max(hi, s.last_seen), inf, kind)
    expected = {(k, lo, hi, kind, inf) for k, (lo, hi, inf, kind) in best.items()}
    shuffled = data.draw(st.permutations(waits))
    cut = data.draw(st.integers(0, len(shuffled)))
    ledger.merge_spans([], waits=shuffled[:cut])
    ledger.merge_spans([], waits=shuffled[cut:])
    assert rows(ledger) == expected
    assert ledger.merge_spans([], waits=waits) == 0


def test_waits_mark_the_changes_stale_and_reach_the_derivation(ledger: Ledger) -> None:
    ledger.merge_spans([span("web-1", 0, 1000)], sync_key="k", synced_until=1000)
    ledger.rederive_changes(lambda _s, _w, _e: [])
    assert not ledger.changes_stale()
    assert ledger.merge_spans([], waits=[wait(first=400, last=900)]) == 1
    assert ledger.changes_stale()  # a new wait alone makes the change log out of date
    seen: list[tuple[int, list[Wait], float]] = []

    def derive(spans: list[Span], waits: list[Wait], end: float) -> list[Change]:
        seen.append((len(spans), waits, end))
        return []

    ledger.rederive_changes(derive, only_if_stale=True)
    assert seen == [(1, [wait(first=400, last=900)], 1000.0)]
    assert ledger.merge_spans([], waits=[wait(first=500, last=600)]) == 0
    assert not ledger.changes_stale()  # nothing new
    # A ledger holding waits only still derives (a workload whose first version never ran),
    # up to the newest wait when no sync watermark says where data ends.
    clear(ledger)
    ledger.merge_spans([], waits=[wait(first=10, last=20)])
    seen.clear()
    ledger.rederive_changes(derive)
    assert seen == [(0, [wait(first=10, last=20)], 20.0)]


def test_sync_derives_failed_attempts_from_stored_waits(ledger: Ledger) -> None:
    from imagetrail.service.sync import rederive_changes

    old = "docker.io/library/nginx:1.25"
    spans = [span(f"web-{i}", 0, 5000, image=old) for i in range(2)]
    waits = [wait("ErrImagePull", first=1000, last=1030),
             wait("ImagePullBackOff", first=1060, last=2500)]  # fmt: skip
    ledger.merge_spans(spans, waits=waits, sync_key="k", synced_from=0, synced_until=5000)
    assert rederive_changes(ledger, tolerance=60) == 1
    (failed,) = ledger.changes()
    assert failed.to_image == NEW
    assert failed.state == "failed"
    assert failed.reasons == ("ErrImagePull", "ImagePullBackOff")
    assert (failed.pods, failed.pods_ran) == (1, 0)
    assert (failed.started, failed.ended) == (1000.0, 2500.0)


def test_wait_filters_mean_what_span_filters_mean(ledger: Ledger) -> None:
    shapes: list[dict[str, Any]] = [
        {"pod": "web-1", "first": 0, "last": 10},
        {"pod": "web-2", "first": 20, "last": 30, "namespace": "shop-eu"},
        {"pod": "db-0", "first": 40, "last": 50, "kind": "StatefulSet", "workload": "db",
         "container": "pg"},
        {"pod": "web-9", "first": 0, "last": 100, "cluster": "stage"},
        {"pod": "web-x", "first": 5, "last": 6, "kind": "ReplicaSet", "inferred": True},
    ]  # fmt: skip
    ledger.merge_spans(
        [span(**s) for s in shapes], waits=[wait("CrashLoopBackOff", **s) for s in shapes]
    )
    filters: list[dict[str, Any]] = [
        {},
        {"cluster": "prod"},
        {"cluster": "nope"},
        {"namespace_regex": "shop"},
        {"namespace_regex": "shop-(eu|us)"},
        {"namespace_regex": "hop"},
        {"container": "pg"},
        {"start": 10, "end": 20},
        {"start": 50},
        {"end": 4.9},
        {"workload": "statefulset/db"},
        {"workload": "shop-eu/web"},
        {"workload": "replicaset/web"},
        {"workload": "shop/deployment/web"},
        {"workload": "stage/shop/Deployment/web"},
        {"cluster": "prod", "start": 31, "end": 39},
    ]
    for f in filters:
        waited = sorted(w.span.pod for w in ledger.waits(**f))
        assert waited == sorted(s.pod for s in ledger.spans(**f)), f
    assert sorted(w.span.pod for w in ledger.waits(start=10, end=20)) == ["web-1", "web-2", "web-9"]
    with pytest.raises(InputError, match="regex"):
        ledger.waits(namespace_regex="shop(")
    with pytest.raises(InputError, match="workload"):
        ledger.waits(workload="a//b")


HOSTILE = [
    'it\'s "quoted"; DROP TABLE waits; --',
    "line1\nline2\r\n\ttab",
    "ünïcödé 名前 🚀 \u202e",
    '["not", "a list"]',
    "x" * 10_000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_waits_and_reasons_round_trip(ledger: Ledger, value: str) -> None:
    stored = Wait(Span(value, value, value, value, value, value, value, value, 1.0, 2.0), value)
    ledger.merge_spans([], waits=[stored])
    ledger.merge_spans([], waits=[stored])
    assert ledger.waits() == [stored]
    assert ledger.waits(cluster=value, container=value, namespace_regex=re.escape(value)) == [
        stored
    ]
    failed = Change(value, value, value, value, value, value, None, value, None,
                    ChangeKind.OTHER, 1.0, None, CutShort.FAILED, 2.0,
                    reasons=(value, "ImagePullBackOff", ""), pods=3, pods_ran=1,
                    waited=12.5)  # fmt: skip
    ledger.replace_changes([], [failed])
    assert ledger.changes() == [failed]


def test_invalid_waits_are_input_errors(ledger: Ledger) -> None:
    for bad, match in [
        (wait("bad\x00reason"), "NUL"),
        (wait("\ud800"), "surrogate"),
        (wait(first=5, last=1), "ends before it starts"),
        (wait(first=float("nan")), "finite"),
    ]:
        with pytest.raises(InputError, match=match):
            ledger.merge_spans([span()], waits=[bad])
    assert ledger.spans() == []  # nothing of a refused call is written
    bad_change = Change("p", "n", "Deployment", "w", "c", None, None, "i", None,
                        ChangeKind.ADDED, 1.0, None, reasons=("a\x00b",))  # fmt: skip
    with pytest.raises(InputError, match="NUL"):
        ledger.replace_changes([], [bad_change])
    with pytest.raises(InputError, match="waited"):
        ledger.replace_changes([], [replace(bad_change, reasons=(), waited=float("inf"))])


def _fail_on(ledger: Ledger, when: Callable[[str], bool]) -> Callable[[], None]:
    dbapi_error = ledger.engine.dialect.loaded_dbapi.OperationalError

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if when(statement):
            raise dbapi_error("injected failure")

    event.listen(ledger.engine, "before_cursor_execute", before)
    return lambda: event.remove(ledger.engine, "before_cursor_execute", before)


def test_waits_spans_and_watermark_are_written_together_or_not_at_all(ledger: Ledger) -> None:
    ledger.merge_spans([span("old")], sync_key="k", synced_until=10)
    before = (ledger.spans(), ledger.waits(), ledger.sync_state("k"), ledger.changes_stale())
    undo = _fail_on(ledger, lambda sql: "INSERT INTO waits" in sql)
    with pytest.raises(LedgerError, match="injected failure"):
        ledger.merge_spans([span("new")], waits=[wait()], sync_key="k", synced_until=20)
    undo()
    assert (ledger.spans(), ledger.waits(), ledger.sync_state("k"),
            ledger.changes_stale()) == before  # fmt: skip
    assert ledger.merge_spans([span("new")], waits=[wait()], sync_key="k", synced_until=20) == 2
    state = ledger.sync_state("k")
    assert state is not None
    assert state.synced_until == 20.0
    assert [w.span.pod for w in ledger.waits()] == ["web-9"]


# -- reading waits from real kube-state-metrics scrapes ------------------------------------------

START = 1_762_000_000.0
MINUTES = 30
SCRAPE = 30.0
END = START + MINUTES * 60


class CountingClient(PromClient):
    """The real client, counting the queries a read sends (range and instant)."""

    def __init__(self, config: PromConfig) -> None:
        super().__init__(config)
        self.sent: list[str] = []

    def query(self, promql: str, *, time: float | None = None) -> QueryResult:
        self.sent.append("instant")
        return super().query(promql, time=time)

    def query_range(self, promql: str, *, start: float, end: float, step: float) -> QueryResult:
        self.sent.append("range")
        return super().query_range(promql, start=start, end=end, step=step)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real scrapes of every cluster, repeated every 30 s for 30 minutes."""
    work = tmp_path_factory.mktemp("replay")
    backfill_prometheus_tsdb([write_replay(work, start=START, minutes=MINUTES)], work / "tsdb")
    server = start_prometheus(work / "tsdb")
    try:
        yield server
    finally:
        server.stop()


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text))


def scraped_waits() -> set[tuple[str, str, str, str, str, str | None, str]]:
    """What the kube-state-metrics scrapes say waits: (cluster, namespace, pod, container,
    image, digest, reason), the image as kube_pod_container_info lists it for that container."""
    out = set()
    for cluster, files in SCRAPES.items():
        for name in files:
            if "ksm" not in name:
                continue
            samples = read_scrape(FIXTURES / name)
            info = {}
            for metric, text, _ in samples:
                if metric == "kube_pod_container_info":
                    labels = _labels(text)
                    key = (labels["namespace"], labels["pod"], labels["uid"], labels["container"])
                    info[key] = resolve(labels["image"], labels["image_id"], labels["image_spec"])
            for metric, text, value in samples:
                if metric == "kube_pod_container_status_waiting_reason" and value > 0:
                    labels = _labels(text)
                    key = (labels["namespace"], labels["pod"], labels["uid"], labels["container"])
                    image, digest = info[key]
                    out.add((cluster, key[0], key[1], key[3], image, digest, labels["reason"]))
    return out


def test_the_scrapes_hold_waiting_containers() -> None:
    # Kubernetes 1.22's scrape has a crash-looping container and a CronJob pod being created;
    # 1.31's lists the same kind of pods without a waiting reason (no waits).
    assert scraped_waits() == {
        ("kind-1-22", "scraper", "e2e-container-creating", "alpine",
         "docker.io/library/alpine:latest",
         "sha256:02bb6f428431fbc2809c5d1b41eab5a68350194fb508869a33cb1af4444c9b11",
         "CrashLoopBackOff"),
        ("kind-1-22", "scraper", "e2e-cronjob-28091690-frw7r", "compute-pi-digits",
         "docker.io/library/perl:5.34.0", None, "ContainerCreating"),
    }  # fmt: skip


def _read(wait: Wait) -> tuple[str, str, str, str, str, str | None, str]:
    s = wait.span
    return (s.cluster, s.namespace, s.pod, s.container, s.image, s.digest, wait.reason)


@pytest.mark.parametrize("bucket", [3600.0, 600.0])
def test_chunk_waits_read_what_the_scrapes_say(replay: Server, bucket: float) -> None:
    with PromClient(PromConfig(url=replay.url)) as client:
        source = PrometheusSource(client, resolution=SCRAPE, bucket=bucket)
        waits = source.chunk_waits(START - 300, END + 300)
        assert source.chunk("cadvisor", START - 300, END + 300)[1] == []  # cAdvisor cannot see
    assert sorted(map(_read, waits)) == sorted(scraped_waits())
    for w in waits:
        # Every scrape of the replay says so: from its first sample to its last.
        assert abs(w.span.first_seen - START) <= SCRAPE, w
        assert abs(w.span.last_seen - END) <= SCRAPE, w
        assert w.span.pod_uid  # pods that reuse a name stay apart
    owners = {w.span.pod: (w.span.workload_kind, w.span.workload) for w in waits}
    assert owners == {
        "e2e-container-creating": ("Pod", "e2e-container-creating"),  # a bare pod
        "e2e-cronjob-28091690-frw7r": ("CronJob", "e2e-cronjob"),  # via kube_job_owner
    }


def test_waits_cost_one_range_query_and_the_refines_of_their_edges(replay: Server) -> None:
    """Per chunk: spans alone, then spans and waits sharing the attribute and owner queries."""
    with CountingClient(PromConfig(url=replay.url)) as client:
        source = PrometheusSource(client, resolution=SCRAPE, concurrency=1)
        spans, none = source.chunk("ksm", START - 300, END + 300, waits=False)
        spans_only = Counter(client.sent)
        client.sent.clear()
        same_spans, waits = source.chunk("ksm", START - 300, END + 300)
        both = Counter(client.sent)
    assert none == []
    assert len(waits) == 2
    assert sorted(same_spans, key=repr) == sorted(spans, key=repr)
    # One presence range query more; two refine queries (first and last edge: one bucket, one
    # batch of pods) for the waits.
    assert both["range"] == spans_only["range"] + 1
    assert both["instant"] == spans_only["instant"] + 2


@pytest.mark.parametrize("chunk", [900.0, 7 * 86400.0])
def test_sync_writes_the_waits_of_each_chunk_with_its_spans(
    replay: Server, ledger_url: str, chunk: float
) -> None:
    with (
        PromClient(PromConfig(url=replay.url)) as client,
        Ledger.open(ledger_url) as ledger,
    ):
        source = PrometheusSource(client, resolution=SCRAPE)
        result = sync_once(
            ledger, source, url=replay.url, signal="ksm", since=START - 300, until=END + 300,
            chunk=chunk,
        )  # fmt: skip
        stored = ledger.waits()
        # A chunk's waits are cut at its borders; the ledger joins the pieces.
        assert sorted(map(_read, stored)) == sorted(scraped_waits())
        for w in stored:
            assert abs(w.span.first_seen - START) <= SCRAPE, w
            assert abs(w.span.last_seen - END) <= SCRAPE, w
        # Running versions are what the spans alone say, read in the same chunks.
        running = merge_in_memory(collect(source, "ksm", START - 300, END + 300, chunk=chunk))
        assert {(s.key(), s.first_seen, s.last_seen) for s in ledger.spans()} == {
            (s.key(), s.first_seen, s.last_seen) for s in running
        }
        assert result.chunks >= 1
        assert ledger.stats()["waits"] == 2
        assert not ledger.changes_stale()  # derived with the waits at the end of the sync
        assert ledger.waits(cluster="kind-1-31") == []
        assert [w.reason for w in ledger.waits(workload="cronjob/e2e-cronjob")] == [
            "ContainerCreating"
        ]
        # A second sync re-reads the tail: the same waits, merged into the same rows.
        sync_once(ledger, source, url=replay.url, signal="ksm", until=END + 300, chunk=chunk)
        assert ledger.waits() == stored
