"""The ledger, on a SQLite file and on a real PostgreSQL (every behaviour on both)."""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, event, inspect, text

from imagetrail.errors import ConfigError, InputError, LedgerError, NotALedger
from imagetrail.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, Migration, SyncState, store
from imagetrail.ledger import schema as S
from imagetrail.ledger.rows import impact_row
from imagetrail.model import (
    Change,
    ChangeKind,
    CutShort,
    EventCount,
    Impact,
    SignalResult,
    Span,
    Wait,
)

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where to open a fresh ledger: a SQLite file, or an empty PostgreSQL database."""
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
    signal: Any = "ksm",
    inferred: bool = False,
) -> Span:
    return Span(
        cluster, namespace, kind, workload, pod, container, image, digest, first, last,
        signal, inferred,
    )  # fmt: skip


def change(
    started: float,
    finished: float | None = None,
    *,
    workload: str = "web",
    container: str = "app",
    kind: ChangeKind = ChangeKind.UPGRADE,
    to_image: str | None = "nginx:1.26",
    namespace: str = "shop",
) -> Change:
    return Change(
        "prod", namespace, "Deployment", workload, container, "nginx:1.25", None, to_image,
        "sha256:" + "a" * 64, kind, started, finished,
    )  # fmt: skip


def table_rows(ledger: Ledger) -> set[tuple[Any, ...]]:
    """Everything that identifies and describes each stored span."""
    return {
        (s.key(), s.first_seen, s.last_seen, s.workload_kind, s.workload_inferred)
        for s in ledger.spans()
    }


def clear(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        for table in (S.spans, S.waits, S.changes, S.sync_state):
            conn.execute(delete(table))


def file_state(path: Path) -> tuple[str, int, list[str]]:
    """Content hash, mtime and sibling files: what "never modified" must keep equal."""
    data = path.read_bytes()
    siblings = sorted(p.name for p in path.parent.iterdir())
    return hashlib.sha256(data).hexdigest(), path.stat().st_mtime_ns, siblings


# -- opening, meta, URLs -------------------------------------------------------------------------


def test_new_ledger_has_meta_and_empty_tables(ledger: Ledger, ledger_url: str) -> None:
    assert ledger.schema_version == SCHEMA_VERSION
    assert ledger.stats() == {"spans": 0, "waits": 0, "changes": 0, "sync_state": 0}
    assert ledger.time_bounds() is None
    assert ledger.synced_until() is None
    with ledger.engine.connect() as conn:
        meta: dict[str, str] = dict(conn.execute(text("SELECT key, value FROM meta")).all())
    assert meta["application"] == S.APPLICATION_ID
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["imagetrail_version"]
    assert float(meta["created_at"]) > 0


def test_reopen_keeps_data_and_sqlite_uses_wal(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as first:
        first.merge_spans([span()])
        if ledger_url.endswith(".db"):
            with first.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
    with Ledger.open(ledger_url, create=False) as again:
        assert again.spans() == [span()]


def test_url_masks_the_password(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as opened:
        if ledger_url.startswith("postgresql"):
            password = ledger_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            assert password not in opened.url
            assert "***" in opened.url
            assert password not in repr(opened)
        else:
            assert opened.url == "sqlite:///" + str(Path(ledger_url).absolute())


def test_unreachable_postgres_error_is_one_line_without_password() -> None:
    sock_port = _free_port()
    url = f"postgresql+psycopg://someone:hunter2-secret@127.0.0.1:{sock_port}/nothing"
    with pytest.raises(LedgerError) as info:
        Ledger.open(url)
    message = str(info.value)
    assert "hunter2-secret" not in message
    assert "hunter2-secret" not in (info.value.hint or "")
    assert "\n" not in message
    assert "127.0.0.1" in message
    assert info.value.__cause__ is not None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "target",
    ["", ":memory:", "sqlite://", "mysql://u:p@h/db", "postgresql://u:p@h:notaport/db"],
)
def test_bad_targets_are_config_errors(target: str) -> None:
    with pytest.raises(ConfigError) as info:
        Ledger.open(target)
    assert ":p@" not in str(info.value)


def test_path_forms_resolve_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "x.db"
    with Ledger.open(path) as a:  # missing parent directories are created
        a.merge_spans([span()])
    with Ledger.open(f"sqlite:///{path}", create=False) as b:
        assert b.spans() == [span()]


def test_create_false_refuses_missing_and_empty(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(LedgerError, match="no ledger"):
        Ledger.open(missing, create=False)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(LedgerError, match="empty"):
        Ledger.open(empty, create=False)
    assert empty.stat().st_size == 0


def test_empty_postgres_database_with_create_false(pg_database_url: str) -> None:
    with pytest.raises(LedgerError, match="holds no ledger"):
        Ledger.open(pg_database_url, create=False)


def test_zero_byte_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "zero.db"
    path.touch()
    with Ledger.open(path) as opened:
        assert opened.stats()["spans"] == 0
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def test_closed_ledger_refuses_use(ledger_url: str) -> None:
    opened = Ledger.open(ledger_url)
    opened.close()
    opened.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        opened.spans()
    with pytest.raises(LedgerError, match="closed"):
        opened.merge_spans([span()])


def test_fresh_schema_matches_the_declared_tables(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        found = inspect(conn)
        assert sorted(found.get_table_names()) == sorted(S.TABLES)
        for table in S.metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
        # Reflection skips expression indexes (with a warning), so ask the catalogues.
        if conn.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_%'"
        indexes: set[str] = set(conn.execute(text(query)).scalars())
    assert indexes == {i.name for t in S.metadata.sorted_tables for i in t.indexes}


def test_sqlite_filters_use_the_prefix_index(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.db") as opened:
        stmt = (
            S.spans.select()
            .where(S.prefix_eq(S.spans.c.cluster, "prod"))
            .compile(opened.engine, compile_kwargs={"literal_binds": True})
        )
        with opened.engine.connect() as conn:
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}"))
    assert "ix_spans_workload" in plan


# -- merging spans -------------------------------------------------------------------------------


def test_merge_inserts_and_round_trips(ledger: Ledger) -> None:
    spans = [
        span("web-1"),
        span("web-2", digest="sha256:" + "b" * 64),
        span("node-exp-x", kind="DaemonSet", workload="node-exporter", signal="cadvisor",
             inferred=True),
    ]  # fmt: skip
    assert ledger.merge_spans(spans) == 3
    assert sorted(ledger.spans(), key=Span.key) == sorted(spans, key=Span.key)
    assert ledger.stats()["spans"] == 3
    assert ledger.time_bounds() == (100.0, 200.0)


def test_merge_extends_first_and_last_seen(ledger: Ledger) -> None:
    assert ledger.merge_spans([span(first=10, last=20)]) == 1
    assert ledger.merge_spans([span(first=12, last=18)]) == 0  # inside: nothing changes
    assert ledger.merge_spans([span(first=5, last=15)]) == 1
    assert ledger.merge_spans([span(first=12, last=30)]) == 1
    (stored,) = ledger.spans()
    assert (stored.first_seen, stored.last_seen) == (5.0, 30.0)
    assert ledger.time_bounds() == (5.0, 30.0)


def test_merging_the_same_spans_twice_changes_nothing(ledger: Ledger) -> None:
    spans = [span(f"web-{i}", first=i, last=i + 10) for i in range(50)]
    assert ledger.merge_spans(spans) == 50
    before = table_rows(ledger)
    assert ledger.merge_spans(spans) == 0
    assert ledger.merge_spans(reversed(spans)) == 0
    assert table_rows(ledger) == before


def test_null_digest_is_unique(ledger: Ledger) -> None:
    ledger.merge_spans([span(digest=None, first=1, last=2)])
    ledger.merge_spans([span(digest=None, first=3, last=4)])
    ledger.merge_spans([span(digest="sha256:" + "c" * 64, first=5, last=6)])
    stored = sorted(ledger.spans(), key=lambda s: s.first_seen)
    assert [(s.digest, s.first_seen, s.last_seen) for s in stored] == [
        (None, 1.0, 4.0),
        ("sha256:" + "c" * 64, 5.0, 6.0),
    ]


def test_resolved_owner_replaces_an_inferred_one(ledger: Ledger) -> None:
    ledger.merge_spans([span(kind="ReplicaSet", inferred=True)])
    assert ledger.merge_spans([span(kind="Deployment", inferred=False)]) == 1
    assert ledger.merge_spans([span(kind="ReplicaSet", inferred=True)]) == 0
    (stored,) = ledger.spans()
    assert (stored.workload_kind, stored.workload_inferred) == ("Deployment", False)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (span(first=10, last=5), "ends before"),
        (span(first=math.nan), "finite"),
        (span(last=math.inf), "finite"),
        (span(image="nginx\x00"), "NUL"),
        (span(kind="Deploy\x00ment"), "NUL"),
        (span(pod="\ud800"), "surrogate"),
        (span(signal="prom"), "signal"),
    ],
)
def test_invalid_spans_are_input_errors(ledger: Ledger, bad: Span, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ledger.merge_spans([span("good"), bad])
    assert ledger.stats()["spans"] == 0


SPANS = st.builds(
    span,
    pod=st.sampled_from(["a", "b"]),
    first=st.integers(0, 50).map(float),
    last=st.integers(50, 100).map(float),
    namespace=st.sampled_from(["a", "b"]),
    kind=st.sampled_from(["Deployment", "ReplicaSet", "DaemonSet"]),
    digest=st.sampled_from([None, "sha256:" + "d" * 64]),
    signal=st.sampled_from(["ksm", "cadvisor"]),
    inferred=st.booleans(),
)


def reference(spans: list[Span]) -> set[tuple[Any, ...]]:
    """What the table must hold: per key the widest interval and the best-known owner."""
    best: dict[Any, tuple[float, float, bool, str]] = {}
    for s in spans:
        lo, hi, inf, kind = best.get(
            s.key(), (s.first_seen, s.last_seen, s.workload_inferred, s.workload_kind)
        )
        inf, kind = min((inf, kind), (s.workload_inferred, s.workload_kind))
        best[s.key()] = (min(lo, s.first_seen), max(hi, s.last_seen), inf, kind)
    return {(k, lo, hi, kind, inf) for k, (lo, hi, inf, kind) in best.items()}


@HYPOTHESIS
@given(
    spans=st.lists(SPANS, min_size=1, max_size=40),
    data=st.data(),
)
def test_merge_is_order_duplication_and_chunking_independent(
    ledger: Ledger, spans: list[Span], data: st.DataObject
) -> None:
    clear(ledger)
    shuffled = data.draw(st.permutations(spans + data.draw(st.lists(st.sampled_from(spans)))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=5)))
    chunks = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    for chunk in chunks:
        ledger.merge_spans(chunk)
    assert table_rows(ledger) == reference(spans)
    assert ledger.merge_spans(spans) == 0


def test_concurrent_merges_from_threads(ledger: Ledger) -> None:
    spans = [span(f"p{i % 40}", first=i, last=i + 5, image=f"img:{i % 3}") for i in range(400)]
    errors: list[BaseException] = []

    def work(part: list[Span]) -> None:
        try:
            for i in range(0, len(part), 25):
                ledger.merge_spans(part[i : i + 25], sync_key="k", synced_until=float(i))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(spans[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert table_rows(ledger) == reference(spans)


# -- filters -------------------------------------------------------------------------------------


@pytest.fixture
def fleet(ledger: Ledger) -> Ledger:
    ledger.merge_spans(
        [
            span("web-1", 0, 10),
            span("web-2", 20, 30, namespace="shop-eu"),
            span("db-0", 40, 50, kind="StatefulSet", workload="db", container="postgres"),
            span("web-9", 0, 100, cluster="stage"),
            span("web-x", 5, 6, signal="cadvisor", kind="ReplicaSet", inferred=True),
        ]
    )
    return ledger


def pods(spans: list[Span]) -> list[str]:
    return sorted(s.pod for s in spans)


def test_span_filters(fleet: Ledger) -> None:
    assert pods(fleet.spans(cluster="prod")) == ["db-0", "web-1", "web-2", "web-x"]
    assert pods(fleet.spans(cluster="nope")) == []
    assert pods(fleet.spans(namespace_regex="shop")) == ["db-0", "web-1", "web-9", "web-x"]
    assert pods(fleet.spans(namespace_regex="shop.*")) == pods(fleet.spans())
    assert pods(fleet.spans(namespace_regex="shop-(eu|us)")) == ["web-2"]
    assert pods(fleet.spans(namespace_regex="hop")) == []  # fullmatch, not search
    assert pods(fleet.spans(container="postgres")) == ["db-0"]
    assert pods(fleet.spans(signal="cadvisor")) == ["web-x"]
    # [start, end] overlap, both ends inclusive
    assert pods(fleet.spans(start=10, end=20)) == ["web-1", "web-2", "web-9"]
    assert pods(fleet.spans(start=50)) == ["db-0", "web-9"]
    assert pods(fleet.spans(end=4.9)) == ["web-1", "web-9"]
    assert pods(fleet.spans(cluster="prod", start=31, end=39)) == []


def test_workload_filter_forms(fleet: Ledger) -> None:
    assert pods(fleet.spans(workload="db")) == ["db-0"]
    assert pods(fleet.spans(workload="statefulset/db")) == ["db-0"]
    assert pods(fleet.spans(workload="StatefulSet/db")) == ["db-0"]
    assert pods(fleet.spans(workload="shop/db")) == ["db-0"]
    assert pods(fleet.spans(workload="shop-eu/web")) == ["web-2"]
    assert pods(fleet.spans(workload="replicaset/web")) == ["web-x"]
    assert pods(fleet.spans(workload="shop/deployment/web")) == ["web-1", "web-9"]
    assert pods(fleet.spans(workload="stage/shop/Deployment/web")) == ["web-9"]
    assert pods(fleet.spans(workload="daemonset/db")) == []
    for bad in ["a//b", "/web", "a/b/c/d/e", ""]:
        with pytest.raises(InputError, match="workload"):
            fleet.spans(workload=bad)


def test_bad_namespace_regex_is_an_input_error(fleet: Ledger) -> None:
    with pytest.raises(InputError, match="regex"):
        fleet.spans(namespace_regex="shop(")
    with pytest.raises(InputError, match="regex"):
        fleet.changes(namespace_regex="[")


@HYPOTHESIS
@given(
    spans=st.lists(SPANS, min_size=1, max_size=30),
    start=st.none() | st.integers(0, 100).map(float),
    end=st.none() | st.integers(0, 100).map(float),
    ns=st.none() | st.sampled_from(["a", "b|c", ".*", "[ab]"]),
    signal=st.none() | st.sampled_from(["ksm", "cadvisor"]),
)
def test_span_filters_match_a_plain_python_filter(
    ledger: Ledger,
    spans: list[Span],
    start: float | None,
    end: float | None,
    ns: str | None,
    signal: str | None,
) -> None:
    clear(ledger)
    ledger.merge_spans(spans)
    stored = ledger.spans()
    expected = {
        s.key()
        for s in stored
        if (start is None or s.last_seen >= start)
        and (end is None or s.first_seen <= end)
        and (ns is None or re.fullmatch(ns, s.namespace))
        and (signal is None or s.signal == signal)
    }
    got = ledger.spans(start=start, end=end, namespace_regex=ns, signal=signal)
    assert [s.key() for s in got] == [s.key() for s in stored if s.key() in expected]


# -- changes -------------------------------------------------------------------------------------

WEB = ("prod", "shop", "Deployment", "web", "app")
DB = ("prod", "shop", "Deployment", "db", "app")


def test_replace_changes_replaces_only_the_given_keys(ledger: Ledger) -> None:
    ledger.replace_changes([WEB, DB], [change(10, 20), change(30, None), change(5, workload="db")])
    assert ledger.stats()["changes"] == 3
    ledger.replace_changes([WEB], [change(40, 50, kind=ChangeKind.ROLLBACK)])
    got = ledger.changes()
    assert [(c.workload, c.started, c.kind) for c in got] == [
        ("db", 5.0, ChangeKind.UPGRADE),
        ("web", 40.0, ChangeKind.ROLLBACK),
    ]
    ledger.replace_changes([DB], [])  # a key with no changes any more
    assert [c.workload for c in ledger.changes()] == ["web"]
    # a change whose key was not listed still replaces that key's old changes
    ledger.replace_changes([], [change(60, 61)])
    assert [(c.workload, c.started) for c in ledger.changes()] == [("web", 60.0)]


def test_span_writes_mark_the_changes_stale_until_derived(ledger: Ledger) -> None:
    assert not ledger.changes_stale()  # a new ledger has nothing to derive
    assert ledger.rederive_changes(lambda _s, _w, _e: [change(1, 2)], only_if_stale=True) is None
    ledger.merge_spans([span("a", 10, 20)], sync_key="k", synced_until=30)
    assert ledger.changes_stale()
    seen: list[tuple[int, float]] = []

    def derive(spans: list[Span], waits: list[Wait], end: float) -> list[Change]:
        seen.append((len(spans), end))
        assert waits == []
        return [change(10, 20)]

    assert ledger.rederive_changes(derive, only_if_stale=True) == 1
    assert seen == [(1, 30.0)]  # every span, and the sync watermark as the end of the data
    assert not ledger.changes_stale()
    assert ledger.rederive_changes(derive, only_if_stale=True) is None
    ledger.merge_spans([span("a", 10, 20)])  # nothing changed: still current
    assert not ledger.changes_stale()
    ledger.merge_spans([span("a", 10, 25)])
    assert ledger.changes_stale()
    ledger.replace_changes([], [change(40, 50)])  # a partial replacement derives nothing
    assert ledger.changes_stale()


def test_a_failed_derivation_keeps_the_changes_and_the_mark(ledger: Ledger) -> None:
    ledger.replace_changes([], [change(1, 2)])
    ledger.merge_spans([span()])

    def broken(_spans: list[Span], _waits: list[Wait], _end: float) -> list[Change]:
        raise RuntimeError("derive crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        ledger.rederive_changes(broken)
    assert [c.started for c in ledger.changes()] == [1.0]
    assert ledger.changes_stale()


def test_changes_round_trip_and_filters(ledger: Ledger) -> None:
    stored = [
        change(10, 20),
        change(30, None, kind=ChangeKind.TAG_REPUSH),
        change(50, 45, workload="db", kind=ChangeKind.ADDED, to_image=None),  # recreate gap
        change(70, 80, namespace="other"),
    ]
    ledger.replace_changes([], stored)
    assert ledger.changes() == sorted(stored, key=lambda c: c.started)
    assert [c.started for c in ledger.changes(start=21, end=29)] == []
    assert [c.started for c in ledger.changes(start=20, end=20)] == [10.0]
    assert [c.started for c in ledger.changes(start=1000)] == [30.0]  # still in progress
    assert [c.started for c in ledger.changes(start=44, end=46)] == [30.0, 50.0]
    assert [c.started for c in ledger.changes(end=9)] == []
    assert [c.started for c in ledger.changes(kinds={"added", "tag-repush"})] == [30.0, 50.0]
    assert [c.started for c in ledger.changes(kinds=[ChangeKind.UPGRADE])] == [10.0, 70.0]
    assert [c.started for c in ledger.changes(kinds=[])] == []
    assert [c.started for c in ledger.changes(workload="deployment/db")] == [50.0]
    assert [c.started for c in ledger.changes(namespace_regex="oth.*")] == [70.0]
    assert [c.started for c in ledger.changes(cluster="prod")] == [10.0, 30.0, 50.0, 70.0]
    with pytest.raises(InputError, match="unknown change kind"):
        ledger.changes(kinds=["sideways"])


def test_a_cut_short_change_ends_where_it_was_given_up(ledger: Ledger) -> None:
    aborted = replace(change(10, None), cut_short=CutShort.ABORTED, ended=25.0)
    ledger.replace_changes([], [aborted, change(30, None, workload="db")])
    assert [c.started for c in ledger.changes(start=26)] == [30.0]
    assert [c.started for c in ledger.changes(start=25)] == [10.0, 30.0]
    assert [c.started for c in ledger.changes(start=12, end=20)] == [10.0]


# -- sync state ----------------------------------------------------------------------------------


def test_sync_state_widens_and_records_errors(ledger: Ledger) -> None:
    clock = iter(range(1000, 2000))
    ledger._clock = lambda: float(next(clock))
    assert ledger.sync_state("ksm|http://p:9090|t") is None
    ledger.merge_spans([span()], sync_key="ksm|http://p:9090|t", synced_from=100, synced_until=200)
    ledger.merge_spans([], sync_key="ksm|http://p:9090|t", synced_from=150, synced_until=300)
    ledger.merge_spans([], sync_key="ksm|http://p:9090|t", synced_from=50)
    assert ledger.sync_state("ksm|http://p:9090|t") == SyncState(
        "ksm|http://p:9090|t", 50.0, 300.0, 1002.0, None
    )
    ledger.record_sync_error("ksm|http://p:9090|t", "connection refused\nretrying")
    state = ledger.sync_state("ksm|http://p:9090|t")
    assert state is not None
    assert (state.synced_until, state.last_error) == (300.0, "connection refused\nretrying")
    ledger.record_sync_error("cadvisor|x", "boom\x00")  # a key that never succeeded
    assert ledger.sync_state("cadvisor|x") == SyncState("cadvisor|x", None, None, None, "boom\\x00")
    ledger.merge_spans([], sync_key="ksm|http://p:9090|t", synced_until=310)
    state = ledger.sync_state("ksm|http://p:9090|t")
    assert state is not None
    assert (state.synced_until, state.last_success, state.last_error) == (310.0, 1003.0, None)
    ledger.merge_spans([], sync_key="other", synced_until=250)
    assert ledger.synced_until() == 310.0
    assert ledger.stats()["sync_state"] == 3


def test_sync_arguments_are_checked(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="sync_key"):
        ledger.merge_spans([span()], synced_until=5)
    with pytest.raises(InputError, match="after"):
        ledger.merge_spans([span()], sync_key="k", synced_from=5, synced_until=4)
    with pytest.raises(InputError, match="finite"):
        ledger.merge_spans([span()], sync_key="k", synced_until=math.nan)
    with pytest.raises(InputError):
        ledger.record_sync_error("", "x")
    with pytest.raises(InputError):
        ledger.merge_spans([], sync_key="bad\ud800key")
    ledger.record_sync_error("k", "odd \ud800 error")  # an error text is stored anyway
    state = ledger.sync_state("k")
    assert state is not None
    assert state.last_error == "odd \\ud800 error"
    clear(ledger)
    assert ledger.stats() == {"spans": 0, "waits": 0, "changes": 0, "sync_state": 0}


def fail_on(ledger: Ledger, when: Callable[[str, int], bool]) -> Callable[[], None]:
    """Make the driver fail the statement for which ``when(sql, n)`` is true (n counts calls)."""
    calls = [0]
    dbapi_error = ledger.engine.dialect.loaded_dbapi.OperationalError

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        calls[0] += 1
        if when(statement, calls[0]):
            raise dbapi_error("injected failure")

    event.listen(ledger.engine, "before_cursor_execute", before)
    return lambda: event.remove(ledger.engine, "before_cursor_execute", before)


def test_sync_state_is_written_with_its_spans_or_not_at_all(ledger: Ledger) -> None:
    ledger.merge_spans([span("old")], sync_key="k", synced_until=10)
    before = (table_rows(ledger), ledger.sync_state("k"))
    undo = fail_on(ledger, lambda sql, _n: "sync_state" in sql and "INSERT" in sql)
    with pytest.raises(LedgerError, match="injected failure") as info:
        ledger.merge_spans([span(f"new-{i}") for i in range(20)], sync_key="k", synced_until=20)
    undo()
    assert isinstance(info.value.__cause__, Exception)
    assert (table_rows(ledger), ledger.sync_state("k")) == before
    # the ledger is still usable, and the retried chunk lands completely
    assert ledger.merge_spans([span(f"new-{i}") for i in range(20)], sync_key="k", synced_until=20)
    state = ledger.sync_state("k")
    assert state is not None
    assert state.synced_until == 20.0
    assert ledger.stats()["spans"] == 21


def test_failure_in_a_later_batch_loses_and_writes_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "BATCH_ROWS", 3)
    ledger.merge_spans([span("keep", 0, 1)])
    batches = [0]

    def third_span_batch(sql: str, _n: int) -> bool:
        if "INSERT INTO spans" in sql:
            batches[0] += 1
        return batches[0] == 3

    undo = fail_on(ledger, third_span_batch)
    with pytest.raises(LedgerError):
        ledger.merge_spans([span("keep", 0, 5), *(span(f"n{i}") for i in range(10))])
    undo()
    assert [(s.pod, s.last_seen) for s in ledger.spans()] == [("keep", 1.0)]


def test_failed_replace_changes_keeps_the_old_ones(ledger: Ledger) -> None:
    ledger.replace_changes([WEB], [change(1, 2)])
    undo = fail_on(ledger, lambda sql, _n: sql.startswith("INSERT INTO changes"))
    with pytest.raises(LedgerError):
        ledger.replace_changes([WEB], [change(3, 4)])
    undo()
    assert [c.started for c in ledger.changes()] == [1.0]


# -- hostile strings -----------------------------------------------------------------------------

HOSTILE = [
    'it\'s "quoted"; DROP TABLE spans; --',
    "line1\nline2\r\n\ttab",
    "<script>alert('x')</script>",
    "ünïcödé 名前 🚀 \u202e",
    "%(name)s %s ? :param $1",
    "x" * 10_000,
    "".join(chr(c) for c in range(1, 10_001) if not 0xD800 <= c <= 0xDFFF),
]
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_round_trip(ledger: Ledger, value: str) -> None:
    stored = Span(value, value, value, value, value, value, value, value, 1.0, 2.0)
    ledger.merge_spans([stored], sync_key=value, synced_until=2.0)
    ledger.merge_spans([stored])
    assert ledger.spans() == [stored]
    assert ledger.spans(cluster=value, container=value) == [stored]
    assert ledger.spans(namespace_regex=re.escape(value)) == [stored]
    # Kubernetes names hold no "/", which the --workload forms use as a separator.
    workload = value.replace("/", "") + "-w"
    ledger.merge_spans([Span(value, value, value, workload, value, value, value, None, 1.0, 2.0)])
    assert len(ledger.spans(workload=workload)) == 1
    moved = Change(value, value, value, value, value, value, value, value, value,
                   ChangeKind.OTHER, 1.0, None)  # fmt: skip
    ledger.replace_changes([], [moved])
    ledger.replace_changes([], [moved])
    assert ledger.changes(cluster=value) == [moved]
    ledger.record_sync_error(value, value)
    state = ledger.sync_state(value)
    assert state is not None
    assert (state.key, state.synced_until, state.last_error) == (value, 2.0, value)


@HYPOTHESIS
@given(values=st.lists(TEXT, min_size=9, max_size=9))
def test_any_text_round_trips(ledger: Ledger, values: list[str]) -> None:
    clear(ledger)
    cluster, namespace, kind, workload, pod, container, image, digest = values[:8]
    stored = Span(
        cluster, namespace, kind, workload, pod, container, image, digest or None, 1.5, 2.5,
        "cadvisor",
    )  # fmt: skip
    assert ledger.merge_spans([stored]) == 1
    assert ledger.spans() == [stored]
    assert ledger.spans(cluster=values[0], container=values[5]) == [stored]


# -- not a ledger --------------------------------------------------------------------------------


def make_real_ledger(path: Path, spans: int = 3000) -> None:
    with Ledger.open(path) as made:
        made.merge_spans(span(f"pod-{i}", i, i + 1, image=f"img:{i}") for i in range(spans))


def foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()


def foreign_meta(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('application', 'someone-else')")
    conn.commit()
    conn.close()


def truncated_ledger(path: Path) -> None:
    whole = path.with_suffix(".whole")
    make_real_ledger(whole)
    data = whole.read_bytes()
    assert len(data) > 8 * 4096  # a real, multi-page ledger
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_text("hello, I am a text file\n"),
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
        lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20),  # half-written header
        foreign_sqlite,
        foreign_meta,
        truncated_ledger,
    ],
    ids=["text", "png", "short-header", "other-sqlite-db", "foreign-meta", "truncated-ledger"],
)
@pytest.mark.parametrize("create", [True, False])
def test_not_a_ledger_file_is_refused_and_untouched(
    tmp_path: Path, make: Callable[[Path], None], create: bool
) -> None:
    path = tmp_path / "target.db"
    make(path)
    before = file_state(path)
    with pytest.raises(NotALedger) as info:
        Ledger.open(path, create=create)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert file_state(path) == before


def test_directory_is_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(NotALedger, match="directory"):
        Ledger.open(tmp_path)


def test_postgres_database_with_other_tables_is_refused(pg_database_url: str) -> None:
    conninfo = pg_database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE orders (id int primary key, total numeric)")
        conn.execute("INSERT INTO orders VALUES (1, 9.5)")
    with pytest.raises(NotALedger, match="orders"):
        Ledger.open(pg_database_url)
    with psycopg.connect(conninfo) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        assert tables == ["orders"]


# -- schema versions -----------------------------------------------------------------------------


def add_note_column(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE spans ADD COLUMN note TEXT"))
    conn.execute(text("UPDATE spans SET note = 'pod ' || pod"))
    conn.execute(text("CREATE INDEX ix_spans_note ON spans (note)"))


NEXT = len(MIGRATIONS) + 1  # the version a future migration would have
V2 = (*MIGRATIONS, Migration(NEXT, "spans.note", add_note_column))


def test_older_ledger_is_migrated_in_place(ledger_url: str) -> None:
    with Ledger.open(ledger_url, migrations=MIGRATIONS) as v1:
        v1.merge_spans([span("a"), span("b")], sync_key="k", synced_until=9)
        v1.replace_changes([], [change(1, 2)])
        before = (table_rows(v1), v1.changes(), v1.sync_state("k"))
    with Ledger.open(ledger_url, migrations=V2) as v2:
        assert v2.schema_version == NEXT
        assert (table_rows(v2), v2.changes(), v2.sync_state("k")) == before
        with v2.engine.connect() as conn:
            notes: list[str] = sorted(conn.execute(text("SELECT note FROM spans")).scalars())
            meta: dict[str, str] = dict(conn.execute(text("SELECT key, value FROM meta")).all())
        assert notes == ["pod a", "pod b"]
        assert meta["schema_version"] == str(NEXT)
        v2.merge_spans([span("c")])  # the current code still writes a migrated ledger
    with Ledger.open(ledger_url, migrations=V2) as again:  # no second migration
        assert again.schema_version == NEXT
        assert again.stats()["spans"] == 3


def test_failed_migration_leaves_the_old_schema(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as v1:
        v1.merge_spans([span()])

    def half_then_fail(conn: Connection) -> None:
        add_note_column(conn)
        raise RuntimeError("migration step crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        Ledger.open(ledger_url, migrations=(*MIGRATIONS, Migration(NEXT, "bad", half_then_fail)))
    with Ledger.open(ledger_url) as still_v1:
        assert still_v1.schema_version == SCHEMA_VERSION
        with still_v1.engine.connect() as conn:
            assert "note" not in {c["name"] for c in inspect(conn).get_columns("spans")}
        assert still_v1.spans() == [span()]


def test_newer_ledger_is_refused_with_an_upgrade_hint(ledger_url: str) -> None:
    with Ledger.open(ledger_url, migrations=V2) as v2:
        v2.merge_spans([span()])
    with pytest.raises(LedgerError) as info:
        Ledger.open(ledger_url)
    assert not isinstance(info.value, NotALedger)
    assert f"v{NEXT}" in str(info.value)
    assert info.value.hint is not None
    assert "upgrade imagetrail" in info.value.hint


def test_broken_migration_lists_are_refused(tmp_path: Path) -> None:
    skip = (*MIGRATIONS, Migration(NEXT + 1, "gap", add_note_column))
    with pytest.raises(LedgerError, match="broken"):
        Ledger.open(tmp_path / "x.db", migrations=skip)
    with pytest.raises(LedgerError, match="empty"):
        Ledger.open(tmp_path / "y.db", migrations=())


def test_corruption_found_later_is_reported_as_not_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    make_real_ledger(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    # Keep page 1 (schema, meta) intact; scribble over every later page.
    data[page:] = bytes((i * 7 + 3) % 256 for i in range(len(data) - page))
    path.write_bytes(bytes(data))
    with pytest.raises(NotALedger, match="corrupt") as info, Ledger.open(path) as opened:
        opened.spans()
    assert str(path) in str(info.value)
    assert info.value.hint is not None


def test_postgres_schema_via_search_path(pg_database_url: str) -> None:
    conninfo = pg_database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE public.orders (id int primary key)")
        conn.execute("CREATE SCHEMA imagetrail")
    url = pg_database_url + "?options=-csearch_path%3Dimagetrail"
    with Ledger.open(url) as opened:
        opened.merge_spans([span()])
    with psycopg.connect(conninfo) as conn:
        found = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE tablename "
                             "IN ('orders', 'spans') ORDER BY 1").fetchall()  # fmt: skip
    assert found == [("imagetrail", "spans"), ("public", "orders")]


# ---------------------------------------------------------------------------- impact verdicts


def _impact(c: Change, verdict: str = "regression") -> Impact:
    signal = SignalResult(
        name="restarts", unit="restarts/h", before=0.0, after=12.5, p_value=1.4e-4,
        effect=0.92, blocks_before=12, blocks_after=12, verdict="regression", decides=True,
        before_values=(0.0,) * 12, after_values=(12.0, 13.0) * 6,
    )  # fmt: skip
    return Impact(c, verdict, 'worse after: restarts "x" <b>', (1.0, 2.0), (3.0, 4.5), (signal,))  # type: ignore[arg-type]


def test_impact_verdicts_round_trip_once_per_method(ledger: Ledger) -> None:
    a, b = change(10, 20), change(30, 40, workload=hostile_name())
    assert ledger.stored_impacts([a, b], "m1") == {}
    assert ledger.record_impacts([_impact(a), _impact(b, "no-change")], "m1") == 2
    assert ledger.record_impacts([_impact(a, "improvement")], "m1") == 0  # the first one stays
    assert ledger.stored_impacts([a, b], "m1") == {a: _impact(a), b: _impact(b, "no-change")}
    assert ledger.stored_impacts([a], "m2") == {}  # another method: computed afresh
    # the same change with another rollout end is another change
    assert ledger.stored_impacts([change(10, 21)], "m1") == {}


def test_a_recorded_verdict_keeps_its_events(ledger_url: str) -> None:
    """The second ask answers what the first did: the events were lost on recording (the CLI
    after the API, or any run after the first, said ``events: null``)."""
    a, b = change(10, 20), change(30, 40)
    events = (
        EventCount("terminated", 'OOMKilled "x" <b>', 0, 4),
        EventCount("waiting", "CrashLoopBackOff", 2, None),
    )
    with Ledger.open(ledger_url, migrations=MIGRATIONS[:5]) as v5, v5.engine.begin() as conn:
        row = {k: v for k, v in impact_row(_impact(a), method="m1", computed_at=1.0).items()
               if k != "events"}  # fmt: skip
        names, values = ", ".join(row), ", ".join(":" + k for k in row)
        # as v5 recorded it: without events
        conn.execute(text(f"INSERT INTO impacts ({names}) VALUES ({values})"), row)
    with Ledger.open(ledger_url) as v6:
        assert v6.stored_impacts([a], "m1") == {a: _impact(a)}  # events None: not read
        full, empty = replace(_impact(b), events=events), replace(_impact(a), events=())
        assert v6.record_impacts([full], "m1") == 1
        assert v6.stored_impacts([b], "m1") == {b: full}
        assert v6.record_impacts([empty], "m2") == 1
        assert v6.stored_impacts([a], "m2")[a].events == ()  # read, none seen: not None


def hostile_name() -> str:
    return 'web"\\n<script>'
