"""The one exception tree of imagetrail.

::

    ImagetrailError                 exit code 1, HTTP 500 unless a subclass says otherwise
    ├── ConfigError                 a setting or flag is wrong          (exit 2, HTTP 400)
    ├── InputError                  a value from the user is malformed  (exit 2, HTTP 400)
    │   ├── ImageRefError           not an image reference
    │   ├── LimitExceeded           a request would cost more than a limit allows, or ran
    │   │                           past its deadline, or was cancelled (HTTP 422 by
    │   │                           default; 429 when too many run at once, 504 at the
    │   │                           deadline, 503 when the server is shutting down)
    │   ├── InvalidDeployment       a deployment event field is missing or malformed (HTTP 422)
    │   ├── DeploymentConflict      another event is stored under this id (HTTP 409)
    │   ├── PayloadTooLarge         a request body is larger than allowed (HTTP 413)
    │   └── UnsupportedMediaType    a request body's content type is not taken (HTTP 415)
    ├── SourceError                 a metrics source failed             (exit 3, HTTP 502)
    │   ├── SourceUnavailable       cannot connect, timed out, 5xx after retries
    │   ├── QueryRejected           the server refused the query (4xx, errorType/error)
    │   ├── MalformedResponse       the server answered something that is not the API
    │   └── PartialAnswer           the server answered success but marked the answer partial
    │                               (warnings, isPartial) after retries
    ├── LedgerError                 the ledger cannot be opened/read/written (exit 4, HTTP 500)
    │   └── NotALedger              the file or database is not an imagetrail ledger
    ├── DeliveryError               a mail server, webhook or Grafana did not take what we sent
    │   │                           (exit 3, HTTP 502)
    │   └── GrafanaError            Grafana refused or failed a request, or could not be reached
    └── ServerUnavailable           ``imagetrail deploy`` could not reach the imagetrail server
                                    or its answer was not the API (exit 3)

Every error carries a one-line ``message`` and an optional ``hint``, both redacted when the
error is made (:func:`imagetrail.redact.redact`: URL passwords, credential headers, tokens in
query strings, registered secrets), so no error shows a secret wherever it is printed, logged
or answered. Third-party exceptions are translated where they happen
(``raise SourceUnavailable(...) from exc``).
"""

from __future__ import annotations

from imagetrail.redact import redact


class ImagetrailError(Exception):
    """Root of every error imagetrail raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Server error texts may echo our request (its URL, its Authorization header).
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else redact(hint)

    def __str__(self) -> str:
        return self.message


class ConfigError(ImagetrailError):
    exit_code = 2
    http_status = 400


class InputError(ImagetrailError):
    exit_code = 2
    http_status = 400


class ImageRefError(InputError):
    """A value is not an image reference."""


class LimitExceeded(InputError):
    """A request would cost more than a limit allows; ``limit`` names the setting."""

    http_status = 422

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        limit: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit
        if http_status is not None:
            self.http_status = http_status


class InvalidDeployment(InputError):
    """A deployment event field is missing or malformed (HTTP 422)."""

    http_status = 422


class DeploymentConflict(InputError):
    """An event with this id is already stored with other content (HTTP 409)."""

    http_status = 409


class PayloadTooLarge(InputError):
    """A request body is larger than the server takes."""

    http_status = 413


class UnsupportedMediaType(InputError):
    """A request body's content type is not one the endpoint reads."""

    http_status = 415


class SourceError(ImagetrailError):
    exit_code = 3
    http_status = 502


class SourceUnavailable(SourceError):
    """Cannot reach the metrics server (connection refused, DNS, timeout, 5xx after retries)."""


class QueryRejected(SourceError):
    """The server refused the query; ``error_type`` is the server's ``errorType``."""

    def __init__(
        self, message: str, *, hint: str | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.error_type = error_type


class MalformedResponse(SourceError):
    """The server's answer is not the Prometheus HTTP API."""


class PartialAnswer(SourceError):
    """The server answered ``success`` but said part of the data is missing (a Thanos store,
    a VictoriaMetrics storage node...), still after retries; ``warnings`` are its words."""

    def __init__(
        self, message: str, *, hint: str | None = None, warnings: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.warnings = tuple(redact(w) for w in warnings)


class LedgerError(ImagetrailError):
    exit_code = 4
    http_status = 500


class NotALedger(LedgerError):
    """The file or database exists but is not an imagetrail ledger."""


class DeliveryError(ImagetrailError):
    """A mail server, chat webhook or Grafana could not be reached or did not take it."""

    exit_code = 3
    http_status = 502


class ServerUnavailable(ImagetrailError):
    """The imagetrail server (``imagetrail deploy --server``) could not be reached or failed."""

    exit_code = 3


class GrafanaError(DeliveryError):
    """Grafana refused or failed a request, or could not be reached."""


__all__ = [
    "ConfigError",
    "DeliveryError",
    "DeploymentConflict",
    "GrafanaError",
    "ImageRefError",
    "ImagetrailError",
    "InputError",
    "InvalidDeployment",
    "LedgerError",
    "LimitExceeded",
    "MalformedResponse",
    "NotALedger",
    "PartialAnswer",
    "PayloadTooLarge",
    "QueryRejected",
    "ServerUnavailable",
    "SourceError",
    "SourceUnavailable",
    "UnsupportedMediaType",
]
