"""Detected changes pushed to Grafana as annotations, once each.

Grafana's annotations HTTP API (docs/sources/developers/http_api/annotations.md in
grafana/grafana): ``POST /api/annotations`` with ``time``/``timeEnd`` in epoch milliseconds,
``tags``, ``text`` and optionally ``dashboardUID`` answers ``{"message": "Annotation added",
"id": N}``; ``GET /api/annotations?tags=…&from=…&to=…&limit=…`` lists annotations carrying all
the given tags. Each change carries a ``change:<id>`` tag with a stable id, so a push first
lists what is there and posts only the missing ones: pushing twice adds nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from imagetrail.errors import ConfigError, GrafanaError
from imagetrail.model import Change
from imagetrail.text import printable

log = logging.getLogger("imagetrail.grafana.annotate")

TAG = "imagetrail"
TAG_MAX = 100
"""Grafana stores a tag's key and value in 100-character columns; longer tags are cut."""
LIST_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class GrafanaTarget:
    """Where to push: base URL, service-account token, optional dashboard UID."""

    url: str
    token: str = field(repr=False)
    dashboard_uid: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a push did: the payloads posted (or that would be, on a dry run) and skipped."""

    posted: tuple[dict[str, Any], ...]
    skipped: tuple[dict[str, Any], ...]
    dry_run: bool


def change_id(change: Change) -> str:
    """A stable id of a change: the same change detected again gets the same id, also once
    its rollout finished; 16 hex digits keep the tag short."""
    return change.identity_hash()[:16]


def _tag(text: str) -> str:
    return text[:TAG_MAX]


def summary(change: Change) -> str:
    """One plain line: ``upgrade shop/web (app): nginx:1.25 → nginx:1.26``, with
    ``(rollout aborted)`` / ``(rollout superseded)`` for a rollout given up."""
    line = (
        f"{change.kind.value} {change.namespace}/{change.workload} ({change.container}) "
        f"in {change.cluster}: {change.from_image or '—'} → {change.to_image or '—'}"
    )
    if change.cut_short is not None:
        line += f" (rollout {change.cut_short.value})"
    return line


def annotation_for(
    change: Change, *, dashboard_uid: str | None = None, public_url: str | None = None
) -> dict[str, Any]:
    """The ``POST /api/annotations`` body for one change.

    Grafana renders annotation text as (sanitised) HTML, and label values come from the
    cluster: the summary is HTML-escaped; the only markup is our own line break and link.
    """
    text = html.escape(summary(change))
    if public_url:
        query = urlencode(
            {
                "workload": f"{change.cluster}/{change.namespace}/"
                f"{change.workload_kind}/{change.workload}"
            }
        )
        link = f"{public_url.rstrip('/')}/workload?{query}"
        text += f'<br><a href="{html.escape(link, quote=True)}">open in imagetrail</a>'
    body: dict[str, Any] = {
        "time": round(change.started * 1000),
        "tags": [
            TAG,
            change.kind.value,
            _tag(f"namespace:{change.namespace}"),
            _tag(f"workload:{change.workload}"),
            f"change:{change_id(change)}",
        ],
        "text": text,
    }
    if change.cut_short is not None:
        # Before the change id, which stays the last tag.
        body["tags"].insert(-1, change.cut_short.value)
    settled = change.settled  # a region up to when the rollout finished or was given up
    if settled is not None:
        body["timeEnd"] = round(settled * 1000)
    if dashboard_uid:
        body["dashboardUID"] = dashboard_uid
    return body


class GrafanaClient:
    """The two calls of Grafana's annotations API that a push needs."""

    def __init__(self, target: GrafanaTarget, *, transport: httpx.BaseTransport | None = None):
        if not target.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"grafana_url must be an http(s) URL, not {printable(target.url)!r}",
                hint="pass --grafana-url or set IMAGETRAIL_GRAFANA_URL",
            )
        check_token(target.token, "grafana_token")
        self.target = target
        self._http = httpx.Client(
            base_url=target.url.rstrip("/"),
            headers={"Authorization": f"Bearer {target.token}", "Accept": "application/json"},
            timeout=target.timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        where = f"{self.target.url.rstrip('/')}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GrafanaError(
                f"cannot reach Grafana at {where}: {printable(str(exc) or type(exc).__name__)}",
                hint="check --grafana-url / IMAGETRAIL_GRAFANA_URL and that Grafana is up",
            ) from exc
        if response.status_code >= 400:
            raise _http_error(response, method, where)
        try:
            return response.json()
        except ValueError:
            raise GrafanaError(
                f"Grafana's answer to {method} {where} is not JSON",
                hint="is --grafana-url the Grafana base URL?",
            ) from None

    def existing_ids(self, start_ms: int, end_ms: int) -> set[str] | None:
        """Change ids already annotated in the range; ``None`` when the list was cut off."""
        params: dict[str, Any] = {
            "tags": TAG,
            "type": "annotation",
            "from": start_ms,
            "to": end_ms,
            "limit": LIST_LIMIT,
        }
        if self.target.dashboard_uid:
            params["dashboardUID"] = self.target.dashboard_uid
        found = self._call("GET", "/api/annotations", params=params)
        ids = _change_ids(found)
        return None if len(found) >= LIST_LIMIT else ids

    def has_change(self, cid: str) -> bool:
        """Is there an annotation tagged with this change id? (The cut-off fallback.)"""
        params = [("tags", TAG), ("tags", f"change:{cid}"), ("type", "annotation"), ("limit", 1)]
        return bool(_change_ids(self._call("GET", "/api/annotations", params=params)))

    def add(self, body: dict[str, Any]) -> int:
        """Create one annotation; Grafana's id for it."""
        answer = self._call("POST", "/api/annotations", json=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise GrafanaError("Grafana's answer to POST /api/annotations has no annotation id")
        return int(answer["id"])


def check_token(token: str, setting: str) -> None:
    """Refuse a token that cannot be an HTTP header value, without ever showing it."""
    if not token or not all(33 <= ord(ch) < 127 for ch in token):
        raise ConfigError(
            f"{setting} is empty or holds spaces or characters an HTTP header cannot carry",
            hint=f"set IMAGETRAIL_{setting.upper()} to the token exactly",
        )


def _change_ids(found: Any) -> set[str]:
    if not isinstance(found, list):
        raise GrafanaError("Grafana's annotation list is not a JSON array")
    ids = set()
    for item in found:
        tags = item.get("tags") if isinstance(item, dict) else None
        for tag in tags if isinstance(tags, list) else ():
            if isinstance(tag, str) and tag.startswith("change:"):
                ids.add(tag.removeprefix("change:"))
    return ids


def _http_error(response: httpx.Response, method: str, where: str) -> GrafanaError:
    status = response.status_code
    try:
        detail = response.json().get("message")
    except (ValueError, AttributeError):
        detail = None
    said = f": {printable(str(detail))[:200]}" if detail else ""
    if status == 401:
        return GrafanaError(
            f"Grafana refused the token (401 Unauthorized){said}",
            hint="set IMAGETRAIL_GRAFANA_TOKEN to a valid service-account token",
        )
    if status == 403:
        return GrafanaError(
            f"Grafana's token may not write annotations (403 Forbidden){said}",
            hint="give the service account the annotations:create permission (Editor role)",
        )
    hint = "Grafana failed; retry later" if status >= 500 else "check --grafana-url"
    return GrafanaError(f"Grafana answered HTTP {status} to {method} {where}{said}", hint=hint)


def push_annotations(
    changes: Sequence[Change],
    target: GrafanaTarget | None,
    *,
    public_url: str | None = None,
    dry_run: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> PushResult:
    """Annotate each change in Grafana unless its ``change:<id>`` tag is already there.

    ``target=None`` is only allowed with ``dry_run`` (nothing is asked, every change would
    be posted); a dry run with a target asks Grafana what exists but posts nothing.
    """
    uid = target.dashboard_uid if target is not None else None
    bodies = [annotation_for(c, dashboard_uid=uid, public_url=public_url) for c in changes]
    if target is None:
        if not dry_run:
            raise ConfigError(
                "no Grafana URL", hint="pass --grafana-url or set IMAGETRAIL_GRAFANA_URL"
            )
        return PushResult(tuple(bodies), (), True)
    if not bodies:
        return PushResult((), (), dry_run)
    client = GrafanaClient(target, transport=transport)
    try:
        start = min(b["time"] for b in bodies)
        end = max(b.get("timeEnd", b["time"]) for b in bodies)
        existing = client.existing_ids(start, end)
        posted, skipped = [], []
        for body in bodies:
            cid = body["tags"][-1].removeprefix("change:")
            there = cid in existing if existing is not None else client.has_change(cid)
            if there:
                skipped.append(body)
                continue
            if not dry_run:
                log.debug("annotating change %s", cid)
                client.add(body)
            posted.append(body)
        return PushResult(tuple(posted), tuple(skipped), dry_run)
    finally:
        client.close()


__all__ = [
    "GrafanaClient",
    "GrafanaTarget",
    "PushResult",
    "annotation_for",
    "change_id",
    "check_token",
    "push_annotations",
    "summary",
]
