"""Engine setup per dialect: SQLite pragmas and transaction control, PostgreSQL pooling."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Connection, Engine, create_engine, event

from imagetrail.ledger.target import Target

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another one before giving up."""


def make_engine(target: Target) -> Engine:
    """One pooled Engine for ``target``; SQLite connections get pragmas and explicit BEGINs."""
    if target.dialect != "sqlite":
        return create_engine(target.url, pool_pre_ping=True)
    engine = create_engine(
        target.url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Take transaction control from the sqlite3 module: it would not BEGIN before reads.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("imagetrail_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def enable_wal(engine: Engine) -> None:
    """Switch a SQLite ledger to WAL journaling (readers never block the writer)."""
    # journal_mode cannot change inside a transaction, and is only set once the file is known
    # to be a ledger, so a foreign file is never converted. It persists in the file.
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
    finally:
        raw.close()
