"""The background sync of ``imagetrail serve --prometheus URL``: the engine's sync loop in a thread.

One pass is :func:`imagetrail.service.sync.sync_once`, the same resumable, chunked sync as
``imagetrail sync``; passes repeat every ``follow_interval``. A failing source never stops
the loop (nor the server): the error is kept for ``/api/v1/status`` and the page's banner,
and the next pass retries. With ``grafana_url`` and ``grafana_token`` set, each successful
pass also pushes new changes to Grafana as annotations (``imagetrail annotate``'s push), and
every pass records the impact verdicts of the last week's finished changes in the ledger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from imagetrail.errors import ImagetrailError
from imagetrail.model import Change
from imagetrail.service.query import Query, QueryContext, Window

log = logging.getLogger("imagetrail.web.sync")


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """What the loop last did; times are unix seconds."""

    enabled: bool
    running: bool = False
    passes: int = 0
    failures: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    # With grafana_url and grafana_token set, new changes go to Grafana after each pass.
    annotations_posted: int = 0
    annotate_error: str | None = None
    # Final impact verdicts of the last week's changes, recorded while Prometheus has the data.
    final_verdicts: int = 0
    impact_error: str | None = None


class BackgroundSync:
    """Runs sync passes until :meth:`stop`; :attr:`status` is safe to read from any thread."""

    def __init__(self, context: QueryContext, *, interval: float | None = None) -> None:
        self._context = context
        self._interval = float(
            interval if interval is not None else context.settings.follow_interval
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status = SyncStatus(enabled=True)

    @property
    def status(self) -> SyncStatus:
        with self._lock:
            return self._status

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="imagetrail-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_pass(self) -> None:
        """One sync pass; errors are recorded, never raised."""
        context = self._context
        self._set(running=True)
        try:
            with context.open_ledger() as ledger, context.prometheus_source(Query()) as source:
                result = context.sync(ledger, source)
        except ImagetrailError as exc:
            log.warning("sync failed: %s", exc.message)
            self._set(
                running=False,
                passes=self.status.passes + 1,
                failures=self.status.failures + 1,
                last_error=exc.message,
                last_error_at=time.time(),
            )
            return
        except Exception as exc:  # a bug must not end the loop silently either
            log.exception("sync failed unexpectedly")
            self._set(
                running=False,
                passes=self.status.passes + 1,
                failures=self.status.failures + 1,
                last_error=f"internal error: {type(exc).__name__}",
                last_error_at=time.time(),
            )
            return
        log.info(
            "synced %s through %s: %d spans written",
            result.signal,
            result.end,
            result.spans_written,
        )
        self._set(
            running=False,
            passes=self.status.passes + 1,
            last_success=time.time(),
            last_error=None,
            last_error_at=None,
        )
        self.after_pass()

    def after_pass(self) -> None:
        """The last week of changes, up to the end of the data, read once: pushed to Grafana
        (when configured) and judged. Each step records its own error; none is raised."""
        from imagetrail.service.spans import DEFAULT_RANGE

        try:
            _, end = self._context.window(Query())
            changes = self._context.changes(Query(window=Window(start=end - DEFAULT_RANGE)))
        except ImagetrailError as exc:
            log.warning("reading the recent changes failed: %s", exc.message)
            self._set(impact_error=exc.message)
            return
        self.annotate(changes)
        self.judge(changes, end)

    def judge(self, changes: Sequence[Change], end: float) -> None:
        """Record the verdicts of ``changes`` whose after-window ended before ``end`` (the end
        of the data) or that were cut short (they never get one), so they outlive Prometheus'
        retention; recorded ones cost one read."""
        from imagetrail.service.impact import impacts_for

        after = self._context.settings.impact_after
        over = [
            c
            for c in changes
            if c.cut_short is not None or (c.finished is not None and c.finished + after < end)
        ]
        try:
            found = impacts_for(self._context, over)
        except ImagetrailError as exc:
            log.warning("judging the impact of recent changes failed: %s", exc.message)
            self._set(impact_error=exc.message)
            return
        self._set(final_verdicts=len(found), impact_error=None)

    def annotate(self, changes: Sequence[Change]) -> None:
        """Push ``changes`` to Grafana (those not there yet) when it is configured."""
        settings = self._context.settings
        if not (settings.grafana_url and settings.grafana_token):
            return
        from imagetrail.grafana.annotate import GrafanaTarget, push_annotations

        target = GrafanaTarget(
            settings.grafana_url,
            settings.grafana_token,
            settings.grafana_dashboard_uid,
        )
        try:
            result = push_annotations(changes, target, public_url=settings.public_url)
        except ImagetrailError as exc:
            log.warning("pushing annotations to Grafana failed: %s", exc.message)
            self._set(annotate_error=exc.message)
            return
        self._set(
            annotations_posted=self.status.annotations_posted + len(result.posted),
            annotate_error=None,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_pass()
            self._stop.wait(self._interval)
