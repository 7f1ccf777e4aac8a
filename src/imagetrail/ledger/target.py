"""Where a ledger lives: a filesystem path (SQLite) or a SQLAlchemy URL (PostgreSQL).

Also the byte-level checks that tell a SQLite ledger from any other file *before* SQLite
touches it, so that opening a wrong file never modifies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from imagetrail.errors import ConfigError, LedgerError, NotALedger

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_NOT_A_LEDGER_HINT = "point --ledger / IMAGETRAIL_LEDGER at an imagetrail ledger or a new file"


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved ledger location.

    ``where`` names it in messages (the path, or the URL with its password masked);
    ``path`` is set for SQLite files.
    """

    url: URL
    where: str
    path: Path | None

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in a message (the URL's password)."""
        return (self.url.password,) if self.url.password else ()


def resolve(target: str | Path) -> Target:
    """Turn ``--ledger`` / ``IMAGETRAIL_LEDGER`` into a :class:`Target`.

    A ``Path`` or a string without ``://`` is a SQLite file path (``~`` expanded). A URL must
    be ``sqlite:///path`` or ``postgresql[+psycopg]://...`` (``postgres://`` is accepted).
    """
    if isinstance(target, Path) or "://" not in target:
        text = str(target)
        if not text.strip() or text == ":memory:":
            raise ConfigError(
                f"ledger path {text!r} is not a file path",
                hint="give a file path such as ledger.db or a postgresql+psycopg:// URL",
            )
        path = Path(text).expanduser().absolute()
        return Target(URL.create("sqlite", database=str(path)), str(path), path)
    try:
        url = make_url(target)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"ledger URL is not a valid SQLAlchemy URL: {_mask_text(target)}",
            hint="use postgresql+psycopg://user:password@host:5432/dbname or a file path",
        ) from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship with; "postgresql://" would pick psycopg2.
        url = url.set(drivername="postgresql+psycopg")
        where = url.render_as_string(hide_password=True)
        require_postgres_driver(where)
        return Target(url, where, None)
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError(
                "an in-memory SQLite ledger is not supported",
                hint="give a file path; history is the point of a ledger",
            )
        return resolve(Path(url.database))
    raise ConfigError(
        f"unsupported ledger database {backend!r} in {url.render_as_string(hide_password=True)}",
        hint="use a file path (SQLite) or a postgresql+psycopg:// URL",
    )


def require_postgres_driver(where: str) -> None:
    """Refuse a PostgreSQL ledger up front when psycopg (the ``postgres`` extra) is missing.

    SQLAlchemy would import it only when connecting, and its ``ImportError`` is no
    :class:`~imagetrail.errors.ImagetrailError`: the user would see a traceback, not the fix.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        # Also "no pq wrapper available": psycopg installed without its binary or libpq.
        raise ConfigError(
            f"ledger {where} needs imagetrail[postgres]: psycopg cannot be imported ({exc})",
            hint="pip install 'imagetrail[postgres]'",
        ) from None


def _mask_text(text: str) -> str:
    # A URL that does not parse may still hold "user:password@"; drop everything before '@'.
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return text


def check_sqlite_file(path: Path, *, create: bool) -> None:
    """Refuse a file that is not (the start of) a SQLite ledger, reading it only.

    A missing or 0-byte file is fine to initialise when ``create`` is true. Anything without
    the SQLite header, or shorter than its header says, raises :class:`NotALedger`.
    """
    if path.is_dir():
        raise NotALedger(
            f"{path} is a directory, not an imagetrail ledger", hint=_NOT_A_LEDGER_HINT
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if not create:
            raise LedgerError(
                f"no ledger at {path}", hint="run a sync first, or check --ledger"
            ) from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the directory for ledger {path}: {exc}") from exc
        return
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror}") from exc
    if size == 0:
        if not create:
            raise LedgerError(f"ledger {path} is empty", hint="run a sync first, or check --ledger")
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(_HEADER_SIZE)
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror}") from exc
    if not header.startswith(SQLITE_MAGIC):
        raise NotALedger(
            f"{path} is not an imagetrail ledger (not an SQLite database)",
            hint=_NOT_A_LEDGER_HINT,
        )
    if len(header) < _HEADER_SIZE:
        raise NotALedger(f"{path} is a truncated SQLite file, not a usable ledger")
    expected = _declared_size(header)
    if expected is not None and size < expected:
        raise NotALedger(
            f"{path} is truncated or corrupt: its header says {expected} bytes, it has {size}",
            hint="restore the ledger from a backup",
        )


def _declared_size(header: bytes) -> int | None:
    """Database size the SQLite header declares, when the header says it is trustworthy."""
    page_size = int.from_bytes(header[16:18], "big")
    if page_size == 1:
        page_size = 65536
    pages = int.from_bytes(header[28:32], "big")
    change_counter = header[24:28]
    valid_for = header[92:96]
    # Per the file format, the in-header size is only valid when valid-for == change counter.
    if pages == 0 or change_counter != valid_for:
        return None
    return page_size * pages
