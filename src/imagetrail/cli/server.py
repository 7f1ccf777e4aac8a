"""Running imagetrail and wiring it in: ``serve`` (the web app, the API and /metrics),
``dashboards`` (Grafana), ``rules`` (Prometheus alerts) and ``settings``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from imagetrail import settings as settings_mod
from imagetrail.cli.options import (
    HostOpt,
    LedgerOpt,
    PortOpt,
    PromOpt,
    SignalOpt,
    announce,
    console,
    err_console,
    load_settings,
)
from imagetrail.cli.render import render_rows
from imagetrail.timeutil import format_duration


def serve_ledger(settings: settings_mod.Settings, *, sync: bool, what: str) -> None:
    """Serve the web app on the settings' ledger until Ctrl-C (syncing it meanwhile with
    ``sync``); ``what`` is said with the URL it listens on."""
    from imagetrail.ledger import Ledger
    from imagetrail.web import serve as run_server

    ledger = Ledger.open(settings.ledger, create=sync)
    try:
        run_server(settings, ledger, sync=sync, on_listen=announce(what))
    finally:
        ledger.close()


def serve(
    ctx: typer.Context,
    prometheus: PromOpt = None,
    ledger: LedgerOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    signal: SignalOpt = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help=settings_mod.BY_NAME["workers"].help)
    ] = None,
) -> None:
    """Web app + JSON API + /metrics; with --prometheus it keeps the ledger in sync meanwhile."""
    settings = load_settings(
        ctx,
        prometheus_url=prometheus,
        ledger=ledger,
        host=host,
        port=port,
        signal=signal,
        workers=workers,
    )
    serve_ledger(settings, sync=bool(settings.prometheus_url), what="imagetrail serves")


def dashboards(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the dashboard JSON to.")
    ],
    panel: Annotated[
        bool,
        typer.Option(
            "--panel/--no-panel",
            help="Also write the panel for dotdc's dashboard (leave it out of a directory "
            "Grafana provisions from).",
        ),
    ] = True,
) -> None:
    """Write the Grafana dashboards (and the panel for dotdc's namespace dashboard) as JSON."""
    from imagetrail.grafana import write_dashboards

    for path in write_dashboards(output, include_panel=panel):
        console.print(Text(f"wrote {path}"), soft_wrap=True)


def rules(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="prometheus (rule file) or prometheus-operator.")
    ] = "prometheus",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Prometheus alert rules on the exporter's metrics; thresholds come from the settings."""
    from imagetrail.rules import render

    text = render(load_settings(ctx), fmt)
    if output is None:
        sys.stdout.write(text)
        return
    from imagetrail.fileio import write_atomically

    write_atomically(output, text)
    err_console.print(Text(f"wrote {output}"), soft_wrap=True)


def show_settings(ctx: typer.Context) -> None:
    """Every setting, its value and where the value came from (secrets masked)."""
    resolved = load_settings(ctx)
    values = resolved.redacted()
    render_rows(
        [
            {
                "setting": s.name,
                "value": _setting_text(s, values[s.name]),
                "from": resolved.origins[s.name],
                "env": s.env,
            }
            for s in settings_mod.SETTINGS
        ],
        "table",
        key="setting",
        whole=["env"],
        keep=["env"],
        title="settings",
    )


_DURATION_TEXT = re.compile(r"^\d+(?:\.\d+)?(?:ms|[smhdw])(?:\d+(?:ms|[smhdw]))*$")


def _setting_text(setting: settings_mod.Setting, value: Any) -> str | None:
    """A setting's value as it is written: a duration as ``7d`` (not ``604800.0``)."""
    if value is None:
        return None
    if (
        isinstance(value, float)
        and setting.default is not None
        and _DURATION_TEXT.match(setting.default)
    ):
        return format_duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
