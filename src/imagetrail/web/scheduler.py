"""The scheduled report of ``imagetrail serve``: a thread that builds and delivers the
report on the ``report_schedule`` cron expression (UTC).

Each run reads the app's own ledger (through its span index), then delivers to every
configured target: ``report_output`` (a file), SMTP (``smtp_host``), apprise
(``report_notify``). A failure is recorded for :meth:`ReportScheduler.status` and logged,
never raised: the web server keeps serving and the next run tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagetrail.errors import ImagetrailError
from imagetrail.service.query import Query, QueryContext
from imagetrail.timeutil import format_time

log = logging.getLogger("imagetrail.web.report")


class ReportScheduler:
    """Runs the report on a cron schedule until :meth:`stop`; :meth:`status` is thread-safe."""

    def __init__(
        self, context: QueryContext, schedule: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        from croniter import croniter

        if not croniter.is_valid(schedule):
            raise ImagetrailError(f"not a cron expression: {schedule!r}")
        self._context = context
        self.schedule = schedule
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._after = 0.0  # never schedule at or before the last scheduled time again
        self._status: dict[str, Any] = {
            "enabled": True,
            "schedule": schedule,
            "running": False,
            "next_run": None,
            "runs": 0,
            "failures": 0,
            "last_run": None,
            "last_success": None,
            "last_error": None,
            "last_delivered": [],
        }

    def targets(self) -> dict[str, bool]:
        settings = self._context.settings
        return {
            "file": bool(settings.report_output),
            "mail": bool(settings.smtp_host),
            "chat": bool(settings.report_notify),
        }

    def status(self) -> dict[str, Any]:
        """What the scheduler last did, for ``/api/v1/status``; times as RFC 3339."""
        with self._lock:
            out = dict(self._status)
        out["last_delivered"] = list(out["last_delivered"])
        for key in ("next_run", "last_run", "last_success"):
            out[key] = None if out[key] is None else format_time(out[key])
        return out

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._status.update(changes)

    def next_run(self, after: float) -> float:
        """The first scheduled time strictly after ``after`` (UTC)."""
        from croniter import croniter

        start = datetime.fromtimestamp(max(after, self._after), UTC)
        return float(croniter(self.schedule, start).get_next(float))

    def start(self) -> None:
        if not any(self.targets().values()):
            log.warning(
                "report_schedule is set but the report goes nowhere: "
                "set report_output, smtp_host or report_notify"
            )
        self._thread = threading.Thread(target=self._run, name="imagetrail-report", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def is_alive(self) -> bool:
        """True while the scheduling thread runs (False after :meth:`stop` returned)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop waiting at once; a run in progress is given ``timeout`` seconds to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self.next_run(self._clock())
            self._after = due
            self._set(next_run=due)
            if self._stop.wait(max(0.0, due - self._clock())):
                return
            self.run_once(now=due)

    def run_once(self, *, now: float | None = None) -> bool:
        """Build and deliver one report; True when every delivery succeeded."""
        from imagetrail.report import deliver, make_report

        now = self._clock() if now is None else now
        settings = self._context.settings
        targets = self.targets()
        self._set(running=True)
        errors: list[str] = []
        done: list[str] = []
        try:
            if not any(targets.values()):
                errors.append(
                    "nothing to deliver to: set report_output, smtp_host or report_notify"
                )
            else:
                report = make_report(self._context, Query(), now=now)
                output = settings.report_output
                result = deliver(
                    report,
                    settings,
                    output=Path(output) if output else None,
                    fmt=settings.report_format,
                    mail=targets["mail"],
                    chat=targets["chat"],
                )
                done.extend(result.done)
                errors.extend(e.message for e in result.errors)
        except ImagetrailError as exc:
            errors.append(exc.message)
        except Exception as exc:  # a bug must not end the schedule silently either
            log.exception("the scheduled report failed unexpectedly")
            errors.append(f"internal error: {type(exc).__name__}")
        with self._lock:
            status = self._status
            status.update(running=False, runs=status["runs"] + 1, last_run=now, last_delivered=done)
            if errors:
                status.update(failures=status["failures"] + 1, last_error="; ".join(errors))
            else:
                status.update(last_success=now, last_error=None)
        for line in done:
            log.info("scheduled report: %s", line)
        if errors:
            log.warning("scheduled report: %s", "; ".join(errors))
        return not errors


def start_scheduler(context: QueryContext) -> ReportScheduler | None:
    """A started scheduler when ``report_schedule`` is set, else None."""
    schedule = context.settings.report_schedule
    if not schedule:
        return None
    scheduler = ReportScheduler(context, schedule)
    scheduler.start()
    return scheduler
