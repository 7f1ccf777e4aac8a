"""The one place where SQLAlchemy and driver exceptions become :class:`LedgerError`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from imagetrail.errors import ImagetrailError, LedgerError, NotALedger

_CORRUPT_MARKERS = ("file is not a database", "database disk image is malformed")
_MAX_MESSAGE = 300


def one_line(text: str, secrets: Sequence[str] = ()) -> str:
    """First non-empty line of ``text``, secrets masked, length capped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def translate(exc: BaseException, where: str, secrets: Sequence[str] = ()) -> LedgerError:
    """Build the :class:`LedgerError` (or :class:`NotALedger`) that stands for ``exc``."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    detail = one_line(str(orig) or type(orig).__name__, secrets)
    lowered = detail.lower()
    if any(marker in lowered for marker in _CORRUPT_MARKERS):
        return NotALedger(
            f"{where} is corrupt or not an imagetrail ledger: {detail}",
            hint="restore the ledger from a backup",
        )
    if "database is locked" in lowered:
        return LedgerError(
            f"ledger {where} is busy: {detail}",
            hint="another imagetrail process holds a long write; retry",
        )
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg; SQLite errors have none
    if (
        sqlstate is None and isinstance(exc, sa_exc.OperationalError | sqlite3.OperationalError)
    ) or (sqlstate is not None and sqlstate.startswith(("08", "57P", "53"))):
        return LedgerError(
            f"ledger {where} is unavailable: {detail}",
            hint="check that the ledger is reachable and writable",
        )
    return LedgerError(f"ledger {where}: {detail}")


@contextmanager
def translated(where: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Re-raise database errors raised inside the block as :class:`LedgerError`, chained."""
    try:
        yield
    except ImagetrailError:
        raise
    except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
        raise translate(exc, where, secrets) from exc
