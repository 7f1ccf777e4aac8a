"""The ledger: who ran what, when — spans, changes and sync state in SQLite or PostgreSQL.

``Ledger.open(path_or_url)`` creates or migrates it; see docs/ledger.md.
"""

from imagetrail.ledger.migrations import MIGRATIONS, Migration
from imagetrail.ledger.schema import SCHEMA_VERSION
from imagetrail.ledger.store import Ledger, SyncState

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Ledger", "Migration", "SyncState"]
