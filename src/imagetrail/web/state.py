"""What one running web app holds: settings, the open ledger, the answers, the sync loop."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Any

from imagetrail import __version__
from imagetrail.analysis.spanindex import SpanIndex
from imagetrail.budget import Budget
from imagetrail.ledger import Ledger
from imagetrail.redact import redact, redact_url
from imagetrail.service.query import QueryContext
from imagetrail.settings import Settings
from imagetrail.timeutil import format_time
from imagetrail.web.exporter import ExporterCollector
from imagetrail.web.limits import SHUTTING_DOWN, InFlight, LiveSlots
from imagetrail.web.metrics import WebMetrics
from imagetrail.web.syncer import BackgroundSync, SyncStatus

log = logging.getLogger("imagetrail.web")


class CachedIndex:
    """The ledger's spans as a :class:`SpanIndex`, rebuilt when the ledger's stamp changes.

    One cheap query per request (the stamp) keeps answers current with a sync running in
    this process or anywhere else writing the same ledger; a rebuild reads every span once.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._index: SpanIndex | None = None
        self.builds = 0

    def __call__(self) -> SpanIndex:
        stamp = self._ledger.stamp()
        with self._lock:
            if self._index is None or stamp != self._stamp:
                began = time.perf_counter()
                spans = self._ledger.spans()
                self._index = SpanIndex(spans, data_end=self._ledger.synced_until())
                self._stamp = stamp
                self.builds += 1
                log.info("indexed %d spans in %.2fs", len(spans), time.perf_counter() - began)
            return self._index


class AppState:
    """Shared by every request; the ledger stays open for the app's lifetime."""

    def __init__(self, settings: Settings, ledger: Ledger, *, sync: bool) -> None:
        self.settings = settings
        self.ledger = ledger
        self.index = CachedIndex(ledger)
        # The budgets of the requests being answered (cancelled at shutdown), the live
        # requests' slots, and the background sync's own budget (no limit, but cancellable).
        self.requests = InFlight()
        self.live = LiveSlots(settings.live_concurrency)
        self.background = Budget()
        self.context = QueryContext(
            settings,
            ledger=ledger,
            index=self.index,
            live_max_range=settings.live_max_range,
            background=self.background,
        )
        self.metrics = WebMetrics()
        self.syncer = BackgroundSync(self.context) if sync else None
        self.metrics.registry.register(
            ExporterCollector(
                index=self.index,
                changes=ledger.changes,
                changes_stamp=self._changes_stamp,
                silence=self.context.silence,
                sync_status=self.sync_status,
                tolerance=self.context.tolerance,
                churn_window=float(settings.churn_window),
            )
        )
        self.started = time.time()

    def warm(self) -> None:
        """Build the span index ahead of the first request (errors wait for that request)."""
        try:
            self.index()
        except Exception:  # the request that needs the index reports the error properly
            log.debug("warming the index failed", exc_info=True)

    def _changes_stamp(self) -> object:
        self.context.refresh_changes(self.ledger)  # a sync killed before deriving them
        return self.ledger.changes_stamp()

    def sync_status(self) -> SyncStatus:
        return self.syncer.status if self.syncer is not None else SyncStatus(enabled=False)

    def ready(self) -> tuple[bool, str]:
        """Ready once a sync has completed: this process's first pass when it syncs, else
        any sync recorded in the ledger (``--ledger`` alone, ``demo``)."""
        if self.syncer is not None:
            status = self.syncer.status
            if status.last_success is not None:
                return True, "synced"
            if status.last_error:
                return False, f"first sync not complete: {status.last_error}"
            return False, "first sync in progress"
        if self.ledger.synced_until() is None:
            return False, "the ledger holds no completed sync"
        return True, "ledger"

    def status(self) -> dict[str, Any]:
        # All from the span index the answers use: no query of its own.
        index = self.index()
        bounds = index.bounds
        namespaces: dict[str, list[str]] = {}
        for cluster, namespace in index.scopes():
            namespaces.setdefault(cluster, []).append(namespace)
        sync = asdict(self.sync_status())
        for key in ("last_success", "last_error_at"):
            sync[key] = None if sync[key] is None else format_time(sync[key])
        for key in ("last_error", "annotate_error", "impact_error"):
            # Errors are redacted when made; this also covers text kept from elsewhere.
            if isinstance(sync.get(key), str):
                sync[key] = redact(sync[key])
        ready, reason = self.ready()
        return {
            "version": __version__,
            "ledger": redact_url(self.ledger.url),
            "ready": ready,
            "ready_reason": redact(reason),
            "data_from": None if bounds is None else format_time(bounds[0]),
            "data_until": None if bounds is None else format_time(index.data_end),
            "sync": sync,
            "clusters": sorted(namespaces),
            "namespaces": namespaces,
            "silent_clusters": [
                {
                    "cluster": c.cluster,
                    "last_data": format_time(c.last_data),
                    "silent_for_seconds": round(c.silent_for, 3),
                    "gone": c.gone,
                }
                for c in (self.context.silence().clusters() if bounds is not None else [])
            ],
        }

    def begin_shutdown(self) -> None:
        """Stop the work in progress at its next source query: every request's (they answer
        503) and the background sync's; the sync loop starts no new pass."""
        cancelled = self.requests.cancel_all(SHUTTING_DOWN)
        if cancelled:
            log.info("shutting down: stopping %d requests in progress", cancelled)
        self.background.cancel(SHUTTING_DOWN, http_status=503)
        if self.syncer is not None:
            self.syncer.stop(timeout=0)

    def close(self) -> None:
        self.begin_shutdown()
        if self.syncer is not None:
            self.syncer.stop(timeout=3)
        self.ledger.close()
