"""CI/CD deployment events: what a pipeline says it deployed, validated where it arrives.

A pipeline posts (``POST /api/v1/deployments``) or records (``imagetrail deploy record``) an
event: *workload W got image I at time T, built from commit C*. Events are stored in the ledger
as they are; which detected change each one became is worked out when they are read
(:func:`deployments_with_matches`), because the change is usually detected minutes after the
pipeline reports. The matching rule and the lead time are pure functions in
:mod:`imagetrail.analysis.leadtime`; docs/cicd.md explains both.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from imagetrail import imageref
from imagetrail.analysis.leadtime import DeploymentMatch, match_deployments
from imagetrail.errors import DeploymentConflict, ImageRefError, InputError, InvalidDeployment
from imagetrail.model import Deployment
from imagetrail.service.shapes import record
from imagetrail.timeutil import parse_time

if TYPE_CHECKING:
    from imagetrail.ledger import Ledger
    from imagetrail.service.query import Query, QueryContext

DEFAULT_RANGE = 7 * 86400.0
ID_MAX = 128
URL_MAX = 2048
FIELDS = (
    "id",
    "cluster",
    "namespace",
    "workload",
    "container",
    "image",
    "commit",
    "commit_time",
    "pipeline_url",
    "deployed_at",
)
"""The fields a client may send; anything else is refused by name."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
# Kubernetes object names (apimachinery validation): namespaces and containers are DNS-1123
# labels, controller names DNS-1123 subdomains.
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DNS_PART = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_PART}(?:\.{_DNS_PART})*")
# RFC 3986 characters: anything else (quotes, angle brackets, spaces, controls) must be
# percent-encoded in a real URL, so refusing it costs nothing and keeps markup out.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_FIELDS_HINT = "fields: " + ", ".join(FIELDS)


def new_id() -> str:
    """A random event id (clients that retry should send their own ``id``)."""
    return uuid.uuid4().hex


# -- validation ---------------------------------------------------------------------------------


def _bad(field: str, problem: str, hint: str | None = None) -> InvalidDeployment:
    return InvalidDeployment(f"{field}: {problem}", hint=hint)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


def _text(body: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise _bad(field, "is required", _FIELDS_HINT)
        return None
    if not isinstance(value, str):
        raise _bad(field, f"must be a string, not {_json_type(value)}")
    if not value:
        raise _bad(field, "must not be empty")
    return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_name(field: str, value: str, pattern: re.Pattern[str], limit: int, what: str) -> str:
    """``value`` if it is a Kubernetes name of the given form; :class:`InvalidDeployment` else."""
    if len(value) > limit or not pattern.fullmatch(value):
        raise _bad(
            field,
            f"{_shown(value)} is not a Kubernetes {what}",
            f"lower-case letters, digits and '-' (at most {limit} characters)",
        )
    return value


def check_cluster(value: str) -> str:
    """A cluster name as the metrics' cluster label has it: printable text, at most 253 chars."""
    if len(value) > 253 or not value.isprintable() or value.strip() != value:
        raise _bad("cluster", f"{_shown(value)} is not a cluster name (printable, <= 253 chars)")
    return value


def check_commit(value: str) -> str:
    """A git commit SHA, 7 to 64 hex digits, lower-cased."""
    if not _COMMIT.fullmatch(value):
        raise _bad("commit", f"{_shown(value)} is not a commit SHA (7 to 64 hex digits)")
    return value.lower()


def check_pipeline_url(value: str) -> str:
    """An absolute ``http``/``https`` URL without characters that need encoding."""
    if len(value) > URL_MAX:
        raise _bad("pipeline_url", f"is longer than {URL_MAX} characters")
    if not _URL_CHARS.fullmatch(value):
        raise _bad(
            "pipeline_url",
            f"{_shown(value)} holds characters a URL must percent-encode",
        )
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _bad("pipeline_url", f"{_shown(value)} is not an http(s) URL")
    return value


def check_image(value: str) -> tuple[str, str | None]:
    """The normalised display reference and digest of ``value``."""
    try:
        ref = imageref.parse(value)
    except ImageRefError as exc:
        raise _bad("image", exc.message, exc.hint) from None
    return ref.display, ref.digest


def check_id(value: str) -> str:
    """A client-supplied event id: 1-128 of letters, digits and ``.``, ``_``, ``:``, ``-``."""
    if not _ID.fullmatch(value):
        raise _bad(
            "id",
            f"{_shown(value)} is not an event id",
            f"1 to {ID_MAX} letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
        )
    return value


def _time(body: Mapping[str, Any], field: str, now: float) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(field, f"must be a time string or unix seconds, not {_json_type(value)}")
    try:
        t = parse_time(str(value) if isinstance(value, str) else repr(float(value)), now)
    except InputError as exc:
        raise _bad(field, exc.message, exc.hint) from None
    if not math.isfinite(t):  # pragma: no cover - parse_time refuses these already
        raise _bad(field, "must be finite")
    return t


def parse_deployment(
    body: Mapping[str, Any], *, now: float | None = None, make_id: Callable[[], str] = new_id
) -> Deployment:
    """Validate a client's event (a decoded JSON object) into a :class:`Deployment`.

    ``workload`` is a name with ``namespace`` beside it, or ``namespace/name`` alone. Times are
    RFC 3339, unix seconds (string or number) or relative; ``deployed_at`` defaults to ``now``.
    Raises :class:`InvalidDeployment` naming the field.
    """
    received = time.time() if now is None else now
    for key in body:
        if key not in FIELDS:
            extra = " (the server sets it)" if key == "received_at" else ""
            raise InvalidDeployment(f"unknown field {_shown(str(key))}{extra}", hint=_FIELDS_HINT)
    workload = _text(body, "workload", required=True)
    namespace = _text(body, "namespace")
    assert workload is not None
    if namespace is None:
        ns, slash, name = workload.partition("/")
        if not slash:
            raise _bad("namespace", "is required (or give workload as namespace/name)")
        namespace, workload = ns, name
    check_name("namespace", namespace, _DNS_LABEL, 63, "namespace name")
    check_name("workload", workload, _DNS_SUBDOMAIN, 253, "workload name")
    image_text = _text(body, "image", required=True)
    assert image_text is not None
    image, digest = check_image(image_text)
    cluster = _text(body, "cluster")
    container = _text(body, "container")
    commit = _text(body, "commit")
    url = _text(body, "pipeline_url")
    event_id = _text(body, "id")
    deployed_at = _time(body, "deployed_at", received)
    return Deployment(
        id=check_id(event_id) if event_id is not None else make_id(),
        namespace=namespace,
        workload=workload,
        image=image,
        digest=digest,
        deployed_at=received if deployed_at is None else deployed_at,
        received_at=received,
        cluster=None if cluster is None else check_cluster(cluster),
        container=None
        if container is None
        else check_name("container", container, _DNS_LABEL, 63, "container name"),
        commit=None if commit is None else check_commit(commit),
        commit_time=_time(body, "commit_time", received),
        pipeline_url=None if url is None else check_pipeline_url(url),
    )


# -- JSON ---------------------------------------------------------------------------------------


def deployment_json(d: Deployment) -> dict[str, Any]:
    """The stored event as JSON (times RFC 3339 UTC); docs/api.md shows the shape."""
    return record(d)


def match_json(m: DeploymentMatch) -> dict[str, Any]:
    """An event with ``matched_change`` (the change's JSON, or null) and ``lead_time_seconds``."""
    return deployment_json(m.deployment) | {
        "matched_change": None if m.change is None else record(m.change),
        "lead_time_seconds": m.lead_time,
    }


# -- reading and writing ------------------------------------------------------------------------


def _span(query: Query) -> tuple[float, float]:
    w = query.window
    end = w.end if w.end is not None else time.time()
    start = w.start if w.start is not None else end - DEFAULT_RANGE
    return start, end


def _matched(
    ledger: Ledger,
    found: list[Deployment],
    window: float,
    *,
    cluster: str | None = None,
    namespace_regex: str | None = None,
    workload: str | None = None,
) -> list[DeploymentMatch]:
    if not found:
        return []
    changes = ledger.changes(
        cluster=cluster,
        namespace_regex=namespace_regex,
        workload=workload,
        start=min(d.deployed_at for d in found) - window,
        end=max(d.deployed_at for d in found) + window,
    )
    return match_deployments(found, changes, window)


def deployments_with_matches(ctx: QueryContext, query: Query) -> list[DeploymentMatch]:
    """Recorded events in the query's range (default: the last 7 days), oldest first, each
    with the detected change it matched and its lead time.

    Filters: ``cluster`` (an event without a cluster matches any), ``namespace`` (regex, full
    match), ``workload`` (the usual forms; the kind part is not checked: events carry none),
    ``clusters`` (any of). Changes come from the ledger whatever ``query.source`` says.
    """
    start, end = _span(query)
    window = float(ctx.settings.deploy_match_window)
    with ctx.open_ledger(create=False) as ledger:
        found = ledger.deployments(
            cluster=query.cluster,
            namespace_regex=query.namespace,
            workload=query.workload,
            start=start,
            end=end,
        )
        if query.clusters:
            found = [d for d in found if d.cluster is None or d.cluster in query.clusters]
        ctx.refresh_changes(ledger)
        return _matched(
            ledger,
            found,
            window,
            cluster=query.cluster,
            namespace_regex=query.namespace,
            workload=query.workload,
        )


def record_deployment(
    ledger: Ledger, deployment: Deployment, *, window: float
) -> tuple[DeploymentMatch, bool]:
    """Store ``deployment`` and match it; ``(match, created)``.

    Idempotent on ``id``: the same event again returns the stored one with ``created=False``;
    another event under a stored id raises :class:`DeploymentConflict`.
    """
    stored, created = ledger.record_deployment(deployment)
    if not created and not stored.same_event(deployment):
        raise DeploymentConflict(
            f"a different deployment event with id {stored.id!r} is already recorded",
            hint="send a new id for a new event; resend the same body to retry",
        )
    # Namespace and name narrow the read; cluster and container are left to the matcher.
    matches = _matched(
        ledger,
        [stored],
        window,
        namespace_regex=re.escape(stored.namespace),
        workload=f"{stored.namespace}/{stored.workload}",
    )
    return matches[0], created


__all__ = [
    "FIELDS",
    "DeploymentMatch",
    "deployment_json",
    "deployments_with_matches",
    "match_json",
    "new_id",
    "parse_deployment",
    "record_deployment",
]
