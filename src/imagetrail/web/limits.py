"""Bounded work per web request: a budget each, live admission, cancellation, body timeout.

Every HTTP request runs under its own :class:`~imagetrail.budget.Budget` (``request_timeout``,
``request_max_queries``), made here at the edge and put in :data:`imagetrail.budget.current`
for the endpoint (Starlette copies the context into the worker thread that runs a plain
``def`` endpoint). The budget is cancelled when

- the client goes away: :class:`RequestLimits` watches ``receive()`` for ``http.disconnect``
  while the endpoint runs (a ``GET`` never reads its body, so nothing else would notice);
- the server shuts down: :class:`InFlight` holds every running request's budget.

Live requests (``source=prometheus``) are admitted at most ``live_concurrency`` at once,
without queueing: a queue would only make the client wait for the same refusal later.
A request body must arrive within ``request_body_timeout`` (408 otherwise).

This is a pure ASGI middleware on purpose: ``BaseHTTPMiddleware`` does not let the
middleware read ``receive()`` alongside the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagetrail import budget
from imagetrail.budget import Budget
from imagetrail.errors import ImagetrailError, LimitExceeded

log = logging.getLogger("imagetrail.web")

RETRY_AFTER = 5
"""Seconds a client refused for ``live_concurrency`` is told to wait (``Retry-After``)."""

SHUTTING_DOWN = "the server is shutting down"


class InFlight:
    """The budgets of the requests being answered, so a shutdown can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: set[Budget] = set()
        self._stopping: str | None = None

    def add(self, work: Budget) -> None:
        """Track ``work``; once the server is stopping it starts cancelled."""
        with self._lock:
            self._budgets.add(work)
            stopping = self._stopping
        if stopping is not None:
            work.cancel(stopping, http_status=503)

    def discard(self, work: Budget) -> None:
        with self._lock:
            self._budgets.discard(work)

    def cancel_all(self, why: str = SHUTTING_DOWN) -> int:
        """Cancel every running request's budget (503), and those of requests yet to come;
        the number cancelled."""
        with self._lock:
            self._stopping = why
            running = list(self._budgets)
        for work in running:
            work.cancel(why, http_status=503)
        return len(running)

    def __len__(self) -> int:
        with self._lock:
            return len(self._budgets)


class LiveSlots:
    """At most ``size`` live requests at once; :meth:`try_acquire` never waits."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._used = 0

    def try_acquire(self) -> bool:
        with self._lock:
            if self._used >= self.size:
                return False
            self._used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._used = max(0, self._used - 1)

    @property
    def used(self) -> int:
        with self._lock:
            return self._used


def too_many_live(size: int) -> LimitExceeded:
    return LimitExceeded(
        f"more than {size} live requests at once (live_concurrency)",
        hint=f"retry in {RETRY_AFTER}s, or ask the ledger (source=ledger)",
        limit="live_concurrency",
        http_status=429,
    )


def body_timeout(seconds: float) -> LimitExceeded:
    return LimitExceeded(
        f"the request body did not arrive within {seconds:g}s (request_body_timeout)",
        hint="send the whole body at once",
        limit="request_body_timeout",
        http_status=408,
    )


def error_headers(exc: ImagetrailError) -> dict[str, str]:
    """Headers an error response carries besides its JSON body."""
    status = exc.http_status
    if status == 429:
        return {"Retry-After": str(RETRY_AFTER)}
    if status in (408, 503):
        # The body is half read, or the server is going: the connection cannot be reused.
        return {"Connection": "close"}
    return {}


def error_response(exc: ImagetrailError) -> JSONResponse:
    """The one rendering of an error: ``{"error", "hint"}`` with the class's status."""
    return JSONResponse(
        {"error": exc.message, "hint": exc.hint},
        status_code=exc.http_status,
        headers=error_headers(exc),
    )


def is_live(scope: Scope) -> bool:
    """An ``/api/v1`` request reading the source live; any ``source=prometheus`` value counts
    (the endpoint may take another one of repeated values: better to count it)."""
    if not str(scope.get("path", "")).startswith("/api/v1/"):
        return False
    raw = scope.get("query_string", b"").decode("latin-1")
    return "prometheus" in parse_qs(raw).get("source", ())


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


class _Exchange:
    """One request's ``receive``/``send`` as the endpoint sees them.

    The body is passed through as it arrives, within the body deadline. Once it is complete
    (at once for a request without one), a watcher task reads ``receive()`` until the
    client disconnects and then cancels the request's budget; the endpoint's own later
    ``receive()`` calls are answered from what the watcher read.
    """

    def __init__(self, receive: Receive, send: Send, work: Budget, body_deadline: float) -> None:
        self._receive = receive
        self._send = send
        self._work = work
        self._body_deadline = body_deadline
        self._body_timeout = max(0.0, body_deadline - time.monotonic())
        self._watched: asyncio.Queue[Message] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._disconnected = False
        self.finished = False

    def watch(self) -> None:
        self._watched = asyncio.Queue()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(self._watched))

    async def _watch(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await self._receive()
            await queue.put(message)
            if message["type"] == "http.disconnect":
                if not self.finished:
                    log.debug("the client went away; stopping the request's work")
                    self._work.cancel("the client went away", http_status=499)
                return

    async def receive(self) -> Message:
        if self._disconnected:
            return {"type": "http.disconnect"}
        if self._watched is not None:
            message = await self._watched.get()
        else:
            remaining = self._body_deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(0.0, remaining)):
                    message = await self._receive()
            except TimeoutError:
                raise body_timeout(self._body_timeout) from None
            if message["type"] == "http.request" and not message.get("more_body", False):
                self.watch()
        if message["type"] == "http.disconnect":
            self._disconnected = True
            if not self.finished:
                self._work.cancel("the client went away", http_status=499)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self._send(message)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher


class RequestLimits:
    """Pure ASGI middleware: a budget per request, live admission, disconnect and body
    deadline. ``requests`` and ``live`` are shared with the app state (shutdown)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        requests: InFlight,
        live: LiveSlots,
        max_queries: int,
        timeout: float,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.requests = requests
        self.live = live
        self.max_queries = max_queries
        self.timeout = timeout
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        live = is_live(scope)
        if live and not self.live.try_acquire():
            await error_response(too_many_live(self.live.size))(scope, receive, send)
            return
        work = Budget(max_queries=self.max_queries, timeout=self.timeout)
        self.requests.add(work)
        exchange = _Exchange(receive, send, work, time.monotonic() + self.body_timeout)
        if not _has_body(scope):
            exchange.watch()
        try:
            with budget.using(work):
                await self.app(scope, exchange.receive, exchange.send)
        finally:
            await exchange.close()
            self.requests.discard(work)
            if live:
                self.live.release()


def client_disconnected(method: str, path: str) -> None:
    """Log a client that went away mid-request: routine, not an error."""
    log.debug("%s %s: the client disconnected", method, path)


__all__ = [
    "RETRY_AFTER",
    "SHUTTING_DOWN",
    "InFlight",
    "LiveSlots",
    "RequestLimits",
    "body_timeout",
    "client_disconnected",
    "error_headers",
    "error_response",
    "is_live",
    "too_many_live",
]
