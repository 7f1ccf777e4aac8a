"""Derived changes stay true to the spans: concurrent writers, killed syncs, schemas v4 and v5.

Every test runs on a real PostgreSQL (and SQLite where the behaviour is shared). The spans come
from the simulated fleet, written chunk by chunk as `sync` writes them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, text

from clirun import invoke
from imagetrail import settings as settings_mod
from imagetrail.errors import InputError
from imagetrail.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from imagetrail.ledger import rows as R
from imagetrail.ledger import schema as S
from imagetrail.ledger.migrations import v4_identity
from imagetrail.model import Change, ChangeKind, CutShort, Span, Wait
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.service.sync import chunks, rederive_changes
from imagetrail.sim import Fleet, SimConfig, simulate
from servers import temporary_database

DAY = 86400.0
SYNC_KEY = "ksm|http://prometheus.test|"
TOLERANCE = 60.0  # 2 x the default scrape interval: what `imagetrail changes` derives with


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return simulate(SimConfig())


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    url: str = request.getfixturevalue("pg_database_url")
    return url


def chunked(fleet: Fleet, size: float = DAY) -> list[tuple[float, list[Span]]]:
    """The fleet's spans cut at chunk borders, as a sync reads them: ``(chunk end, pieces)``."""
    spans = fleet.spans()
    out = []
    for a, b in chunks(fleet.config.start, fleet.end, size):
        pieces = [
            replace(s, first_seen=max(s.first_seen, a), last_seen=min(s.last_seen, b))
            for s in spans
            if s.last_seen >= a and s.first_seen <= b
        ]
        out.append((b, pieces))
    return out


def write_chunks(ledger: Ledger, fleet: Fleet, parts: list[tuple[float, list[Span]]]) -> None:
    for end, pieces in parts:
        ledger.merge_spans(
            pieces, sync_key=SYNC_KEY, synced_from=fleet.config.start, synced_until=end
        )


def sync_like(ledger: Ledger, fleet: Fleet, parts: list[tuple[float, list[Span]]]) -> None:
    """What one `sync` pass does to the ledger: its chunks, then the changes."""
    write_chunks(ledger, fleet, parts)
    rederive_changes(ledger, tolerance=TOLERANCE)


def clean_changes(url: str, fleet: Fleet) -> list[Change]:
    with Ledger.open(url) as ledger:
        sync_like(ledger, fleet, chunked(fleet))
        return ledger.changes()


# -- concurrent writers ----------------------------------------------------------------------


def race(url: str, fleet: Fleet, work: list[tuple[float, list[Span]]]) -> None:
    """Two syncs of ``work`` at once, each with its own connections (as two processes)."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def one_sync() -> None:
        try:
            with Ledger.open(url) as ledger:
                barrier.wait()
                sync_like(ledger, fleet, work)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_sync) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_ten_pairs_of_concurrent_syncs_leave_the_clean_changes(
    postgres_url: str, fleet: Fleet
) -> None:
    with temporary_database(postgres_url) as url:
        clean = clean_changes(url, fleet)
    assert len(clean) > 50
    parts = chunked(fleet)
    for pair in range(10):
        with temporary_database(postgres_url) as url:
            Ledger.open(url).close()  # created once, not raced: that is not what is tested
            work = parts  # even pairs: two backfills of an empty ledger
            if pair % 2:  # odd pairs: two tail syncs of a ledger synced up to two days ago
                with Ledger.open(url) as ledger:
                    sync_like(ledger, fleet, parts[:-2])
                work = parts[-2:]
            race(url, fleet, work)
            with Ledger.open(url) as ledger:
                found = ledger.changes()
                assert len(found) == len(clean), f"pair {pair}: {len(found)} != {len(clean)}"
                assert found == clean, f"pair {pair}"
                assert not ledger.changes_stale()


def test_a_second_deriver_waits_for_the_first(ledger_url: str, fleet: Fleet) -> None:
    with Ledger.open(ledger_url) as first, Ledger.open(ledger_url) as second:
        write_chunks(first, fleet, chunked(fleet))
        inside, release = threading.Event(), threading.Event()
        log: list[str] = []

        def slow(spans: list[Span], waits: list[Wait], until: float) -> list[Change]:
            inside.set()
            assert release.wait(30)
            log.append("first done")
            return []

        def fast(spans: list[Span], waits: list[Wait], until: float) -> list[Change]:
            log.append("second derives")
            return [change_at(1.0), change_at(2.0)]

        a = threading.Thread(target=first.rederive_changes, args=(slow,))
        a.start()
        assert inside.wait(30)
        b = threading.Thread(target=second.rederive_changes, args=(fast,))
        b.start()
        b.join(1.0)
        assert b.is_alive(), "the second derivation did not wait for the first"
        release.set()
        a.join(30)
        b.join(30)
        assert log == ["first done", "second derives"]
        assert [c.started for c in second.changes()] == [1.0, 2.0]


def test_spans_written_during_a_derivation_leave_the_changes_stale(
    ledger_url: str, fleet: Fleet
) -> None:
    parts = chunked(fleet)
    with Ledger.open(ledger_url) as deriver, Ledger.open(ledger_url) as writer:
        write_chunks(deriver, fleet, parts[:-1])
        assert deriver.changes_stale()
        inside, release = threading.Event(), threading.Event()
        seen: list[int] = []

        def slow(spans: list[Span], waits: list[Wait], until: float) -> list[Change]:
            seen.append(len(spans))
            inside.set()
            assert release.wait(30)
            return []

        a = threading.Thread(target=deriver.rederive_changes, args=(slow,))
        a.start()
        assert inside.wait(30)
        # PostgreSQL: the merge commits now; SQLite: it waits for the derivation to commit.
        w = threading.Thread(target=write_chunks, args=(writer, fleet, parts[-1:]))
        w.start()
        time.sleep(0.5)
        release.set()
        a.join(30)
        w.join(30)
        assert not a.is_alive()
        assert not w.is_alive()
        # The derivation saw the spans without the last chunk, so its result is not current.
        assert writer.changes_stale()
        assert rederive_changes(writer, tolerance=TOLERANCE, only_if_stale=True) > 0
        assert not writer.changes_stale()
        assert rederive_changes(writer, tolerance=TOLERANCE, only_if_stale=True) == 0


# -- a sync killed between its last chunk and the changes ------------------------------------


def test_changes_after_a_killed_sync_equal_the_clean_run(
    ledger_url: str, tmp_path: Path, fleet: Fleet
) -> None:
    clean_url = str(tmp_path / "clean.db")
    clean = clean_changes(clean_url, fleet)
    parts = chunked(fleet)
    with Ledger.open(ledger_url) as ledger:
        sync_like(ledger, fleet, parts[:-1])  # an earlier, complete pass
        write_chunks(ledger, fleet, parts[-1:])  # the pass killed before deriving
        assert ledger.changes_stale()
        assert ledger.changes() != clean  # what the killed sync left behind is not the truth
    settings = settings_mod.load({"ledger": ledger_url}, environ={})
    answer = QueryContext(settings).changes(Query(window=Window(start=0.0)))
    assert answer == clean
    with Ledger.open(ledger_url) as ledger:
        assert not ledger.changes_stale()
        # Stale again: the CLI answers the clean run's changes too, byte for byte.
        write_chunks(ledger, fleet, parts[-1:])
        assert ledger.changes_stale()
    got = invoke(["changes", "--ledger", ledger_url, "--from", "0", "--format", "json"])
    want = invoke(["changes", "--ledger", clean_url, "--from", "0", "--format", "json"])
    assert got.code == 0, got.err
    assert got.out == want.out
    assert len(got.json()) == len(clean)


# -- schema v4 -------------------------------------------------------------------------------


def change_at(started: float, **kw: object) -> Change:
    fields: dict[str, object] = {
        "cluster": "prod", "namespace": "shop", "workload_kind": "Deployment",
        "workload": "web", "container": "app", "from_image": "nginx:1.25",
        "from_digest": None, "to_image": "nginx:1.26", "to_digest": "sha256:" + "a" * 64,
        "kind": ChangeKind.UPGRADE, "started": started, "finished": started + 10, **kw,
    }  # fmt: skip
    return Change(**fields)  # type: ignore[arg-type]


V3_COLUMNS = (
    "cluster", "namespace", "workload_kind", "workload", "container", "from_image",
    "from_digest", "to_image", "to_digest", "kind", "started", "finished",
)  # fmt: skip


def test_v3_ledger_is_migrated_with_identities_and_rebuilt(ledger_url: str) -> None:
    spans = [
        Span("prod", "shop", "Deployment", "web", f"web-{i}", "app", f"nginx:1.{i}", None,
             1000.0 + i * 600, 1000.0 + i * 600 + 900)
        for i in range(4)
    ]  # fmt: skip
    kept = [change_at(100.0), change_at(200.0, workload='we"b <x>', finished=None)]
    with Ledger.open(ledger_url, migrations=MIGRATIONS[:3]) as v3:
        assert v3.schema_version == 3
        v3.merge_spans(spans, sync_key=SYNC_KEY, synced_from=1000.0, synced_until=4000.0)
        with v3.engine.begin() as conn:
            # What racing syncs of older versions left: the first change twice.
            for c in [*kept, kept[0]]:
                row = R.change_row(c)
                conn.execute(
                    text(f"INSERT INTO changes ({', '.join(V3_COLUMNS)}) VALUES "
                         f"({', '.join(':' + n for n in V3_COLUMNS)})"),
                    {n: row[n] for n in V3_COLUMNS},
                )  # fmt: skip
        before = (v3.spans(), v3.sync_state(SYNC_KEY))
    with Ledger.open(ledger_url) as v4:
        assert v4.schema_version == SCHEMA_VERSION  # through v4 (and every later step)
        assert (v4.spans(), v4.sync_state(SYNC_KEY)) == before
        assert v4.changes() == kept  # duplicates gone, every other row kept
        with v4.engine.connect() as conn:
            ids: list[str] = sorted(conn.execute(text("SELECT identity FROM changes")).scalars())
        assert ids == sorted(c.identity_hash() for c in kept)
        assert v4.changes_stale()  # derived by older code: derived again on the next read
        rederive_changes(v4, tolerance=TOLERANCE, only_if_stale=True)
        assert not v4.changes_stale()
        assert [c.kind for c in v4.changes()] == [ChangeKind.UPGRADE] * 3
    with Ledger.open(ledger_url) as again:  # nothing is migrated twice
        assert not again.changes_stale()


def test_identity_is_unique_and_new_fields_round_trip(ledger_url: str) -> None:
    cut = change_at(50.0, finished=None, cut_short=CutShort.ABORTED, ended=60.0)
    with Ledger.open(ledger_url) as ledger:
        ledger.replace_changes([], [change_at(10.0), change_at(10.0, finished=20.0), cut])
        assert ledger.changes() == [change_at(10.0), cut]  # one row per identity
        row = R.change_row(change_at(10.0, finished=99.0))  # the same change, later state
        with ledger.engine.begin() as conn, pytest.raises(sa_exc.IntegrityError):
            conn.execute(insert(S.changes).values(**row))
        # A derivation that yields one change twice stores it once.
        assert ledger.rederive_changes(lambda _s, _w, _u: [change_at(1.0), change_at(1.0)]) == 0
        ledger.merge_spans([Span("prod", "shop", "Deployment", "web", "p", "app", "i", None,
                                 1.0, 2.0)])  # fmt: skip
        assert ledger.rederive_changes(lambda _s, _w, _u: [change_at(1.0), change_at(1.0)]) == 1
        assert ledger.changes() == [change_at(1.0)]
        with pytest.raises(InputError, match="ended must be a finite"):
            ledger.replace_changes([], [change_at(70.0, finished=None, ended=float("nan"))])


# -- schema v5 -------------------------------------------------------------------------------

V4_COLUMNS = (*V3_COLUMNS, "cut_short", "ended", "identity")


def test_v4_ledger_is_migrated_to_v5_keeping_everything(ledger_url: str) -> None:
    spans = [
        Span("prod", "shop", "Deployment", "web", f"web-{i}", "app", f"nginx:1.{i}", None,
             1000.0 + i * 600, 1000.0 + i * 600 + 900, pod_uid=f"u{i}")
        for i in range(4)
    ]  # fmt: skip
    kept = [
        change_at(100.0),
        change_at(200.0, workload='we"b <x>', finished=None, cut_short=CutShort.ABORTED,
                  ended=250.0),
    ]  # fmt: skip
    with Ledger.open(ledger_url, migrations=MIGRATIONS[:4]) as v4:
        assert v4.schema_version == 4
        v4.merge_spans(spans, sync_key=SYNC_KEY, synced_from=1000.0, synced_until=4000.0)
        with v4.engine.begin() as conn:
            for c in kept:  # as v4 stored them: without the v5 columns
                row = R.change_row(c)
                conn.execute(
                    text(f"INSERT INTO changes ({', '.join(V4_COLUMNS)}) VALUES "
                         f"({', '.join(':' + n for n in V4_COLUMNS)})"),
                    {n: row[n] for n in V4_COLUMNS},
                )  # fmt: skip
            conn.execute(text("DELETE FROM meta WHERE key = 'changes_stale'"))
        before = (v4.spans(), v4.sync_state(SYNC_KEY), v4.stats())
        assert before[2] == {"spans": 4, "waits": 0, "changes": 2, "sync_state": 1}
    with Ledger.open(ledger_url, migrations=MIGRATIONS[:5]) as v5:
        assert v5.schema_version == 5
        assert (v5.spans(), v5.sync_state(SYNC_KEY), v5.stats()) == before
        assert v5.changes() == kept  # no reasons, no pod counts: what v4 knew
        assert [(c.reasons, c.pods, c.pods_ran, c.waited) for c in v5.changes()] == [
            ((), None, None, None)
        ] * 2
        # Nothing to derive again: without waits the changes are what v4 derived.
        assert not v5.changes_stale()
        assert v5.waits() == []
        # The migrated ledger stores waits and the attempt fields.
        pending = replace(spans[0], pod="web-9", pod_uid="u9", image="nginx:9.9",
                          first_seen=2000.0, last_seen=2400.0)  # fmt: skip
        waiting = Wait(pending, "ImagePullBackOff")
        assert v5.merge_spans([], waits=[waiting], sync_key=SYNC_KEY, synced_until=4000.0) == 1
        assert v5.waits() == [waiting]
        assert v5.changes_stale()
        rederive_changes(v5, tolerance=TOLERANCE, only_if_stale=True)
        failed = [c for c in v5.changes() if c.to_image == "nginx:9.9"]
        assert [(c.state, c.reasons, c.pods, c.pods_ran) for c in failed] == [
            ("failed", ("ImagePullBackOff",), 1, 0)
        ]
    with Ledger.open(ledger_url, migrations=MIGRATIONS[:5]) as again:  # not migrated twice
        assert again.schema_version == 5
        assert again.waits() == [waiting]


@pytest.mark.parametrize("value", ["plain", 'quote" <b>', "ünïcödé 名前 🚀", "x" * 5000, "a\nb"])
def test_frozen_v4_identity_equals_the_model_hash(value: str) -> None:
    c = change_at(123.456, cluster=value, workload=value, to_image=None, to_digest=value)
    assert v4_identity(type("Row", (), R.change_row(c))) == c.identity_hash()
