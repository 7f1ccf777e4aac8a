"""Engine setup per dialect: SQLite pragmas and transaction control, PostgreSQL pooling."""

from __future__ import annotations

import sqlite3
import time

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
    #
    # SQLite does not call the busy handler for this switch: it reads page 1 in a read
    # transaction, then upgrades it to a write one, and an upgrade that meets another
    # connection's write lock (e.g. a second process's ``BEGIN IMMEDIATE`` in Ledger.open)
    # fails with SQLITE_BUSY at once, to avoid deadlock. So retry it here for as long as the
    # busy timeout. Once the file is WAL the pragma only reads, and cannot fail this way.
    raw = engine.raw_connection()
    try:
        conn: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        raw.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "database is locked" in str(exc)
