"""Versioned schema: forward-only migration steps, applied in one transaction on open.

Policy: every schema change is a new :class:`Migration` appended to :data:`MIGRATIONS`
(version N+1) and a matching edit of :mod:`imagetrail.ledger.schema`. A step's DDL is frozen
once released: a fresh ledger runs every step from v1, an old one only the missing steps, so
both end with the same schema. There are no downgrades; a ledger newer than the code is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)

from imagetrail.errors import LedgerError, NotALedger
from imagetrail.ledger import schema


@dataclass(frozen=True, slots=True)
class Migration:
    """Step from schema ``version - 1`` to ``version``; ``apply`` runs inside the transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    """What the ``meta`` table says; ``None`` fields when the database holds no ledger yet."""

    tables: tuple[str, ...]
    application: str | None
    schema_version: int | None


def _create_v1(conn: Connection) -> None:
    # Frozen copy of the v1 tables: later edits of schema.py must not change what v1 creates.
    md = MetaData()
    Table(
        "meta",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    spans = Table(
        "spans",
        md,
        Column("id", schema.IdType, primary_key=True, autoincrement=True),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("signal", String(16), nullable=False),
        Column("cluster", Text, nullable=False),
        Column("namespace", Text, nullable=False),
        Column("workload_kind", Text, nullable=False),
        Column("workload", Text, nullable=False),
        Column("workload_inferred", Boolean, nullable=False),
        Column("pod", Text, nullable=False),
        Column("pod_uid", Text, nullable=False, server_default=""),
        Column("container", Text, nullable=False),
        Column("image", Text, nullable=False),
        Column("digest", Text, nullable=True),
        Column("first_seen", Double, nullable=False),
        Column("last_seen", Double, nullable=False),
    )
    p = schema.prefix_expr
    Index(
        "ix_spans_workload",
        p(spans.c.cluster),
        p(spans.c.namespace),
        p(spans.c.workload),
        p(spans.c.container),
    )
    Index("ix_spans_first_seen", spans.c.first_seen)
    Index("ix_spans_last_seen", spans.c.last_seen)
    changes = Table(
        "changes",
        md,
        Column("id", schema.IdType, primary_key=True, autoincrement=True),
        Column("cluster", Text, nullable=False),
        Column("namespace", Text, nullable=False),
        Column("workload_kind", Text, nullable=False),
        Column("workload", Text, nullable=False),
        Column("container", Text, nullable=False),
        Column("from_image", Text, nullable=True),
        Column("from_digest", Text, nullable=True),
        Column("to_image", Text, nullable=True),
        Column("to_digest", Text, nullable=True),
        Column("kind", String(16), nullable=False),
        Column("started", Double, nullable=False),
        Column("finished", Double, nullable=True),
    )
    Index(
        "ix_changes_workload",
        p(changes.c.cluster),
        p(changes.c.namespace),
        p(changes.c.workload),
        p(changes.c.container),
    )
    Index("ix_changes_started", changes.c.started)
    Table(
        "sync_state",
        md,
        Column("key_hash", String(64), primary_key=True),
        Column("key", Text, nullable=False),
        Column("synced_from", Double, nullable=True),
        Column("synced_until", Double, nullable=True),
        Column("last_success", Double, nullable=True),
        Column("last_error", Text, nullable=True),
    )
    md.create_all(conn)


def _create_v2(conn: Connection) -> None:
    # Frozen copy of the v2 table: deployment events from CI/CD pipelines. "commit" is an SQL
    # keyword, hence commit_sha. Long text columns are indexed by prefix (see schema.py).
    md = MetaData()
    deployments = Table(
        "deployments",
        md,
        Column("id", String(128), primary_key=True),
        Column("cluster", Text, nullable=True),
        Column("namespace", Text, nullable=False),
        Column("workload", Text, nullable=False),
        Column("container", Text, nullable=True),
        Column("image", Text, nullable=False),
        Column("digest", Text, nullable=True),
        Column("commit_sha", String(64), nullable=True),
        Column("commit_time", Double, nullable=True),
        Column("pipeline_url", Text, nullable=True),
        Column("deployed_at", Double, nullable=False),
        Column("received_at", Double, nullable=False),
    )
    p = schema.prefix_expr
    Index("ix_deployments_workload", p(deployments.c.namespace), p(deployments.c.workload))
    Index("ix_deployments_deployed_at", deployments.c.deployed_at)
    md.create_all(conn)


def _create_v3(conn: Connection) -> None:
    # Frozen copy of the v3 table: final impact verdicts, keyed by change and method hashes.
    md = MetaData()
    Table(
        "impacts",
        md,
        Column("change_key", String(64), primary_key=True),
        Column("method", String(64), primary_key=True),
        Column("verdict", String(24), nullable=False),
        Column("reason", Text, nullable=False),
        Column("before_from", Double, nullable=False),
        Column("before_to", Double, nullable=False),
        Column("after_from", Double, nullable=True),
        Column("after_to", Double, nullable=True),
        Column("signals", Text, nullable=False),
        Column("computed_at", Double, nullable=False),
    )
    md.create_all(conn)


def v4_identity(row: Any) -> str:
    """Frozen copy of ``Change.identity_hash()`` (without finished) over a v3 ``changes`` row.

    A test checks it still equals the model's hash; if that ever changes, this copy stays.
    """
    parts = [
        row.cluster,
        row.namespace,
        row.workload_kind,
        row.workload,
        row.container,
        row.from_image or "",
        row.from_digest or "",
        row.to_image or "",
        row.to_digest or "",
        row.kind,
        repr(float(row.started)),
    ]
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _changes_v4(conn: Connection) -> None:
    # Columns are added in place (no table copy: PostgreSQL's id sequence would clash). The
    # rows of a v3 ledger are kept, each with its identity; duplicates that racing writers of
    # older versions left behind are dropped (lowest id kept); and a ledger with spans gets
    # its changes marked stale, so the next sync or read derives them again with cut_short.
    dialect = conn.dialect
    double = Double().compile(dialect=dialect)
    short = String(16).compile(dialect=dialect)
    hashed = String(64).compile(dialect=dialect)
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN cut_short {short}"))
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN ended {double}"))
    # SQLite cannot add a NOT NULL column without a default, nor drop the default later.
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN identity {hashed} NOT NULL DEFAULT ''"))
    md = MetaData()
    changes = Table(
        "changes",
        md,
        Column("id", schema.IdType, primary_key=True),
        Column("cluster", Text),
        Column("namespace", Text),
        Column("workload_kind", Text),
        Column("workload", Text),
        Column("container", Text),
        Column("from_image", Text),
        Column("from_digest", Text),
        Column("to_image", Text),
        Column("to_digest", Text),
        Column("kind", String(16)),
        Column("started", Double),
        Column("identity", String(64)),
    )
    seen: set[str] = set()
    keep: list[dict[str, object]] = []
    drop: list[int] = []
    for row in conn.execute(select(changes).order_by(changes.c.id)):
        identity = v4_identity(row)
        if identity in seen:
            drop.append(row.id)
        else:
            seen.add(identity)
            keep.append({"row_id": row.id, "new_identity": identity})
    for i in range(0, len(drop), 500):
        conn.execute(delete(changes).where(changes.c.id.in_(drop[i : i + 500])))
    if keep:
        conn.execute(
            update(changes)
            .where(changes.c.id == bindparam("row_id"))
            .values(identity=bindparam("new_identity")),
            keep,
        )
    if dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE changes ALTER COLUMN identity DROP DEFAULT"))
    conn.execute(text("CREATE UNIQUE INDEX ix_changes_identity ON changes (identity)"))
    if conn.execute(text("SELECT 1 FROM spans LIMIT 1")).first() is not None:
        _write_meta(conn, {"changes_stale": "migrated-to-v4"})


def _waits_v5(conn: Connection) -> None:
    # Frozen copy of the v5 table: periods a pod container was listed but not running, and
    # why; the span columns plus the reason, merged like spans by a hash of both.
    md = MetaData()
    waits = Table(
        "waits",
        md,
        Column("id", schema.IdType, primary_key=True, autoincrement=True),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("signal", String(16), nullable=False),
        Column("cluster", Text, nullable=False),
        Column("namespace", Text, nullable=False),
        Column("workload_kind", Text, nullable=False),
        Column("workload", Text, nullable=False),
        Column("workload_inferred", Boolean, nullable=False),
        Column("pod", Text, nullable=False),
        Column("pod_uid", Text, nullable=False, server_default=""),
        Column("container", Text, nullable=False),
        Column("image", Text, nullable=False),
        Column("digest", Text, nullable=True),
        Column("first_seen", Double, nullable=False),
        Column("last_seen", Double, nullable=False),
        Column("reason", Text, nullable=False),
    )
    p = schema.prefix_expr
    Index(
        "ix_waits_workload",
        p(waits.c.cluster),
        p(waits.c.namespace),
        p(waits.c.workload),
        p(waits.c.container),
    )
    Index("ix_waits_first_seen", waits.c.first_seen)
    Index("ix_waits_last_seen", waits.c.last_seen)
    md.create_all(conn)
    # The change log gains the attempt fields in place; existing rows have none (a ledger
    # without waits derives the same changes, so they are not marked stale).
    dialect = conn.dialect
    double = Double().compile(dialect=dialect)
    integer = Integer().compile(dialect=dialect)
    conn.execute(text("ALTER TABLE changes ADD COLUMN reasons TEXT NOT NULL DEFAULT ''"))
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN pods {integer}"))
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN pods_ran {integer}"))
    conn.execute(text(f"ALTER TABLE changes ADD COLUMN waited {double}"))


def _impact_events_v6(conn: Connection) -> None:
    # A recorded verdict keeps its events (before, the second ask of a verdict answered
    # without the events the first showed). Rows recorded by v5 have none: NULL, "not read".
    conn.execute(text("ALTER TABLE impacts ADD COLUMN events TEXT"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema: meta, spans, changes, sync_state", _create_v1),
    Migration(2, "deployments: CI/CD deployment events", _create_v2),
    Migration(3, "impacts: final impact verdicts", _create_v3),
    Migration(4, "changes: cut_short, ended, unique identity; changes-stale mark", _changes_v4),
    Migration(5, "waits; changes: reasons, pods, pods_ran, waited", _waits_v5),
    Migration(6, "impacts: events", _impact_events_v6),
)


def check_steps(steps: Sequence[Migration]) -> int:
    """Validate that ``steps`` number 1, 2, ... N without gaps and return N."""
    for expected, step in enumerate(steps, start=1):
        if step.version != expected:
            raise LedgerError(
                f"migration list is broken: step {expected} has version {step.version}"
            )
    if not steps:
        raise LedgerError("migration list is empty")
    return len(steps)


def read_info(conn: Connection) -> LedgerInfo:
    """Read the tables and the ``meta`` marker without writing anything."""
    tables = tuple(sorted(inspect(conn).get_table_names()))
    if "meta" not in tables:
        return LedgerInfo(tables, None, None)
    rows: dict[str, str] = dict(conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all())
    version_text = rows.get("schema_version")
    try:
        version = int(version_text) if version_text is not None else None
    except ValueError:
        version = None
    return LedgerInfo(tables, rows.get("application"), version)


def ensure_ledger(
    conn: Connection,
    where: str,
    *,
    steps: Sequence[Migration],
    create: bool,
    now: float,
    app_version: str,
) -> int:
    """Create or migrate the ledger on ``conn`` (inside the caller's transaction).

    Returns the resulting schema version. Raises :class:`NotALedger` for a foreign database,
    :class:`LedgerError` for a ledger newer than ``steps`` or a missing one with ``create=False``.
    """
    latest = check_steps(steps)
    info = read_info(conn)
    if "meta" not in info.tables:
        if info.tables:
            shown = ", ".join(info.tables[:5]) + (", ..." if len(info.tables) > 5 else "")
            raise NotALedger(
                f"{where} is not an imagetrail ledger: it holds other tables ({shown})",
                hint="point --ledger / IMAGETRAIL_LEDGER at a new file or an empty database",
            )
        if not create:
            raise LedgerError(f"{where} holds no ledger yet", hint="open it with create enabled")
        _apply(conn, steps, 0)
        _write_meta(
            conn,
            {
                "application": schema.APPLICATION_ID,
                "created_at": repr(now),
                "imagetrail_version": app_version,
                "schema_version": str(latest),
            },
        )
        return latest
    if info.application != schema.APPLICATION_ID or info.schema_version is None:
        raise NotALedger(
            f"{where} is not an imagetrail ledger: its meta table lacks the imagetrail marker",
            hint="point --ledger / IMAGETRAIL_LEDGER at a new file or an empty database",
        )
    if info.schema_version > latest:
        raise LedgerError(
            f"{where} has ledger schema v{info.schema_version}; "
            f"this imagetrail only knows up to v{latest}",
            hint="upgrade imagetrail to a version that wrote this ledger (or newer)",
        )
    if info.schema_version < latest:
        _apply(conn, steps, info.schema_version)
        _write_meta(conn, {"schema_version": str(latest), "imagetrail_version": app_version})
    return latest


def _apply(conn: Connection, steps: Sequence[Migration], current: int) -> None:
    for step in steps[current:]:
        step.apply(conn)


def _write_meta(conn: Connection, values: dict[str, str]) -> None:
    conn.execute(delete(schema.meta).where(schema.meta.c.key.in_(list(values))))
    conn.execute(insert(schema.meta), [{"key": k, "value": v} for k, v in values.items()])
