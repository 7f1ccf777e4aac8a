"""The :class:`Ledger`: spans, waits, changes and sync state in SQLite or PostgreSQL.

One Engine per ledger, connections from its pool, so one ``Ledger`` serves many threads.
Every write is one transaction; on SQLite writes start with ``BEGIN IMMEDIATE`` so that
concurrent writers wait on the busy timeout instead of failing a lock upgrade. Writes of
derived changes also take the *writer lock* (on PostgreSQL a transaction-scoped advisory
lock), so two processes never interleave a derivation.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
)

from imagetrail import __version__
from imagetrail.errors import InputError, LedgerError
from imagetrail.ledger import rows as ledger_rows
from imagetrail.ledger import schema
from imagetrail.ledger.engine import enable_wal, make_engine
from imagetrail.ledger.migrations import MIGRATIONS, Migration, ensure_ledger
from imagetrail.ledger.target import Target, check_sqlite_file, resolve
from imagetrail.ledger.translate import translated
from imagetrail.ledger.upsert import dialect_insert, greatest, least, span_upserter, sync_success
from imagetrail.model import (
    Change,
    Deployment,
    Impact,
    Span,
    Wait,
    Workload,
    check_workload_spec,
)
from imagetrail.scope import Scope

BATCH_ROWS = 5000
"""Rows per upsert statement (PostgreSQL) or executemany call (SQLite)."""
_PG_MIGRATION_LOCK = 0x1D6E7A11  # arbitrary constant: serialises concurrent first opens
_PG_WRITER_LOCK = 0x1D6E7A12  # arbitrary constant: serialises derivations of the changes

Derive = Callable[[list[Span], list[Wait], float], list[Change]]
"""``derive(spans, waits, data_end)``: every change of the ledger's spans and waits
(``data_end`` is the sync watermark, or the last span's or wait's end for a ledger filled
without one). Passed in by the caller: the ledger holds no analysis code."""


@dataclass(frozen=True, slots=True)
class SyncState:
    """How far one source has been synced into the ledger.

    ``key`` is the source key (e.g. ``"ksm|http://prom:9090|tenant"``); ``synced_from`` and
    ``synced_until`` bound the time range already read; ``last_error`` is the error of the
    most recent attempt when it failed (a success clears it).
    """

    key: str
    synced_from: float | None
    synced_until: float | None
    last_success: float | None
    last_error: str | None


class Ledger:
    """An opened ledger. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(
        self, engine: Engine, target: Target, schema_version: int, clock: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.url: str = target.url.render_as_string(hide_password=True)
        self.schema_version = schema_version
        self._target = target
        self._clock = clock
        self._closed = False
        self._lock = threading.Lock()
        self._upsert_spans = span_upserter(target.dialect)
        self._upsert_waits = span_upserter(target.dialect, schema.waits)

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        create: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
        clock: Callable[[], float] = time.time,
    ) -> Ledger:
        """Open (creating or migrating as needed) the ledger at a path or SQLAlchemy URL.

        Raises :class:`~imagetrail.errors.NotALedger` for a file or database that is not a
        ledger (left untouched), :class:`~imagetrail.errors.LedgerError` for one newer than
        this code, and :class:`~imagetrail.errors.ConfigError` for a malformed target.
        ``migrations`` and ``clock`` exist for tests.
        """
        resolved = resolve(target)
        if resolved.path is not None:
            check_sqlite_file(resolved.path, create=create)
        with translated(resolved.where, resolved.secrets):
            engine = make_engine(resolved)
            try:
                with engine.connect() as conn:
                    conn.execution_options(imagetrail_write=True)
                    with conn.begin():
                        if resolved.dialect == "postgresql":
                            conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
                        version = ensure_ledger(
                            conn,
                            resolved.where,
                            steps=migrations,
                            create=create,
                            now=clock(),
                            app_version=__version__,
                        )
                if resolved.path is not None:
                    enable_wal(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine, resolved, version, clock)

    def close(self) -> None:
        """Release every connection; further calls raise :class:`LedgerError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_open()
        with translated(self._target.where, self._target.secrets), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, exclusive: bool = False) -> Iterator[Connection]:
        """One write transaction; ``exclusive`` also takes the writer lock, which a second
        exclusive writer waits for (SQLite's ``BEGIN IMMEDIATE`` already serialises writes)."""
        self._check_open()
        with translated(self._target.where, self._target.secrets), self.engine.connect() as conn:
            conn.execution_options(imagetrail_write=True)
            with conn.begin():
                if exclusive and self._target.dialect == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_WRITER_LOCK)))
                yield conn

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError(f"ledger {self._target.where} is closed")

    # -- spans -------------------------------------------------------------------------------

    def merge_spans(
        self,
        spans: Iterable[Span],
        *,
        waits: Iterable[Wait] = (),
        sync_key: str | None = None,
        synced_from: float | None = None,
        synced_until: float | None = None,
    ) -> int:
        """Upsert spans and waits by key, widening ``[first_seen, last_seen]``; return the rows
        (of both) inserted or changed.

        With ``sync_key``, that source's sync state advances in the same transaction (and its
        last error is cleared), so an interrupted sync resumes exactly where data stopped.
        """
        rows = ledger_rows.merge_rows(spans)
        wait_rows = ledger_rows.merge_wait_rows(waits)
        if sync_key is None and (synced_from is not None or synced_until is not None):
            raise InputError("synced_from/synced_until need a sync_key")
        if sync_key is not None:
            _check_sync_args(sync_key, synced_from, synced_until)
        changed = 0
        with self._write() as conn:
            for chunk in _batched(rows, BATCH_ROWS):
                changed += self._upsert_spans(conn, chunk)
            for chunk in _batched(wait_rows, BATCH_ROWS):
                changed += self._upsert_waits(conn, chunk)
            if changed or sync_key is not None:
                # New spans or waits, or a moved watermark (which decides what is finished,
                # removed or stuck): the changes must be derived again. A fresh token each
                # time, so a derivation that read an older one leaves this mark in place (see
                # rederive_changes).
                _mark_changes_stale(conn, self._target.dialect)
            if sync_key is not None:
                conn.execute(
                    sync_success(self._target.dialect),
                    {
                        "key_hash": ledger_rows.sync_key_hash(sync_key),
                        "key": sync_key,
                        "synced_from": synced_from,
                        "synced_until": synced_until,
                        "last_success": self._clock(),
                        "last_error": None,
                    },
                )
        return changed

    def spans(
        self,
        scope: Scope | None = None,
        *,
        cluster: str | None = None,
        namespace_regex: str | None = None,
        workload: str | None = None,
        container: str | None = None,
        start: float | None = None,
        end: float | None = None,
        signal: str | None = None,
    ) -> list[Span]:
        """Spans in ``scope`` (or the scope the ``cluster``, ``namespace_regex`` and
        ``workload`` keywords make: see :class:`~imagetrail.scope.Scope`); ``[start, end]``
        selects spans overlapping it. The namespace regex is RE2, matching the whole name."""
        conds, keeps = _scoped(
            schema.spans,
            _scope(scope, cluster, namespace_regex, workload),
            container=container,
            start=start,
            end=end,
        )
        if signal is not None:
            conds.append(schema.spans.c.signal == signal)
        with self._read() as conn:
            result = conn.execute(_in_order(schema.spans, conds))
            return [ledger_rows.row_span(row) for row in result if keeps(row.namespace)]

    def waits(
        self,
        scope: Scope | None = None,
        *,
        cluster: str | None = None,
        namespace_regex: str | None = None,
        workload: str | None = None,
        container: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[Wait]:
        """Waits in scope, with the same meaning as in :meth:`spans` (``[start, end]``
        selects waits overlapping it)."""
        conds, keeps = _scoped(
            schema.waits,
            _scope(scope, cluster, namespace_regex, workload),
            container=container,
            start=start,
            end=end,
        )
        with self._read() as conn:
            result = conn.execute(_in_order(schema.waits, conds))
            return [ledger_rows.row_wait(row) for row in result if keeps(row.namespace)]

    def time_bounds(self) -> tuple[float, float] | None:
        """``(min first_seen, max last_seen)`` over all spans, or ``None`` when empty."""
        with self._read() as conn:
            row: Any = conn.execute(
                select(func.min(schema.spans.c.first_seen), func.max(schema.spans.c.last_seen))
            ).one()
        lo, hi = row
        return None if lo is None else (float(lo), float(hi))

    def cluster_ends(self) -> dict[str, float]:
        """Each cluster's newest sample (max ``last_seen`` of its spans): where its data ends."""
        t = schema.spans.c
        with self._read() as conn:
            rows = conn.execute(select(t.cluster, func.max(t.last_seen)).group_by(t.cluster))
            return {str(row[0]): float(row[1]) for row in rows}

    # -- changes -----------------------------------------------------------------------------

    def rederive_changes(self, derive: Derive, *, only_if_stale: bool = False) -> int | None:
        """Derive every change from the spans and waits again and store them; return how many.

        One write transaction under the writer lock: read the spans and waits, ``derive``,
        replace the
        change log and clear the stale mark read at the start — so concurrent callers run one
        after the other (the second waits, then reads the first one's spans too), and a span
        write that commits meanwhile leaves the mark in place for the next reader.
        ``only_if_stale``: do nothing (return ``None``) unless spans were written since the
        changes were last derived.
        """
        if only_if_stale and not self.changes_stale():
            return None
        m = schema.meta.c
        with self._write(exclusive=True) as conn:
            token = conn.execute(select(m.value).where(m.key == schema.CHANGES_STALE)).scalar()
            if only_if_stale and token is None:
                return None  # another writer derived them while this one waited
            spans = [ledger_rows.row_span(row) for row in conn.execute(_in_order(schema.spans, []))]
            waits = [ledger_rows.row_wait(row) for row in conn.execute(_in_order(schema.waits, []))]
            found: list[Change] = []
            if spans or waits:
                newest = select(func.max(schema.sync_state.c.synced_until))
                watermark: float | None = conn.execute(newest).scalar()
                last = max(s.last_seen for s in (*spans, *(w.span for w in waits)))
                found = derive(spans, waits, last if watermark is None else float(watermark))
            rows = _unique_change_rows(found)
            conn.execute(delete(schema.changes))
            for chunk in _batched(rows, BATCH_ROWS):
                conn.execute(insert(schema.changes), chunk)
            if token is not None:
                conn.execute(
                    delete(schema.meta).where(m.key == schema.CHANGES_STALE, m.value == token)
                )
        return len(rows)

    def changes_stale(self) -> bool:
        """Were spans written since the changes were last derived (e.g. by a killed sync)?"""
        m = schema.meta.c
        with self._read() as conn:
            found = conn.execute(select(m.key).where(m.key == schema.CHANGES_STALE)).first()
        return found is not None

    def replace_changes(
        self, workload_keys: Iterable[ledger_rows.WorkloadKey], changes: Iterable[Change]
    ) -> None:
        """Replace the changes of each ``(cluster, namespace, kind, workload, container)`` key.

        Keys of the given changes are replaced too, so no change is ever stored twice.
        One transaction under the writer lock: readers see either the old or the new change
        log of a key. Leaves the stale mark alone (see :meth:`rederive_changes`).
        """
        keys = {tuple(k) for k in workload_keys}
        found = list(changes)
        for change in found:
            keys.add(ledger_rows.change_key(change))
        rows = _unique_change_rows(found)
        c = schema.changes.c
        with self._write(exclusive=True) as conn:
            for cl, ns, kind, wl, ct in sorted(keys):
                conn.execute(
                    delete(schema.changes).where(
                        schema.prefix_eq(c.cluster, cl),
                        schema.prefix_eq(c.namespace, ns),
                        schema.prefix_eq(c.workload, wl),
                        schema.prefix_eq(c.container, ct),
                        c.workload_kind == kind,
                    )
                )
            for chunk in _batched(rows, BATCH_ROWS):
                conn.execute(insert(schema.changes), chunk)

    def changes(
        self,
        scope: Scope | None = None,
        *,
        cluster: str | None = None,
        namespace_regex: str | None = None,
        workload: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[Change]:
        """Changes matching every filter, oldest first.

        A change covers ``[started, finished]`` (either order), or ``[started, ended]`` when it
        was cut short; one in progress lasts until now. It is selected when that overlaps
        ``[start, end]``.
        """
        c = schema.changes.c
        dialect = self._target.dialect
        conds, keeps = _scoped(schema.changes, _scope(scope, cluster, namespace_regex, workload))
        if end is not None:
            lowest = least(dialect, c.started, func.coalesce(c.finished, c.ended, c.started))
            conds.append(lowest <= end)
        if start is not None:
            conds.append(
                or_(
                    func.coalesce(c.finished, c.ended).is_(None),
                    greatest(dialect, c.started, func.coalesce(c.finished, c.ended)) >= start,
                )
            )
        if kinds is not None:
            conds.append(c.kind.in_(ledger_rows.change_kinds(kinds)))
        stmt = (
            select(schema.changes)
            .where(*conds)
            .order_by(c.started, c.cluster, c.namespace, c.workload, c.container, c.id)
        )
        with self._read() as conn:
            result = conn.execute(stmt)
            return [ledger_rows.row_change(row) for row in result if keeps(row.namespace)]

    # -- deployment events -------------------------------------------------------------------

    def record_deployment(self, deployment: Deployment) -> tuple[Deployment, bool]:
        """Store an event unless one with its id exists; ``(stored event, created)``.

        The insert and the read-back are one transaction, so two clients racing with the
        same id both get the one stored event (``created`` is True for exactly one).
        """
        row = ledger_rows.deployment_row(deployment)
        t = schema.deployments
        stmt = (
            dialect_insert(self._target.dialect, t)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[t.c.id])
            .returning(t.c.id)  # rowcount is not reliable here across drivers; RETURNING is
        )
        with self._write() as conn:
            created = conn.execute(stmt).first() is not None
            stored = conn.execute(select(t).where(t.c.id == deployment.id)).one()
        return ledger_rows.row_deployment(stored), created

    def deployments(
        self,
        scope: Scope | None = None,
        *,
        cluster: str | None = None,
        namespace_regex: str | None = None,
        workload: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[Deployment]:
        """Events in scope with ``deployed_at`` in ``[start, end]``, oldest first.

        An event recorded without a cluster matches any ``cluster``; ``workload`` takes the
        usual forms (see :func:`rows.deployment_matches`).
        """
        c = schema.deployments.c
        scope = _scope(scope, cluster, namespace_regex, workload)
        # Events have no kind and may have no cluster: the workload is matched in Python.
        conds, keeps = _scoped(schema.deployments, replace(scope, workload=None), any_cluster=True)
        if scope.workload is not None:
            conds.append(schema.prefix_eq(c.workload, check_workload_spec(scope.workload)[-1]))
        if start is not None:
            conds.append(c.deployed_at >= start)
        if end is not None:
            conds.append(c.deployed_at <= end)
        stmt = select(schema.deployments).where(*conds).order_by(c.deployed_at, c.id)
        with self._read() as conn:
            found = [ledger_rows.row_deployment(row) for row in conn.execute(stmt)]
        return [
            d
            for d in found
            if keeps(d.namespace)
            and (scope.workload is None or ledger_rows.deployment_matches(scope.workload, d))
        ]

    # -- sync state --------------------------------------------------------------------------

    def sync_state(self, sync_key: str) -> SyncState | None:
        """The sync state of one source key, or ``None`` if it never synced or failed."""
        t = schema.sync_state
        with self._read() as conn:
            row = conn.execute(
                select(t).where(t.c.key_hash == ledger_rows.sync_key_hash(sync_key))
            ).one_or_none()
        if row is None:
            return None
        return SyncState(
            key=row.key,
            synced_from=row.synced_from,
            synced_until=row.synced_until,
            last_success=row.last_success,
            last_error=row.last_error,
        )

    def record_sync_error(self, sync_key: str, error: str) -> None:
        """Remember that the latest sync of ``sync_key`` failed with ``error``."""
        _check_sync_args(sync_key, None, None)
        # PostgreSQL text cannot hold NUL; an error message must never fail to be recorded.
        text = error.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
        ins = dialect_insert(self._target.dialect, schema.sync_state).values(
            key_hash=ledger_rows.sync_key_hash(sync_key), key=sync_key, last_error=text
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[schema.sync_state.c.key_hash],
            set_={"last_error": ins.excluded.last_error},
        )
        with self._write() as conn:
            conn.execute(stmt)

    def synced_until(self) -> float | None:
        """The latest ``synced_until`` over all sources (where ledger data ends), or ``None``."""
        with self._read() as conn:
            value = conn.execute(select(func.max(schema.sync_state.c.synced_until))).scalar()
        return None if value is None else float(value)

    # -- meta values --------------------------------------------------------------------------

    def meta_value(self, key: str) -> str | None:
        """The ``meta`` table's value for ``key`` (e.g. ``schema.DEMO_SIMULATION``), or None."""
        with self._read() as conn:
            value = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == key)
            ).scalar()
        return None if value is None else str(value)

    def set_meta_value(self, key: str, value: str) -> None:
        """Set one ``meta`` value (replacing it)."""
        with self._write() as conn:
            conn.execute(delete(schema.meta).where(schema.meta.c.key == key))
            conn.execute(insert(schema.meta).values(key=key, value=value))

    # -- impact verdicts ----------------------------------------------------------------------

    def stored_impacts(self, changes: Collection[Change], method: str) -> dict[Change, Impact]:
        """The recorded verdicts of ``changes`` computed by ``method`` (missing ones left out)."""
        by_key = {c.identity_hash(with_finished=True): c for c in changes}
        t = schema.impacts
        out: dict[Change, Impact] = {}
        keys = list(by_key)
        with self._read() as conn:
            for i in range(0, len(keys), 500):
                stmt = select(t).where(t.c.method == method, t.c.change_key.in_(keys[i : i + 500]))
                for row in conn.execute(stmt):
                    change = by_key[row.change_key]
                    out[change] = ledger_rows.row_impact(row, change)
        return out

    def record_impacts(self, impacts: Iterable[Impact], method: str) -> int:
        """Keep final verdicts (a verdict already recorded for the change and method stays);
        returns how many rows were new."""
        now = time.time()
        rows = [ledger_rows.impact_row(i, method=method, computed_at=now) for i in impacts]
        if not rows:
            return 0
        t = schema.impacts
        stmt = (
            dialect_insert(self._target.dialect, t)
            .on_conflict_do_nothing(index_elements=[t.c.change_key, t.c.method])
            .returning(t.c.change_key)
        )
        added = 0
        with self._write() as conn:
            for row in rows:
                added += conn.execute(stmt.values(**row)).first() is not None
        return added

    def stamp(self) -> tuple[object, ...]:
        """Changes whenever spans are written (every write records its sync state), so a
        copy of the spans made under one stamp is current while the stamp is unchanged."""
        t = schema.sync_state.c
        with self._read() as conn:
            row = conn.execute(
                select(func.count(), func.max(t.synced_until), func.max(t.last_success))
            ).one()
        return tuple(row)

    def changes_stamp(self) -> tuple[object, ...]:
        """Changes whenever the change log is rewritten (new rows get new ids)."""
        c = schema.changes.c
        with self._read() as conn:
            return tuple(conn.execute(select(func.count(), func.max(c.id))).one())

    def workloads(self) -> list[Workload]:
        """Every workload the ledger holds spans or waits of, sorted: the names a filter can
        be checked against (``cluster``, ``namespace`` and workload values)."""
        tables = [schema.spans]
        if self.schema_version >= schema.WAITS_SINCE:
            tables.append(schema.waits)
        found: set[Workload] = set()
        with self._read() as conn:
            for table in tables:
                t = table.c
                rows = conn.execute(
                    select(t.cluster, t.namespace, t.workload_kind, t.workload).distinct()
                )
                found.update(Workload(str(c), str(n), str(k), str(w)) for c, n, k, w in rows)
        return sorted(found, key=lambda w: w.id)

    def stats(self) -> dict[str, int]:
        """Row counts per table: ``spans``, ``waits``, ``changes``, ``sync_state`` (``waits`` is
        0 on a ledger opened with migrations older than the table, which has none)."""
        out = {}
        with self._read() as conn:
            for table in (schema.spans, schema.waits, schema.changes, schema.sync_state):
                if table is schema.waits and self.schema_version < schema.WAITS_SINCE:
                    out[table.name] = 0
                    continue
                out[table.name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
        return out


# -- helpers -----------------------------------------------------------------------------------


def _scope(
    scope: Scope | None, cluster: str | None, namespace_regex: str | None, workload: str | None
) -> Scope:
    """``scope``, or the one the keyword filters of the Python API make (validated alike)."""
    if scope is not None:
        return scope
    return Scope(cluster=cluster, namespace=namespace_regex, workload=workload)


def _scoped(
    table: Table,
    scope: Scope,
    *,
    container: str | None = None,
    start: float | None = None,
    end: float | None = None,
    any_cluster: bool = False,
) -> tuple[list[ColumnElement[bool]], Callable[[str], bool]]:
    """The one place that turns a :class:`Scope` into conditions on ``table`` (spans, waits,
    changes, deployments): SQL conditions, and the namespace test to apply to each row.

    Clusters, a plain namespace and the workload narrow the SQL; a namespace regex is matched
    in Python with RE2 (:mod:`imagetrail.scope`), never by the database's own regex engine,
    whose grammar differs between SQLite and PostgreSQL and from Prometheus'. ``any_cluster``:
    a row without a cluster (a deployment event) is in every cluster. ``start``/``end``
    select rows whose ``[first_seen, last_seen]`` overlaps them (tables with those columns).
    """
    t = table.c

    def in_cluster(cond: ColumnElement[bool]) -> ColumnElement[bool]:
        return or_(t.cluster.is_(None), cond) if any_cluster else cond

    conds: list[ColumnElement[bool]] = []
    if scope.cluster is not None:
        conds.append(in_cluster(schema.prefix_eq(t.cluster, scope.cluster)))
    if scope.clusters:
        conds.append(in_cluster(t.cluster.in_(scope.clusters)))
    if scope.namespace_name is not None:
        conds.append(schema.prefix_eq(t.namespace, scope.namespace_name))
    if scope.workload is not None:
        conds.append(ledger_rows.workload_condition(table, scope.workload))
    if container is not None:
        conds.append(t.container == container)
    if start is not None:
        conds.append(t.last_seen >= start)
    if end is not None:
        conds.append(t.first_seen <= end)
    return conds, scope.namespace_test()


def _in_order(table: Table, conds: list[ColumnElement[bool]]) -> Select[Any]:
    """Rows of spans or waits in the order answers list them (workload container, then
    time and pod; a wait's reason before its id)."""
    t = table.c
    tie = [t.reason] if "reason" in t else []
    return (
        select(table)
        .where(*conds)
        .order_by(
            t.cluster,
            t.namespace,
            t.workload,
            t.container,
            t.first_seen,
            t.pod,
            t.image,
            *tie,
            t.id,
        )
    )


def _unique_change_rows(changes: Iterable[Change]) -> list[ledger_rows.Row]:
    """Rows of ``changes``, the first of any with the same identity (the unique key)."""
    rows: dict[str, ledger_rows.Row] = {}
    for change in changes:
        row = ledger_rows.change_row(change)
        rows.setdefault(row["identity"], row)
    return list(rows.values())


def _mark_changes_stale(conn: Connection, dialect: str) -> None:
    ins = dialect_insert(dialect, schema.meta).values(
        key=schema.CHANGES_STALE, value=uuid.uuid4().hex
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[schema.meta.c.key], set_={"value": ins.excluded.value}
        )
    )


def _batched(rows: Iterable[ledger_rows.Row], size: int) -> Iterator[list[ledger_rows.Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_sync_args(key: str, synced_from: float | None, synced_until: float | None) -> None:
    if not key or "\x00" in key or _has_surrogate(key):
        raise InputError("sync key must be a non-empty Unicode string without NUL")
    for name, value in (("synced_from", synced_from), ("synced_until", synced_until)):
        if value is not None and not math.isfinite(value):
            raise InputError(f"{name} must be a finite unix time, got {value!r}")
    if synced_from is not None and synced_until is not None and synced_from > synced_until:
        raise InputError(f"synced_from {synced_from} is after synced_until {synced_until}")
