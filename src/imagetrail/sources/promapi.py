"""One synchronous client for the Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

JSON is parsed only here, into :class:`QueryResult`/:class:`Series`; every httpx and JSON
failure is translated in :meth:`PromClient._request` into the tree of :mod:`imagetrail.errors`.
The client is thread-safe: one ``httpx.Client`` (with its connection pool) is shared, and the
counters in :class:`RequestStats` are guarded by a lock.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from imagetrail import __version__, redact
from imagetrail.budget import Budget
from imagetrail.errors import (
    ConfigError,
    InputError,
    MalformedResponse,
    PartialAnswer,
    QueryRejected,
    SourceUnavailable,
)
from imagetrail.sources.promql import check_label_name

__all__ = ["PromClient", "PromConfig", "QueryResult", "RequestStats", "Series"]

logger = logging.getLogger("imagetrail.sources")

# Every 5xx is worth another try except those that say the server cannot ever do it (501 Not
# Implemented, 505 HTTP Version Not Supported) or a proxy wants a login (511); 429 asks us
# to slow down, 408 says the request itself was slow to arrive (the question is safe to repeat).
_RETRY_4XX = frozenset({408, 429})
_NEVER_RETRY_5XX = frozenset({501, 505, 511})
_RETRY_AFTER_MAX = 60.0  # never let a server park us for longer than this per attempt
_QUERY_IN_ERRORS = 200
_HINT_NETWORK = "check --prometheus (URL and path prefix) and that the server is reachable"
_HINT_TIMEOUT = "the query may be too heavy; narrow the time range or raise the timeout"
_REJECT_HINTS = {
    401: "check the credentials",
    403: "check the credentials",
    404: "check the path prefix in --prometheus (e.g. /prometheus, /select/0/prometheus)",
}
_SENSITIVE_HEADER_WORDS = ("auth", "token", "key", "secret", "password", "cookie")
# PromQL annotations (Prometheus >= 2.48 sends them in `warnings`, Thanos and Mimir pass them
# on) judge the query, not the data: they do not make an answer partial. Every other warning
# does: the words for a store or replica that did not answer are not a closed list, so only
# what is known to be harmless is let through ("N more annotations omitted" is not: the
# omitted ones may be storage warnings).
_ANNOTATION_PREFIXES = ("PromQL info:", "PromQL warning:")
_IS_PARTIAL = '"isPartial": true'  # VictoriaMetrics cluster's mark, quoted as it is
_PARTIAL_SHOWN = 3  # warnings quoted in a PartialAnswer message
_PARTIAL_CHARS = 300  # of each
_HINT_PARTIAL = (
    "a store, shard or storage node behind the source did not answer; nothing of this chunk "
    "is stored and the next sync reads it again (to store partial answers anyway, set "
    "accept_partial, IMAGETRAIL_ACCEPT_PARTIAL=true)"
)


@dataclass(frozen=True)
class PromConfig:
    """How to reach one Prometheus-compatible server.

    ``url`` may carry a path prefix (``/prometheus``, ``/select/0/prometheus``). Credentials
    written into the URL (``https://user:pass@host``) are moved to ``basic_auth`` so that the
    URL can be shown in messages. ``repr`` never shows secrets.
    """

    url: str
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    tenant: str | None = None  # Mimir/Cortex X-Scope-OrgID
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.5
    # Most seconds one request may spend waiting between its attempts, all together.
    retry_budget: float = 120.0
    max_points: int = 11000
    # Use an answer still marked partial after the retries (logged at WARNING) instead of
    # raising PartialAnswer.
    accept_partial: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{redact.redact_url(self.url)!r} is not an http(s) URL",
                hint="use e.g. --prometheus http://prometheus:9090",
            )
        if parts.query or parts.fragment:
            raise ConfigError(
                f"the Prometheus URL {redact.redact_url(self.url)!r} must not have a query "
                "or fragment"
            )
        if parts.username is not None or parts.password is not None:
            if self.basic_auth is None:
                object.__setattr__(self, "basic_auth", (parts.username or "", parts.password or ""))
            object.__setattr__(self, "url", redact.strip_userinfo(self.url))
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ConfigError("use either a bearer token or basic auth, not both")
        for name, secret in (("bearer token", self.bearer_token), ("tenant", self.tenant)):
            if secret is not None and not _is_header_safe(secret):
                raise ConfigError(f"the {name} contains characters not allowed in an HTTP header")
        if not (self.timeout > 0 and self.backoff >= 0 and self.retries >= 0):
            raise ConfigError("timeout must be > 0, retries and backoff >= 0")
        if self.max_points < 2:
            raise ConfigError("max_points must be at least 2")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def __repr__(self) -> str:
        auth = "basic ***" if self.basic_auth else "bearer ***" if self.bearer_token else None
        return (
            f"PromConfig(url={self.url!r}, auth={auth!r}, tenant={self.tenant!r}, "
            f"headers={sorted(self.headers)!r}, timeout={self.timeout!r}, "
            f"retries={self.retries!r}, accept_partial={self.accept_partial!r})"
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message or log line."""
        found = [self.bearer_token or ""]
        if self.basic_auth:
            found.append(self.basic_auth[1])
        found += [
            value
            for name, value in self.headers.items()
            if any(word in name.lower() for word in _SENSITIVE_HEADER_WORDS)
        ]
        return tuple(s for s in found if len(s) >= 3)


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a result; a vector or scalar sample has exactly one ``(time, value)``."""

    labels: Mapping[str, str] = field(hash=False)
    values: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A parsed ``/api/v1/query`` or ``/query_range`` answer.

    ``result_type`` is ``vector``, ``matrix``, ``scalar`` or ``string``; a scalar becomes one
    series without labels, a string result is in ``string`` (``series`` is then empty).
    Native histogram samples are not float samples and are left out. ``warnings`` holds the
    server's warnings: PromQL annotations, or partiality signs of an answer used only because
    ``accept_partial`` is set (otherwise a partial answer raises :class:`PartialAnswer`).
    """

    result_type: str
    series: tuple[Series, ...]
    warnings: tuple[str, ...] = ()
    string: str | None = None


class RequestStats:
    """Thread-safe counters of HTTP requests made by one client (retries count too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0
        self._seconds = 0.0

    def record(self, nbytes: int, seconds: float) -> None:
        """Count one request that received ``nbytes`` body bytes (as on the wire)."""
        with self._lock:
            self._requests += 1
            self._bytes += nbytes
            self._seconds += seconds

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._seconds

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"RequestStats(requests={self._requests}, bytes_received={self._bytes}, "
                f"seconds={self._seconds:.3f})"
            )


class _BadShape(Exception):
    """Internal: the JSON is valid but not shaped like the API; becomes MalformedResponse."""


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying.

    ``delay``: the server's Retry-After (seconds); ``hint``: for the error if we give up;
    ``final``: the error to raise instead of SourceUnavailable if we give up.
    """

    def __init__(
        self,
        what: str,
        delay: float | None = None,
        hint: str = _HINT_NETWORK,
        final: MalformedResponse | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.delay = delay
        self.hint = hint
        self.final = final


class PromClient:
    """Synchronous, thread-safe client for the Prometheus HTTP API."""

    def __init__(
        self,
        config: PromConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.config = config
        # The work this client does for one request (a web request's query count, deadline
        # and cancellation); None: unbounded (sync, the CLI).
        self.budget = budget
        # The wait between attempts; None: the budget's (wakes up on cancellation and at the
        # deadline), or time.sleep without a budget. Tests pass one that only records.
        self._sleep = sleep
        self.stats = RequestStats()
        self._secrets = config.secrets()
        # Also when the config was not made by settings.load (library use, tests): every
        # message and log line of the process masks them.
        redact.register(*self._secrets)
        if config.basic_auth:
            redact.register_basic_auth(*config.basic_auth)
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": f"imagetrail/{__version__}",
            **config.headers,
        }
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        if config.tenant:
            headers["X-Scope-OrgID"] = config.tenant
        self._http = httpx.Client(
            base_url=config.url.rstrip("/") + "/",
            headers=headers,
            auth=httpx.BasicAuth(*config.basic_auth) if config.basic_auth else None,
            verify=_verify(config),
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            # A redirect is usually a proxy's login page; following it would also carry
            # tenant and custom headers to another host.
            follow_redirects=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"PromClient({self.config!r})"

    # -- API endpoints -----------------------------------------------------------------------

    def query(self, promql: str, *, time: float | None = None) -> QueryResult:
        """Evaluate an instant query (at ``time``, default: the server's now)."""
        form = {"query": promql}
        if time is not None:
            form["time"] = _fmt_time(round(time * 1000))
        data, warnings = self._request("POST", "api/v1/query", data=form, query=promql)
        return self._parse(data, warnings, "api/v1/query")

    def query_range(self, promql: str, *, start: float, end: float, step: float) -> QueryResult:
        """Evaluate a range query; split into pieces of at most ``max_points`` steps.

        Pieces cover disjoint sets of the timestamps ``start + k*step`` so the stitched
        matrix has no duplicates at the seams. Times are rounded to milliseconds.
        """
        start_ms, end_ms, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        if step_ms <= 0 or not math.isfinite(step):
            raise InputError(f"query_range step must be at least 1ms, got {step!r}")
        if end_ms < start_ms:
            raise InputError("query_range end is before start")
        points = (end_ms - start_ms) // step_ms + 1
        per_piece = self.config.max_points
        merged: dict[tuple[tuple[str, str], ...], tuple[Mapping[str, str], dict[float, float]]]
        merged = {}
        warnings: list[str] = []
        for first in range(0, points, per_piece):
            last = min(first + per_piece, points) - 1
            form = {
                "query": promql,
                "start": _fmt_time(start_ms + first * step_ms),
                "end": _fmt_time(start_ms + last * step_ms),
                "step": _fmt_time(step_ms),
            }
            data, piece_warnings = self._request(
                "POST", "api/v1/query_range", data=form, query=promql
            )
            piece = self._parse(data, piece_warnings, "api/v1/query_range")
            if piece.result_type != "matrix":
                raise self._malformed(
                    f"answered a {piece.result_type}, not a matrix", "api/v1/query_range"
                )
            warnings += [w for w in piece.warnings if w not in warnings]
            for series in piece.series:
                key = tuple(sorted(series.labels.items()))
                # A server that aligns pieces to its own grid (Mimir's step alignment) may
                # repeat a timestamp at a seam; the dict keeps exactly one sample per time.
                merged.setdefault(key, (series.labels, {}))[1].update(series.values)
        stitched = tuple(
            Series(labels, tuple(sorted(samples.items()))) for labels, samples in merged.values()
        )
        return QueryResult("matrix", stitched, tuple(warnings))

    def series(self, match: Sequence[str], *, start: float, end: float) -> list[dict[str, str]]:
        """The label sets of the series matching any of the ``match`` selectors."""
        if not match:
            raise InputError("series() needs at least one match[] selector")
        form: dict[str, Any] = {
            "match[]": list(match),
            "start": _fmt_time(round(start * 1000)),
            "end": _fmt_time(round(end * 1000)),
        }
        data, _ = self._request("POST", "api/v1/series", data=form, query=" or ".join(match))
        if not isinstance(data, list):
            raise self._malformed("the series answer is not a list")
        return [self._labels(item) for item in data]

    def label_values(
        self,
        label: str,
        *,
        match: Sequence[str] = (),
        start: float | None = None,
        end: float | None = None,
    ) -> list[str]:
        """The values of ``label``, optionally limited to series matching ``match``."""
        check_label_name(label)
        params: dict[str, Any] = {}
        if match:
            params["match[]"] = list(match)
        if start is not None:
            params["start"] = _fmt_time(round(start * 1000))
        if end is not None:
            params["end"] = _fmt_time(round(end * 1000))
        data, _ = self._request(
            "GET", f"api/v1/label/{label}/values", params=params, query=" or ".join(match)
        )
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise self._malformed("the label values answer is not a list of strings")
        return list(data)

    def buildinfo(self) -> dict[str, str] | None:
        """The server's build information (``version``, ``revision``, ...).

        None where the endpoint does not exist (404) or tells nothing (VictoriaMetrics).
        """
        answer = self._request_or_404("GET", "api/v1/status/buildinfo", query="", allow_404=True)
        if answer is None:
            return None
        data = answer[0]
        if not isinstance(data, dict):
            raise self._malformed("the buildinfo answer is not an object")
        info = {str(k): str(v) for k, v in data.items() if isinstance(v, str | int | float)}
        # VictoriaMetrics 1.79 answers success with empty data: as good as no endpoint.
        return info or None

    # -- transport and error translation (the one place) -------------------------------------

    def _parse(self, data: Any, warnings: tuple[str, ...], path: str) -> QueryResult:
        try:
            return _parse_query_data(data, warnings)
        except _BadShape as exc:
            raise self._malformed(str(exc), path) from None

    def _scrub(self, text: str) -> str:
        return redact.redact(text, self._secrets)

    def _where(self, path: str) -> str:
        return f"{self.config.url.rstrip('/')}/{path}"

    def _malformed(self, what: str, path: str = "") -> MalformedResponse:
        where = self._where(path) if path else self.config.url
        return MalformedResponse(
            self._scrub(f"{where}: {what}"),
            hint="is --prometheus the API itself (not a UI, a proxy login or a wrong path prefix)?",
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: str,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[Any, tuple[str, ...]]:
        """Send with retries; return the API's ``data`` and ``warnings``."""
        answer = self._request_or_404(method, path, query=query, data=data, params=params)
        assert answer is not None  # only None when allow_404 is set
        return answer

    def _request_or_404(
        self,
        method: str,
        path: str,
        *,
        query: str,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        allow_404: bool = False,
    ) -> tuple[Any, tuple[str, ...]] | None:
        """Send with retries; every httpx/JSON failure is translated here, in _attempt or in
        _decode.

        One policy for every transient failure (:class:`_Retry`): at most ``retries`` more
        attempts, waiting with jittered exponential backoff (or the server's Retry-After), and
        never more than ``retry_budget`` seconds of waiting in all; a wait that would pass it
        gives up at once. Giving up is one :class:`SourceUnavailable` line. The request's
        :class:`Budget` is spent per attempt and its :class:`LimitExceeded` passes unchanged.

        An answer the server marks partial is retried the same way; still partial after the
        last attempt it raises :class:`PartialAnswer`, or is used (and logged once at
        WARNING) when ``accept_partial`` is set.
        """
        started = time.monotonic()
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                status, headers, body = self._attempt(method, path, data, params)
                answer = self._decode(path, status, headers, body, query, allow_404)
            except _Retry as retry:
                if self.budget is not None:
                    self.budget.check()  # a deadline or cancellation is the real reason
                delay = self._next_wait(attempt, retry.delay, waited)
                if delay is None and retry.final is not None:
                    raise retry.final from retry.__cause__
                if delay is None:
                    raise SourceUnavailable(
                        self._scrub(
                            f"{self._where(path)}: {retry.what} ({self._gave_up(attempt, started)})"
                        ),
                        hint=retry.hint,
                    ) from retry.__cause__
                self._wait(path, delay, retry.what)
                waited += delay
                continue
            if answer is None:
                return None
            # Not `data`: that name holds the request's form, sent again on a retry.
            result, warnings, partial = answer
            if not partial:
                if attempt > 1:
                    logger.info(
                        "%s answered after %d attempts in %.1fs",
                        self._where(path),
                        attempt,
                        time.monotonic() - started,
                    )
                return result, warnings
            # Scrubbed before shortening, so no cut leaves half a secret behind.
            partial = tuple(self._scrub(w) for w in partial)
            quoted = _quote_partial(partial)
            delay = self._next_wait(attempt, None, waited)
            if delay is not None:
                self._wait(path, delay, f"partial answer: {quoted}")
                waited += delay
                continue
            tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
            if self.config.accept_partial:
                logger.warning(
                    "%s: using a partial answer (accept_partial) after %s: %s",
                    self._where(path),
                    tries,
                    quoted,
                )
                return result, warnings
            raise PartialAnswer(
                f"{self._where(path)}: the answer stayed partial after {tries}: {quoted}",
                hint=_HINT_PARTIAL,
                warnings=partial,
            )

    def _next_wait(self, attempt: int, retry_after: float | None, waited: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None: give up now (out of attempts,
        or the wait would take the request past its retry budget)."""
        if attempt > self.config.retries:
            return None
        if retry_after is not None:
            delay = retry_after
        else:
            base = self.config.backoff * 2 ** (attempt - 1)
            delay = base / 2 + random.uniform(0, base / 2)
        if waited + delay > self.config.retry_budget:
            return None
        return delay

    def _wait(self, path: str, delay: float, what: str) -> None:
        """Sleep before the next attempt; a cancelled or expired budget ends it early."""
        logger.debug("retrying %s in %.2fs: %s", path, delay, self._scrub(what))
        if self._sleep is not None:
            self._sleep(delay)
        elif self.budget is not None:
            self.budget.sleep(delay)
        else:
            time.sleep(delay)
        if self.budget is not None:
            self.budget.check()

    @staticmethod
    def _gave_up(attempts: int, started: float) -> str:
        seconds = time.monotonic() - started
        return f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {seconds:.1f}s"

    def _attempt_timeout(self) -> float | None:
        """This attempt's timeout when the request's deadline is nearer than ``timeout``."""
        remaining = None if self.budget is None else self.budget.remaining()
        if remaining is None or remaining >= self.config.timeout:
            return None
        return max(remaining, 0.001)

    def _attempt(
        self,
        method: str,
        path: str,
        data: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP exchange; raises :class:`_Retry` for retryable failures."""
        if self.budget is not None:
            self.budget.spend()
        capped = self._attempt_timeout()
        timeout = self.config.timeout if capped is None else capped
        extra: dict[str, Any] = {} if capped is None else {"timeout": httpx.Timeout(capped)}
        started = time.monotonic()
        nbytes = 0
        status: int | None = None
        try:
            with self._http.stream(method, path, data=data, params=params, **extra) as response:
                status = response.status_code
                try:
                    body = response.read()
                finally:
                    nbytes = response.num_bytes_downloaded
        except httpx.DecodingError as exc:
            raise self._malformed(f"the gzip body cannot be decoded ({exc})", path) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            # Cut mid-body: a short Content-Length, an unfinished chunked body, a reset.
            if status is not None:
                raise _Retry(f"the answer was cut off after {nbytes} bytes ({exc})") from exc
            raise _Retry(f"the connection broke before an answer ({exc})") from exc
        except httpx.ConnectTimeout as exc:
            raise _Retry(f"cannot connect: timed out after {timeout:g}s") from exc
        except httpx.ConnectError as exc:
            if _is_tls_error(exc):
                raise SourceUnavailable(
                    self._scrub(f"{self._where(path)}: TLS handshake failed ({exc})"),
                    hint="check --ca-file, or the server certificate",
                ) from exc
            raise _Retry(f"cannot connect ({exc})") from exc
        except httpx.TimeoutException as exc:  # read, write and pool timeouts
            raise _Retry(
                f"no answer within {timeout:g}s ({type(exc).__name__})", hint=_HINT_TIMEOUT
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                self._scrub(f"{self._where(path)}: {type(exc).__name__}: {exc}"),
                hint=_HINT_NETWORK,
            ) from exc
        finally:
            elapsed = time.monotonic() - started
            self.stats.record(nbytes, elapsed)
            logger.debug(
                "%s %s -> %s in %.3fs, %d bytes",
                method,
                self._where(path),
                status if status is not None else "error",
                elapsed,
                nbytes,
            )
        if status in _RETRY_4XX or (500 <= status < 600 and status not in _NEVER_RETRY_5XX):
            what = f"HTTP {status}{_error_suffix(body)}"
            raise _Retry(self._scrub(what), _retry_after(response.headers))
        return status, response.headers, body

    def _decode(
        self,
        path: str,
        status: int,
        headers: httpx.Headers,
        body: bytes,
        query: str,
        allow_404: bool,
    ) -> tuple[Any, tuple[str, ...], tuple[str, ...]] | None:
        """``(data, warnings, partiality signs)`` of a success answer; raises for the rest."""
        if status == 404 and allow_404:
            return None
        if 300 <= status < 400:
            location = redact.redact_url(headers.get("location", "?"))
            raise self._malformed(f"redirected (HTTP {status}) to {location}", path)
        try:
            payload = json.loads(body)
            is_json = True
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            payload, is_json = None, False
        if 400 <= status < 500:
            shown = query[:_QUERY_IN_ERRORS] + ("…" if len(query) > _QUERY_IN_ERRORS else "")
            shown = f" — query: {shown}" if shown else ""
            error_type, error = _api_error(payload)
            if error is None:
                error = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
            hint = _REJECT_HINTS.get(status)
            raise QueryRejected(
                self._scrub(f"{self._where(path)} rejected the query: {error}{shown}"),
                hint=hint,
                error_type=error_type,
            )
        if status >= 500:
            raise SourceUnavailable(
                self._scrub(f"{self._where(path)}: HTTP {status}{_error_suffix(body)}"),
                hint=_HINT_NETWORK,
            )
        if not is_json:
            # JSON cut short or garbled on the way may come right next time, and so may an
            # HTML page: a proxy's error page on a 200 as well as a login page. The login page
            # stays, and after the retries it is the clear error it always was.
            if _looks_like_html(headers, body):
                raise _Retry(
                    "answered an HTML page, not the API",
                    final=self._malformed("answered an HTML page, not the API", path),
                )
            raise _Retry(f"the answer is not JSON ({len(body)} bytes)")
        if not isinstance(payload, dict) or "status" not in payload:
            raise self._malformed("the JSON answer has no 'status'", path)
        if payload["status"] != "success":
            error_type, error = _api_error(payload)
            raise QueryRejected(
                self._scrub(f"{self._where(path)} rejected the query: {error}"),
                error_type=error_type,
            )
        if "data" not in payload:
            raise self._malformed("the JSON answer has no 'data'", path)
        raw_warnings = payload.get("warnings") or []
        if not isinstance(raw_warnings, list):
            raw_warnings = [raw_warnings]
        warnings = tuple(str(w) for w in raw_warnings)
        return payload["data"], warnings, _partial_signs(payload, warnings)

    def _labels(self, item: Any) -> dict[str, str]:
        if not isinstance(item, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in item.items()
        ):
            raise self._malformed("a label set is not an object of strings")
        return dict(item)


# -- parsing of result data ------------------------------------------------------------------


def _parse_query_data(data: Any, warnings: tuple[str, ...]) -> QueryResult:
    if not isinstance(data, dict):
        raise _BadShape("the query answer's data is not an object")
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        return QueryResult(kind, (Series({}, (_sample(result),)),), warnings)
    if kind == "string":
        if not (isinstance(result, list) and len(result) == 2 and isinstance(result[1], str)):
            raise _BadShape("a string result is not [time, string]")
        return QueryResult(kind, (), warnings, string=result[1])
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise _BadShape(f"unknown query result type {kind!r}")
    series = []
    for item in result:
        if not isinstance(item, dict):
            raise _BadShape("a series is not an object")
        labels = item.get("metric", {})
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise _BadShape("a series' labels are not an object of strings")
        values: tuple[tuple[float, float], ...]
        if kind == "vector":
            values = (_sample(item["value"]),) if "value" in item else ()
        else:
            raw = item.get("values", [])
            if not isinstance(raw, list):
                raise _BadShape("a series' values are not a list")
            values = tuple(_sample(pair) for pair in raw)
        series.append(Series(labels, values))
    return QueryResult(kind, tuple(series), warnings)


def _sample(pair: Any) -> tuple[float, float]:
    """``[1700000000.123, "0.5"]`` -> floats; Prometheus spells specials ``NaN``/``+Inf``."""
    if not (isinstance(pair, list) and len(pair) == 2):
        raise _BadShape(f"a sample is not [time, value]: {str(pair)[:80]}")
    ts, value = pair
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not isinstance(value, str):
        raise _BadShape(f"a sample is not [number, string]: {str(pair)[:80]}")
    try:
        return float(ts), float(value)
    except ValueError as exc:
        raise _BadShape(f"a sample value is not a number: {value[:40]!r}") from exc


# -- small helpers ---------------------------------------------------------------------------


def _fmt_time(ms: int) -> str:
    """Milliseconds as exact decimal seconds (no float noise like 0.30000000000000004)."""
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    return f"{sign}{whole}.{frac:03d}" if frac else f"{sign}{whole}"


def _is_header_safe(value: str) -> bool:
    return all(0x20 <= ord(ch) < 0x7F for ch in value)


def _verify(config: PromConfig) -> ssl.SSLContext | bool:
    if config.insecure_skip_verify:
        return False
    if config.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA file {config.ca_file!r}: {exc}") from exc


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def _api_error(payload: Any) -> tuple[str | None, str | None]:
    if not isinstance(payload, dict):
        return None, None
    error_type, error = payload.get("errorType"), payload.get("error")
    return (
        error_type if isinstance(error_type, str) else None,
        error if isinstance(error, str) else None,
    )


def _partial_signs(payload: Mapping[str, Any], warnings: tuple[str, ...]) -> tuple[str, ...]:
    """What says a success answer misses data: any warning but a PromQL annotation (how Thanos
    reports a store that did not answer), or VictoriaMetrics cluster's ``"isPartial": true``
    (a vmstorage node did not answer)."""
    signs = [w for w in warnings if not w.startswith(_ANNOTATION_PREFIXES)]
    if payload.get("isPartial") in (True, "true") and not signs:
        signs.append(_IS_PARTIAL)
    return tuple(signs)


def _quote_partial(signs: tuple[str, ...]) -> str:
    """The server's own words, quoted and shortened, for one message line."""

    def one(text: str) -> str:
        if text == _IS_PARTIAL:
            return text
        text = " ".join(text.split())  # one line, whatever the server sent
        return f'"{text[:_PARTIAL_CHARS]}{"…" if len(text) > _PARTIAL_CHARS else ""}"'

    shown = "; ".join(one(w) for w in signs[:_PARTIAL_SHOWN])
    more = len(signs) - _PARTIAL_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def _error_suffix(body: bytes) -> str:
    error_type, error = _api_error(_json_or_none(body))
    if error is None:
        return ""
    return f" ({error_type}): {error}" if error_type else f": {error}"


def _looks_like_html(headers: httpx.Headers, body: bytes) -> bool:
    return "html" in headers.get("content-type", "") or body.lstrip()[:1] == b"<"


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)
