"""The ledger's tables as the code reads and writes them today (schema version ``SCHEMA_VERSION``).

The DDL that *creates* these tables lives in :mod:`imagetrail.ledger.migrations`, frozen per
version; a test checks that a freshly migrated database matches the definitions here.

Long values: PostgreSQL cannot index a btree entry over ~2.7 kB, yet label values (and so
cluster, namespace, image ...) are unbounded. So span and sync-state identity is a SHA-256
(``key_hash``), and lookup indexes cover only a ``substr`` prefix of each text column; queries
add the same prefix condition next to the exact one (see :func:`prefix_eq`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    literal_column,
)

SCHEMA_VERSION = 6
APPLICATION_ID = "imagetrail-ledger"
"""Value of ``meta.application``: what makes a database an imagetrail ledger."""

DEPLOYMENT_ID_MAX = 128
"""Longest deployment event id (a primary key: it must fit an index entry)."""

INDEX_PREFIX = 128
"""Characters of each text column that the lookup indexes cover (4 x 128 x 4 bytes < 2.7 kB)."""

# SQLite only aliases the rowid for exactly "INTEGER PRIMARY KEY"; PostgreSQL gets a bigint.
IdType = BigInteger().with_variant(Integer(), "sqlite")


def prefix_expr(column: ColumnElement[str]) -> ColumnElement[str]:
    """``substr(column, 1, INDEX_PREFIX)`` with literal bounds, so SQLite matches the index."""
    return func.substr(column, literal_column("1"), literal_column(str(INDEX_PREFIX)))


def prefix_eq(column: ColumnElement[str], value: str) -> ColumnElement[bool]:
    """Exact equality that can use a prefix index: ``substr(col) = value[:N] AND col = value``."""
    # Python slices by code point, as substr counts characters on both dialects. The exact
    # test compares ``column || ''``: SQLite would otherwise propagate ``column = 'v'`` into
    # the substr() term, turning it into a constant that no longer matches the index.
    exact = column.concat(literal_column("''")) == value
    return and_(prefix_expr(column) == value[:INDEX_PREFIX], exact)


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

spans = Table(
    "spans",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
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
Index(
    "ix_spans_workload",
    prefix_expr(spans.c.cluster),
    prefix_expr(spans.c.namespace),
    prefix_expr(spans.c.workload),
    prefix_expr(spans.c.container),
)
Index("ix_spans_first_seen", spans.c.first_seen)
Index("ix_spans_last_seen", spans.c.last_seen)

# v5: periods a pod container was listed with an image but not running, and why
# (imagetrail.model.Wait): the span's columns plus the waiting reason, merged like spans.
# ``key_hash`` is over ``Wait.key()`` (the span's key and the reason).
waits = Table(
    "waits",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
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
Index(
    "ix_waits_workload",
    prefix_expr(waits.c.cluster),
    prefix_expr(waits.c.namespace),
    prefix_expr(waits.c.workload),
    prefix_expr(waits.c.container),
)
Index("ix_waits_first_seen", waits.c.first_seen)
Index("ix_waits_last_seen", waits.c.last_seen)

changes = Table(
    "changes",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
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
    # v4: how a rollout that never finished ended, and Change.identity_hash() (without
    # finished): one row per change, whatever writers race (see Ledger.rederive_changes).
    Column("cut_short", String(16), nullable=True),
    Column("ended", Double, nullable=True),
    Column("identity", String(64), nullable=False),
    # v5: failed and stuck rollouts. ``reasons`` is "" for none, else a JSON list of strings
    # (Change.reasons in order); see rows.change_row.
    Column("reasons", Text, nullable=False, server_default=""),
    Column("pods", Integer, nullable=True),
    Column("pods_ran", Integer, nullable=True),
    Column("waited", Double, nullable=True),
)
Index(
    "ix_changes_workload",
    prefix_expr(changes.c.cluster),
    prefix_expr(changes.c.namespace),
    prefix_expr(changes.c.workload),
    prefix_expr(changes.c.container),
)
Index("ix_changes_started", changes.c.started)
Index("ix_changes_identity", changes.c.identity, unique=True)

sync_state = Table(
    "sync_state",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("synced_from", Double, nullable=True),
    Column("synced_until", Double, nullable=True),
    Column("last_success", Double, nullable=True),
    Column("last_error", Text, nullable=True),
)

# v2: deployment events posted by CI/CD pipelines (imagetrail.service.deployments).
deployments = Table(
    "deployments",
    metadata,
    Column("id", String(DEPLOYMENT_ID_MAX), primary_key=True),
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
Index(
    "ix_deployments_workload",
    prefix_expr(deployments.c.namespace),
    prefix_expr(deployments.c.workload),
)
Index("ix_deployments_deployed_at", deployments.c.deployed_at)

# v3: impact verdicts (imagetrail.service.impact), kept once final, so they outlive Prometheus'
# retention of the metrics they were computed from. Keyed by a hash of the change's identity
# and of the method (thresholds, windows, queries): another method computes afresh.
impacts = Table(
    "impacts",
    metadata,
    Column("change_key", String(64), primary_key=True),
    Column("method", String(64), primary_key=True),
    Column("verdict", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    Column("before_from", Double, nullable=False),
    Column("before_to", Double, nullable=False),
    Column("after_from", Double, nullable=True),
    Column("after_to", Double, nullable=True),
    Column("signals", Text, nullable=False),  # JSON list, one object per SignalResult
    Column("computed_at", Double, nullable=False),
    # v6: JSON list, one object per EventCount; NULL when not read (rows recorded by v5)
    Column("events", Text, nullable=True),
)

CHANGES_STALE = "changes_stale"
"""``meta`` key present while spans were written after the changes were last derived; its
value is a random token, so a derivation clears only the mark it read (see docs/ledger.md)."""

DEMO_SIMULATION = "demo_simulation"
"""``meta`` key of a ledger written by ``imagetrail demo``: the simulator's parameters as JSON
(seed, start, days), enough to simulate the same fleet again for its signals."""

TABLES = ("meta", "spans", "changes", "sync_state", "deployments", "impacts", "waits")

WAITS_SINCE = 5
"""Schema version that added the ``waits`` table."""
