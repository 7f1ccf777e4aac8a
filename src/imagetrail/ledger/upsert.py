"""Dialect-specific SQL: the span, wait and sync-state upserts (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Table,
    bindparam,
    case,
    cast,
    collate,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from imagetrail.ledger import rows as ledger_rows
from imagetrail.ledger import schema


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT construct (both support ``ON CONFLICT ... DO UPDATE``)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    """The smaller of two values; callers pass non-NULL values (the dialects differ on NULL)."""
    # SQLite's two-argument min()/max() are scalar functions; PostgreSQL spells them least/greatest.
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    """The larger of two values; callers pass non-NULL values (the dialects differ on NULL)."""
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _binary(dialect: str, expr: Any) -> Any:
    # Code-point order on both dialects, matching Python's str order used in rows.merge_rows.
    return collate(expr, "C") if dialect == "postgresql" else expr


def span_upserter(
    dialect: str, table: Table = schema.spans
) -> Callable[[Connection, list[ledger_rows.Row]], int]:
    """A function that upserts a batch of span rows (or, with ``table=schema.waits``, wait rows:
    the same columns and merge, plus the reason) and returns how many rows changed."""
    t = table.c
    names = [c.name for c in table.columns if c.name != "id"]
    if dialect == "postgresql":
        # One INSERT ... SELECT FROM unnest(arrays) per batch: one parameter per column however
        # many rows, where a multi-row VALUES list would cost the driver time per placeholder.
        arrays = [
            cast(
                bindparam(n, type_=postgresql.ARRAY(t[n].type)),
                postgresql.ARRAY(t[n].type),
            )
            for n in names
        ]
        src = func.unnest(*arrays).table_valued(*names).render_derived(name="src")
        ins: Any = postgresql.insert(table).from_select(names, select(*(src.c[n] for n in names)))
    else:
        ins = sqlite.insert(table)
    ex = ins.excluded
    ex_inf, old_inf = cast(ex.workload_inferred, Integer), cast(t.workload_inferred, Integer)
    better_owner = or_(
        ex_inf < old_inf,
        (ex_inf == old_inf)
        & (_binary(dialect, ex.workload_kind) < _binary(dialect, t.workload_kind)),
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[t.key_hash],
        set_={
            "first_seen": least(dialect, t.first_seen, ex.first_seen),
            "last_seen": greatest(dialect, t.last_seen, ex.last_seen),
            "workload_kind": case((better_owner, ex.workload_kind), else_=t.workload_kind),
            "workload_inferred": case(
                (better_owner, ex.workload_inferred), else_=t.workload_inferred
            ),
        },
        # Rows that would not change are skipped, so the counts below are real changes only.
        where=or_(ex.first_seen < t.first_seen, ex.last_seen > t.last_seen, better_owner),
    )
    if dialect == "postgresql":
        returning = stmt.returning(t.id)

        def upsert_pg(conn: Connection, rows: list[ledger_rows.Row]) -> int:
            params = {n: [r[n] for r in rows] for n in names}
            return len(conn.execute(returning, params).all())

        return upsert_pg

    def upsert_sqlite(conn: Connection, rows: list[ledger_rows.Row]) -> int:
        # executemany; sqlite3 sums the changes of every row, skipped upserts count 0.
        return int(conn.execute(stmt, rows).rowcount)

    return upsert_sqlite


def sync_success(dialect: str) -> Any:
    """Upsert of a successful sync: widen the synced range, stamp success, clear the error."""
    t = schema.sync_state.c
    ins = dialect_insert(dialect, schema.sync_state)
    ex = ins.excluded

    def widen(pick: Callable[[str, Any, Any], ColumnElement[Any]], old: Any, new: Any) -> Any:
        # NULL means "unknown": keep whichever side is known, else min/max of both.
        return pick(dialect, func.coalesce(new, old), func.coalesce(old, new))

    return ins.on_conflict_do_update(
        index_elements=[t.key_hash],
        set_={
            "synced_from": widen(least, t.synced_from, ex.synced_from),
            "synced_until": widen(greatest, t.synced_until, ex.synced_until),
            "last_success": ex.last_success,
            "last_error": None,
        },
    )
