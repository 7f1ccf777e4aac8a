"""``imagetrail deploy record|list`` and ``imagetrail annotate``: CI/CD deployment events and
the changes they became, and detected changes pushed to Grafana.

``deploy record`` posts to an ``imagetrail serve`` when a server is configured (``--server`` /
``IMAGETRAIL_SERVER_URL``) and writes the local ledger otherwise; ``deploy list`` reads from
the same place. ``annotate`` pushes detected changes to Grafana (see
:mod:`imagetrail.grafana.annotate`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from imagetrail.cli.options import (
    ClusterOpt,
    FormatOpt,
    LedgerOpt,
    RangeFilters,
    columns,
    err_console,
    output_format,
    query_context,
    with_blocks,
)
from imagetrail.cli.render import render_rows
from imagetrail.errors import ConfigError, InputError, ServerUnavailable
from imagetrail.grafana.annotate import GrafanaTarget, check_token, push_annotations
from imagetrail.service import deployments as dep
from imagetrail.text import printable
from imagetrail.timeutil import format_duration, format_time

deploy_app = typer.Typer(
    help="CI/CD deployment events: record them, list them with the change each one became.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="imagetrail serve base URL (default: the local ledger)."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", help="API token (prefer IMAGETRAIL_API_TOKEN: flags show in ps)."),
]
# The columns of `deploy list -o csv`: an event and the change it matched, flat.
LIST_COLUMNS = columns(
    "id cluster namespace workload container image digest commit commit_time pipeline_url "
    "deployed_at received_at matched_change_kind matched_change_started "
    "matched_change_finished lead_time_seconds"
)


# -- talking to a server --------------------------------------------------------------------


def _server_call(
    method: str, server: str, path: str, token: str | None, **kwargs: Any
) -> tuple[int, Any]:
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"--server must be an http(s) URL, not {printable(server)!r}")
    headers = {"Accept": "application/json"}
    if token is not None:
        check_token(token, "api_token")
        headers["Authorization"] = f"Bearer {token}"
    url = server.rstrip("/") + path
    try:
        response = httpx.request(method, url, headers=headers, timeout=30.0, **kwargs)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(
            f"cannot reach the imagetrail server at {url}: "
            f"{printable(str(exc)) or type(exc).__name__}",
            hint="check --server / IMAGETRAIL_SERVER_URL and that `imagetrail serve` runs",
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code < 400:
        if body is None:
            raise ServerUnavailable(f"the answer of {url} is not JSON", hint="is --server right?")
        return response.status_code, body
    said = body.get("error") if isinstance(body, dict) else None
    hint = body.get("hint") if isinstance(body, dict) else None
    message = f"server answered {response.status_code}: {said or response.reason_phrase}"
    if response.status_code == 401:
        raise ConfigError(
            f"the server refused the API token ({response.status_code}): {said}",
            hint="set IMAGETRAIL_API_TOKEN to the server's api_token",
        )
    if response.status_code < 500:
        raise InputError(message, hint=hint)
    raise ServerUnavailable(message, hint=hint)


# -- deploy record / list -------------------------------------------------------------------


@deploy_app.command("record")
def record(
    ctx: typer.Context,
    workload: Annotated[
        str, typer.Option("--workload", "-w", help="NAMESPACE/NAME of the workload.")
    ],
    image: Annotated[str, typer.Option("--image", help="Image deployed, e.g. ghcr.io/o/app:1.2")],
    cluster: ClusterOpt = None,
    container: Annotated[str | None, typer.Option("--container", help="Container name.")] = None,
    commit: Annotated[str | None, typer.Option("--commit", help="Commit SHA (7-64 hex).")] = None,
    commit_time: Annotated[
        str | None, typer.Option("--commit-time", help="Commit time: RFC 3339 or unix.")
    ] = None,
    pipeline_url: Annotated[
        str | None, typer.Option("--pipeline-url", help="Link to the pipeline run.")
    ] = None,
    deployed_at: Annotated[
        str | None, typer.Option("--deployed-at", help="When it was deployed (default: now).")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id; resending one is a no-op (retries).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    ledger: LedgerOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Record a deployment event: on the server (--server) or in the local ledger."""
    context = query_context(ctx, ledger=ledger, server_url=server, api_token=token)
    now = time.time()
    if "/" not in workload:
        raise InputError(
            f"--workload {printable(workload)!r} needs the namespace", hint="use NAMESPACE/NAME"
        )
    fields: dict[str, Any] = {
        "id": event_id,
        "workload": workload,
        "image": image,
        "cluster": cluster,
        "container": container,
        "commit": commit,
        "commit_time": commit_time,
        "pipeline_url": pipeline_url,
        "deployed_at": deployed_at,
    }
    # Validated here too, so a typo fails before any network call; the id is chosen here so a
    # retry of the same command line by hand is recognisable.
    event = dep.parse_deployment({k: v for k, v in fields.items() if v is not None}, now=now)
    url = context.settings.server_url
    if url:
        body = dict(fields, id=event.id, deployed_at=format_time(event.deployed_at))
        if event.commit_time is not None:
            body["commit_time"] = format_time(event.commit_time)
        body = {k: v for k, v in body.items() if v is not None}
        _, answer = _server_call(
            "POST", url, "/api/v1/deployments", context.settings.api_token, json=body
        )
        row = answer
    else:
        with context.open_ledger() as ledger_store:
            match, _ = dep.record_deployment(
                ledger_store, event, window=float(context.settings.deploy_match_window)
            )
        row = dep.match_json(match)
    _show([row], output_format(fmt), title="deployment recorded")


@deploy_app.command("list")
@with_blocks
def list_deployments(
    ctx: typer.Context,
    filters: RangeFilters,
    fmt: FormatOpt = "table",
    server: ServerOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Deployment events with the change each one matched and the lead time (default 7 days)."""
    context = query_context(ctx, ledger=ledger, server_url=server)
    query = filters.query()
    url = context.settings.server_url
    if url:
        params = {
            "cluster": filters.cluster,
            "namespace": filters.namespace,
            "workload": filters.workload,
            "since": filters.since,
            "from": filters.from_,
            "to": filters.to,
        }
        _, rows = _server_call(
            "GET",
            url,
            "/api/v1/deployments",
            None,
            params={k: v for k, v in params.items() if v is not None},
        )
        if not isinstance(rows, list):
            raise ServerUnavailable("the server's deployment list is not a JSON array")
    else:
        rows = [dep.match_json(m) for m in dep.deployments_with_matches(context, query)]
    _show(rows, output_format(fmt), title="deployments")


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    change = row.get("matched_change") or {}
    return {k: row.get(k) for k in LIST_COLUMNS} | {
        "matched_change_kind": change.get("kind"),
        "matched_change_started": change.get("started"),
        "matched_change_finished": change.get("finished"),
    }


def _show(rows: list[dict[str, Any]], fmt: str, *, title: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    flat = [_flat(r) for r in rows]
    if fmt == "csv":
        render_rows(flat, "csv", columns=LIST_COLUMNS)
        return
    table = [
        {
            "deployed at": r["deployed_at"],
            "workload": f"{r['namespace']}/{r['workload']}"
            + (f" ({r['container']})" if r.get("container") else ""),
            "image": r["image"],
            "commit": (r.get("commit") or "")[:12] or None,
            "matched change": _matched(row),
            "lead time": _lead(row),
        }
        for row, r in zip(rows, flat, strict=True)
    ]
    render_rows(
        table,
        "wide" if fmt == "wide" else "table",
        drop=["commit", "matched change", "lead time"],
        title=title,
    )


def _cut_short(row: dict[str, Any]) -> str | None:
    """``aborted at T`` / ``superseded at T`` for a matched rollout given up, else None."""
    change = row.get("matched_change") or {}
    if change.get("state") not in ("aborted", "superseded"):
        return None
    return f"{change['state']} at {change['ended']}" if change.get("ended") else change["state"]


def _matched(row: dict[str, Any]) -> str | None:
    change = row.get("matched_change") or {}
    if not change.get("kind"):
        return None
    if change.get("state") in ("aborted", "superseded"):
        # The state first: a narrow table cuts the end of the cell.
        ended = f" at {change['ended']}" if change.get("ended") else ""
        return f"{change['state']} {change['kind']}{ended}"
    return f"{change['kind']} at {change.get('started')}"


def _lead(row: dict[str, Any]) -> str | None:
    if row.get("lead_time_seconds") is not None:
        return format_duration(float(row["lead_time_seconds"]))
    cut = _cut_short(row)
    # Say why there is none: the rollout was given up before it finished.
    return f"none: the rollout was {cut}" if cut and row.get("commit_time") else None


# -- annotate -------------------------------------------------------------------------------


@with_blocks
def annotate(
    ctx: typer.Context,
    filters: RangeFilters,
    grafana_url: Annotated[
        str | None, typer.Option("--grafana-url", help="Grafana base URL.")
    ] = None,
    grafana_token: Annotated[
        str | None,
        typer.Option("--grafana-token", help="Service-account token (prefer the env variable)."),
    ] = None,
    dashboard_uid: Annotated[
        str | None, typer.Option("--dashboard-uid", help="Attach to this dashboard only.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the annotations; post nothing.")
    ] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Push detected changes to Grafana as annotations (each change once, however often run)."""
    context = query_context(
        ctx,
        ledger=ledger,
        grafana_url=grafana_url,
        grafana_token=grafana_token,
        grafana_dashboard_uid=dashboard_uid,
    )
    url = context.settings.grafana_url
    target = None
    if url:
        token = context.settings.grafana_token
        if not token:
            raise ConfigError(
                "no Grafana token", hint="set IMAGETRAIL_GRAFANA_TOKEN (a service-account token)"
            )
        target = GrafanaTarget(url, token, context.settings.grafana_dashboard_uid)
    result = push_annotations(
        context.changes(filters.query()),
        target,
        public_url=context.settings.public_url,
        dry_run=dry_run,
    )
    if dry_run:
        print(json.dumps(list(result.posted), indent=2, ensure_ascii=False))
    verb = "would post" if dry_run else "posted"
    err_console.print(
        Text(
            f"{verb} {len(result.posted)} annotations; "
            f"{len(result.skipped)} changes already annotated"
        ),
        soft_wrap=True,
    )
