"""Grafana dashboards for imagetrail, built with grafana-foundation-sdk.

``write_dashboards(DIR)`` writes the "Image versions" dashboard and the single panel to paste
into dotdc's "Kubernetes / Views / Namespaces" dashboard; ``dashboards()`` returns the same
as dicts. ``all_queries`` and ``substitute_variables`` let tests (and anyone) check every
PromQL expression outside Grafana.
"""

from __future__ import annotations

import json
from pathlib import Path

from imagetrail.errors import ConfigError
from imagetrail.fileio import write_atomically
from imagetrail.grafana.dashboards import (
    DASHBOARD_FILE,
    DASHBOARD_UID,
    PANEL_FILE,
    dashboards,
    load_dashboard,
    load_panel,
)
from imagetrail.grafana.panels import GRAFANA_VERSION, SCHEMA_VERSION
from imagetrail.grafana.queries import DEFAULT_VALUES, all_queries, substitute_variables

__all__ = [
    "DASHBOARD_FILE",
    "DASHBOARD_UID",
    "DEFAULT_VALUES",
    "GRAFANA_VERSION",
    "PANEL_FILE",
    "SCHEMA_VERSION",
    "all_queries",
    "dashboards",
    "load_dashboard",
    "load_panel",
    "render",
    "substitute_variables",
    "write_dashboards",
]


def render(data: object) -> str:
    """The text of one dashboard file: indented JSON, UTF-8 as is, newline at the end."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_dashboards(output: Path, *, include_panel: bool = True) -> list[Path]:
    """Write every dashboard and the paste-in panel as JSON files into ``output``.

    ``include_panel=False`` leaves the panel out: Grafana's file provisioning would load it
    as a dashboard of its own (it reads every ``*.json`` under its path). Creates the
    directory. Each file is written to a temporary file beside it and renamed
    over the old one, so Grafana (file provisioning polls the directory) never reads a half
    written dashboard. Returns the paths written; raises
    :class:`~imagetrail.errors.ConfigError` when the directory cannot be created or written.
    """
    try:
        output.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ConfigError(
            f"cannot write dashboards to {output}: it exists and is not a directory",
            hint="pass --output a directory",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot create {output}: {exc.strerror or exc}",
            hint="pass --output a directory you can write to",
        ) from exc
    written = []
    for name, data in dashboards().items():
        if name == PANEL_FILE and not include_panel:
            continue
        path = output / name
        write_atomically(path, render(data), hint="pass --output a directory you can write to")
        written.append(path)
    return written
