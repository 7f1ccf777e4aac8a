"""``/api/v1/…``: the CLI's answers as JSON, with query parameters named like the CLI's flags.

Every answer has the same shape as ``imagetrail <command> --format json`` (docs/json.md); a
few objects carry extra fields the pages need, which the JSON stability promise allows.
Errors are ``{"error": message, "hint": hint}`` with the error class's HTTP status
(one handler, in :mod:`imagetrail.web.app`). A ``cluster``, exact ``namespace`` or
``workload`` the ledger does not know is a 400 naming the closest known ones; a namespace
regex branch that matches no known namespace still answers, with one
``X-Imagetrail-Warning`` header per such branch (and the CLI's warning text).
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Query as Param
from fastapi.responses import Response

from imagetrail.errors import InputError
from imagetrail.model import ChangeKind, Wait
from imagetrail.service.impact import capacity_for, dora_for, impacts_for, lead_times_for
from imagetrail.service.query import Query, Window
from imagetrail.service.shapes import (
    CHANGE_COLUMNS,
    dora_json,
    heatmap_json,
    impact_json,
    record,
)
from imagetrail.text import csv_cell
from imagetrail.timeutil import format_time
from imagetrail.web.state import AppState

router = APIRouter(prefix="/api/v1", tags=["answers"])

_KINDS = ", ".join(k.value for k in ChangeKind)


def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.imagetrail
    return app_state


StateDep = Annotated[AppState, Depends(state)]
ClusterQ = Annotated[
    list[str] | None, Param(description="Only these clusters (repeatable: any of them).")
]
NamespaceQ = Annotated[
    list[str] | None,
    Param(description="Namespace regex, matched fully (repeatable: any of them)."),
]
WorkloadQ = Annotated[
    str | None, Param(description="Workload: name, kind/name, namespace/name or the full id.")
]
FromQ = Annotated[
    str | None, Param(alias="from", description="Range start: RFC 3339, unix seconds or 7d.")
]
ToQ = Annotated[str | None, Param(description="Range end (default: now).")]
SinceQ = Annotated[str | None, Param(description="Range ending now (or at `to`): 7d, 2h, ...")]
AtQ = Annotated[str | None, Param(description="Instant (default: the latest data).")]
StepQ = Annotated[str | None, Param(description="Bucket width, e.g. 5m (default: fits).")]
SourceQ = Annotated[
    str, Param(description="`ledger` (recorded) or `prometheus` (live, no ledger).")
]


def query_params(
    app_state: StateDep,
    response: Response,
    cluster: ClusterQ = None,
    namespace: NamespaceQ = None,
    workload: WorkloadQ = None,
    from_: FromQ = None,
    to: ToQ = None,
    since: SinceQ = None,
    at: AtQ = None,
    step: StepQ = None,
    source: SourceQ = "ledger",
) -> Query:
    """The common filters, parsed exactly as the CLI parses its flags."""
    if source not in ("ledger", "prometheus"):
        raise InputError(f"source must be ledger or prometheus, not {source!r}")
    clusters = tuple(dict.fromkeys(c for c in cluster or () if c))
    namespaces = [n for n in namespace or () if n]
    q = Query(
        cluster=clusters[0] if len(clusters) == 1 else None,
        clusters=clusters if len(clusters) > 1 else (),
        namespace=_any_of(namespaces),
        workload=workload or None,
        window=Window.from_flags(since=since, from_=from_, to=to, at=at, step=step),
        source=source,
    )
    try:
        warnings = app_state.context.check_names(q)
    except InputError:
        return q  # an answer refuses it (400); one that reads no spans need not
    # A namespace-regex branch that matches no known namespace: the answer stands, and says so.
    for warning in warnings:
        response.headers.append(WARNING_HEADER, _header_text(warning))
    return replace(q, names_checked=True)


WARNING_HEADER = "X-Imagetrail-Warning"


def _header_text(text: str) -> str:
    """``text`` as one printable ASCII header line (user input is quoted in it)."""
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if " " <= ch <= "~" else " " for ch in ascii_text)


def _any_of(regexes: list[str]) -> str | None:
    """One regex matching any of ``regexes`` (each still matched fully)."""
    if not regexes:
        return None
    if len(regexes) == 1:
        return regexes[0]
    return "|".join(f"(?:{r})" for r in regexes)


QueryDep = Annotated[Query, Depends(query_params)]


@router.get("/versions", summary="Image versions running at an instant")
def versions(app_state: StateDep, q: QueryDep) -> list[dict[str, Any]]:
    rows, instant = app_state.context.versions(q)
    return [record(r) | {"at": format_time(instant)} for r in rows]


@router.get("/heatmap", summary="Image × time → containers")
def heatmap(
    app_state: StateDep,
    q: QueryDep,
    width: Annotated[
        int | None,
        Param(ge=10, le=10_000, description="Plot width in pixels: the step fits it."),
    ] = None,
    sandbox: Annotated[bool, Param(description="Include pod-sandbox (pause) images.")] = False,
    digests: Annotated[bool, Param(description="One row per digest.")] = False,
) -> dict[str, Any]:
    points = max(10, width // 6) if width else 200
    answer = app_state.context.heatmap_answer(q, points=points, sandbox=sandbox, by_digest=digests)
    hm = answer.heatmap
    return heatmap_json(hm) | {
        "from": format_time(answer.start),
        "to": format_time(answer.end),
        "step": answer.step,
        "workloads": [list(answer.rows[i][0]) for i in hm.images],
        "digests": [list(answer.rows[i][1]) for i in hm.images],
    }


@router.get("/changes", summary="Version changes, oldest first")
def changes(
    app_state: StateDep,
    q: QueryDep,
    kind: Annotated[
        list[str] | None, Param(description=f"Only these kinds (repeatable): {_KINDS}.")
    ] = None,
    format: Annotated[str, Param(description="`json` or `csv` (a download).")] = "json",
) -> Any:
    if format not in ("json", "csv"):
        raise InputError(f"format must be json or csv, not {format!r}")
    rows = [record(c) for c in app_state.context.changes(q, kinds=_kinds(kind))]
    if format == "json":
        return rows
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CHANGE_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in CHANGE_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="imagetrail-changes.csv"'},
    )


def _kinds(kind: list[str] | None) -> list[str] | None:
    known = {k.value for k in ChangeKind}
    for k in kind or ():
        if k not in known:
            raise InputError(f"unknown change kind {k!r}", hint=f"kinds: {_KINDS}")
    return kind or None


KindQ = Annotated[list[str] | None, Param(description=f"Only these kinds (repeatable): {_KINDS}.")]


@router.get("/impact", summary="Each change's verdict with the before/after evidence")
def impact(app_state: StateDep, q: QueryDep, kind: KindQ = None) -> list[dict[str, Any]]:
    found = app_state.context.changes(q, kinds=_kinds(kind))
    return [impact_json(i) for i in impacts_for(app_state.context, found)]


@router.get("/capacity", summary="CPU and memory per container for each version of a workload")
def capacity(app_state: StateDep, q: QueryDep) -> list[dict[str, Any]]:
    return [record(c) for c in capacity_for(app_state.context, q)]


@router.get(
    "/dora", summary="Deployment frequency, change failure rate, time to restore, lead time"
)
def dora(
    app_state: StateDep,
    q: QueryDep,
    by: Annotated[str, Param(description="`workload` or `namespace`.")] = "workload",
) -> list[dict[str, Any]]:
    if by not in ("workload", "namespace"):
        raise InputError(f"by must be workload or namespace, not {by!r}")
    figures = dora_for(app_state.context, q, by=by, lead_times=lead_times_for(app_state.context, q))
    return [dora_json(f) for f in figures]


@router.get("/workloads", summary="Workload containers and what they run")
def workloads(app_state: StateDep, q: QueryDep) -> list[dict[str, Any]]:
    return [record(w) for w in app_state.context.workloads(q)]


@router.get("/history", summary="Version history of one workload")
def history(app_state: StateDep, q: QueryDep) -> list[dict[str, Any]]:
    if not q.workload:
        raise InputError("history needs a workload", hint="pass ?workload=namespace/name")
    entries, _ = app_state.context.history(q)
    return [record(h) for h in entries]


@router.get("/audit", summary="What ran inside a time window")
def audit(
    app_state: StateDep,
    q: QueryDep,
    image: Annotated[str | None, Param(description="Only this image (a heatmap row).")] = None,
) -> list[dict[str, Any]]:
    rows = app_state.context.audit(q)
    if image:
        rows = [r for r in rows if r.image == image or f"{r.image}@{r.digest}" == image]
    return [record(r) for r in rows]


@router.get("/spans", summary="Raw spans: one pod container running one image, first to last seen")
def spans(
    app_state: StateDep,
    q: QueryDep,
    response: Response,
    limit: Annotated[int, Param(ge=1, le=100_000, description="At most this many spans.")] = 5000,
) -> list[dict[str, Any]]:
    found, _, _ = app_state.context.spans(q)
    found.sort(key=lambda s: (s.first_seen, s.cluster, s.namespace, s.pod, s.container))
    if len(found) > limit:
        response.headers["X-Imagetrail-Truncated"] = f"{len(found)} spans, {limit} returned"
    return [record(s) for s in found[:limit]]


@router.get(
    "/waits",
    summary="Waits: one pod container listed with an image but not running, and why",
)
def waits(
    app_state: StateDep,
    q: QueryDep,
    response: Response,
    limit: Annotated[int, Param(ge=1, le=100_000, description="At most this many waits.")] = 5000,
) -> list[dict[str, Any]]:
    found = app_state.context.waits(q)
    found.sort(
        key=lambda w: (w.span.first_seen, w.span.cluster, w.span.namespace, w.span.pod, w.reason)
    )
    if len(found) > limit:
        response.headers["X-Imagetrail-Truncated"] = f"{len(found)} waits, {limit} returned"
    return [_wait_json(w) for w in found[:limit]]


_WAIT_FIELDS = (
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "pod",
    "pod_uid",
    "container",
    "image",
    "digest",
    "first_seen",
    "last_seen",
)


def _wait_json(wait: Wait) -> dict[str, Any]:
    span = record(wait.span)
    return {name: span[name] for name in _WAIT_FIELDS} | {"reason": wait.reason}


@router.get("/status", summary="What the ledger holds, the sync's health and the filter choices")
def status(app_state: StateDep, request: Request) -> dict[str, Any]:
    out = app_state.status()
    # The scheduled report (None when report_schedule is unset), set up in the app's lifespan.
    scheduler = getattr(request.app.state, "report_scheduler", None)
    out["report"] = None if scheduler is None else scheduler.status()
    return out


__all__ = ["router"]
