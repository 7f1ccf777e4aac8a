"""How much work one request may do: a query count, a deadline, and cancellation.

A web request that reads the source live (``source=prometheus``) may fan out into many
Prometheus queries. Its :class:`Budget` is made once at the edge (the web app, from the
settings) and travels with the work: every source client calls :meth:`Budget.spend` before
each HTTP attempt, so a request over its query count, past its deadline, whose client went
away, or caught by a shutdown stops at its next query instead of running on for minutes.

The budget in force is a context variable (:data:`current`), read where a source client is
made; threads started for the work get the budget object itself, not the variable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from imagetrail.errors import LimitExceeded


class Budget:
    """A query allowance and a deadline for one piece of work; thread-safe.

    ``max_queries``: source requests (attempts, retries included) allowed; ``None``: any.
    ``timeout``: seconds from now until the deadline; ``None``: none.
    """

    def __init__(
        self,
        *,
        max_queries: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.max_queries = max_queries
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.spent = 0
        self._lock = threading.Lock()
        self._cancelled: LimitExceeded | None = None
        # Set by cancel(): wakes every sleep() at once.
        self._woken = threading.Event()

    def cancel(self, why: str, *, http_status: int = 499) -> None:
        """Stop the work at its next query (the client went away, the server stops)."""
        with self._lock:
            if self._cancelled is None:
                self._cancelled = LimitExceeded(why, http_status=http_status)
        self._woken.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled is not None

    def remaining(self) -> float | None:
        """Seconds left until the deadline (never below 0), ``None`` without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (a retry's backoff), waking early when the work is cancelled or
        its deadline passes; True when the whole wait passed and the work may go on."""
        remaining = self.remaining()
        wait = seconds if remaining is None else min(seconds, remaining)
        woken = self._woken.wait(max(0.0, wait))
        return not woken and (remaining is None or seconds < remaining)

    def check(self) -> None:
        """Raise if the work must stop now (cancelled or past the deadline)."""
        if self._cancelled is not None:
            raise self._cancelled
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise LimitExceeded(
                f"the request ran out of time after {self.timeout:g}s (request_timeout)",
                hint="narrow the time range or the filters, or raise request_timeout",
                limit="request_timeout",
                http_status=504,
            )

    def spend(self, queries: int = 1) -> None:
        """Account for ``queries`` source requests about to be sent; raise if not allowed."""
        self.check()
        with self._lock:
            self.spent += queries
            over = self.max_queries is not None and self.spent > self.max_queries
        if over:
            raise LimitExceeded(
                f"the answer needs more than {self.max_queries} source queries "
                "(request_max_queries)",
                hint="narrow the time range or the filters, or ask the ledger (source=ledger)",
                limit="request_max_queries",
            )


current: ContextVar[Budget | None] = ContextVar("imagetrail_budget", default=None)


@contextmanager
def using(budget: Budget | None) -> Iterator[Budget | None]:
    """Make ``budget`` the one in force for the code inside the block."""
    token = current.set(budget)
    try:
        yield budget
    finally:
        current.reset(token)


__all__ = ["Budget", "current", "using"]
