"""The "Image versions" dashboard and the panel to paste into dotdc's namespace dashboard.

Both are built with grafana-foundation-sdk's builders and turned into plain JSON-ready dicts
by the SDK's own encoder. Nothing from a cluster goes into them: label values only ever
reach Grafana through its variables at query time, so no image or namespace name can break
the JSON or a query.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dash

from imagetrail.grafana import annotation, variables
from imagetrail.grafana.panels import (
    SCHEMA_VERSION,
    Layout,
    row,
    stat,
    table,
    target,
    timeseries,
    value_mappings,
)
from imagetrail.grafana.queries import ksm_filter, workload_filter

__all__ = [
    "DASHBOARD_FILE",
    "DASHBOARD_UID",
    "PANEL_FILE",
    "dashboards",
    "image_versions",
    "load_dashboard",
    "load_panel",
    "paste_in_panel",
    "to_plain",
]

DASHBOARD_UID = "imagetrail-image-versions"
DASHBOARD_FILE = "imagetrail-image-versions.json"
PANEL_FILE = "imagetrail-panel-container-image-versions.json"

F = workload_filter()
# kube-state-metrics lists no sandbox containers; an empty container label is defensive.
KSM = ksm_filter('container!=""')
_W_COLUMNS = [
    ("cluster", "cluster"),
    ("namespace", "namespace"),
    ("workload_kind", "kind"),
    ("workload", "workload"),
    ("container", "container"),
]

# The original dotdc panel, v2.4.0 ("Container Image Used"), with $cluster matched as a
# regex because it is multi-value here.
ORIGINAL_EXPR = (
    'count(rate(container_cpu_usage_seconds_total{namespace=~"$namespace", image!="", '
    'cluster=~"$cluster"}[$__rate_interval])) by (image)'
)

# Colours for the change kinds of docs/metrics.md (a fixed vocabulary, not cluster data).
_KIND_COLOURS = {
    "upgrade": ("upgrade", "green"),
    "downgrade": ("downgrade", "orange"),
    "rollback": ("rollback", "red"),
    "tag-repush": ("tag-repush", "purple"),
    "added": ("added", "blue"),
    "removed": ("removed", "text"),
    "other": ("other", "text"),
}

_DAY = 86_400

# A dashboard section: an expanded row header followed by its panels (Grafana keeps the
# panels of an expanded row beside it, not inside it), or one collapsed row holding them.
_Item = dash_b.Row | stat_b.Panel | ts_b.Panel | table_b.Panel


def _overview(layout: Layout) -> list[_Item]:
    return [
        row(layout, "Overview"),
        stat(
            layout,
            "Workload containers",
            "Workload containers running in the selection (imagetrail_workload_versions).",
            f"count(imagetrail_workload_versions{{{F}}}) or vector(0)",
        ),
        stat(
            layout,
            "Versions running",
            "Distinct versions (image + digest) running in the selection.",
            f"count(count by (image, digest) (imagetrail_image_info{{{F}}})) or vector(0)",
        ),
        stat(
            layout,
            "More than one version",
            "Workload containers running more than one version: a rollout in progress or stuck.",
            f"count(imagetrail_workload_versions{{{F}}} > 1) or vector(0)",
            steps=((None, "green"), (1, "orange")),
        ),
        stat(
            layout,
            "Rollouts in progress",
            "Workload containers whose newest change has not finished "
            "(imagetrail_rollout_in_progress).",
            f"sum(imagetrail_rollout_in_progress{{{F}}}) or vector(0)",
            steps=((None, "green"), (1, "orange")),
        ),
        stat(
            layout,
            "Changes in the churn window",
            "Changes started within imagetrail's churn window (default 24 h) before the "
            "end of its data (imagetrail_recent_changes).",
            f"sum(imagetrail_recent_changes{{{F}}}) or vector(0)",
        ),
        stat(
            layout,
            "Re-pushed tags",
            "Running tags that have had more than one digest in their workload "
            "container's history (imagetrail_tag_digests > 1).",
            f"count(imagetrail_tag_digests{{{F}}} > 1) or vector(0)",
            steps=((None, "green"), (1, "red")),
        ),
    ]


def _versions_over_time(layout: Layout) -> list[_Item]:
    return [
        row(layout, "Versions over time"),
        timeseries(
            layout,
            "Image versions over time",
            "Workload containers running each image version. From imagetrail's ledger, "
            "so pod sandbox (pause) containers never appear and short-lived containers "
            "are not lost to a rate window.",
            [target(f"count by (image) (imagetrail_image_info{{{F}}})", "{{image}}")],
            bars=True,
        ),
        timeseries(
            layout,
            "Containers per image (kube-state-metrics)",
            "Containers of each image as kube-state-metrics lists them: the original "
            "panel's count without the pause containers (kube_pod_container_info has "
            "none) and without a rate window. Workloads are matched by pod name.",
            [
                target(
                    f"count by (image) (kube_pod_container_info{{{KSM}}})",
                    "{{image}}",
                )
            ],
            bars=True,
        ),
    ]


def _original(layout: Layout) -> list[_Item]:
    sandbox_free = ksm_filter('image!=""', 'container!=""', 'container!="POD"')
    built = (
        row(layout, "Original panel (dotdc, counts pause)", collapsed=True)
        .with_panel(
            timeseries(
                layout,
                "Container Image Used — original panel (counts pause)",
                "The dotdc panel's query as it is: it also counts pod sandbox (pause) "
                "containers, shows bare sha256 ids, and drops containers shorter than the "
                "rate window. Kept for comparison.",
                [target(ORIGINAL_EXPR, "{{ image }}")],
                bars=True,
                w=12,
                h=8,
            )
        )
        .with_panel(
            timeseries(
                layout,
                "Container Image Used — sandbox excluded",
                "The same cAdvisor signal without the sandbox: containerd reports it with an "
                'empty container label, Docker with container="POD".',
                [
                    target(
                        "count by (image) (rate(container_cpu_usage_seconds_total"
                        f"{{{sandbox_free}}}[$__rate_interval]))",
                        "{{image}}",
                    )
                ],
                bars=True,
                w=12,
                h=8,
            )
        )
    )
    layout.end_collapsed_row()
    return [built]


def _now(layout: Layout) -> list[_Item]:
    kind_mappings = dash.DynamicConfigValue(id_val="mappings", value=value_mappings(_KIND_COLOURS))
    colour_text = dash.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})
    return [
        row(layout, "Now"),
        table(
            layout,
            "Versions now",
            "Every version running in the selection and the number of workload "
            "containers running it (imagetrail_image_info). An empty digest means the "
            "digest is not known (cAdvisor signal); an empty tag a digest-only reference.",
            f"count by (image, tag, digest) (imagetrail_image_info{{{F}}})",
            columns=[("image", "image"), ("tag", "tag"), ("digest", "digest")],
            value_column="workload containers",
            sort_by="workload containers",
        ),
        table(
            layout,
            "Workloads running more than one version",
            "Workload containers with more than one version running: a rollout in "
            "progress, or stuck (imagetrail_workload_versions > 1).",
            f"imagetrail_workload_versions{{{F}}} > 1",
            columns=_W_COLUMNS,
            value_column="versions",
            sort_by="versions",
        ),
        table(
            layout,
            "Recent changes",
            "The newest change of each kind per workload container, newest first "
            "(imagetrail_last_change_timestamp_seconds; at most 100 rows).",
            f"topk(100, imagetrail_last_change_timestamp_seconds{{{F}}}) * 1000",
            columns=[*_W_COLUMNS, ("kind", "change")],
            value_column="started",
            sort_by="started",
            overrides={
                "started": [dash.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")],
                "change": [kind_mappings, colour_text],
            },
        ),
        table(
            layout,
            "Digests (kube-state-metrics)",
            "Which digest each image reference resolved to, and on how many containers "
            "(kube_pod_container_info's image_id). One image with several digests: the "
            "tag was re-pushed, or nodes pulled it at different times.",
            f"count by (cluster, namespace, image, image_id) (kube_pod_container_info{{{KSM}}})",
            columns=[
                ("cluster", "cluster"),
                ("namespace", "namespace"),
                ("image", "image"),
                ("image_id", "image id (digest)"),
            ],
            value_column="containers",
            sort_by="containers",
        ),
        table(
            layout,
            "Image age",
            "How long each running version has run in its workload container without "
            "interruption (imagetrail_running_image_age_seconds), oldest first. Orange "
            "after 30 days, red after 90.",
            f"imagetrail_running_image_age_seconds{{{F}}}",
            columns=[*_W_COLUMNS, ("image", "image"), ("digest", "digest")],
            value_column="running for",
            sort_by="running for",
            overrides={
                "running for": [
                    dash.DynamicConfigValue(id_val="unit", value="dtdurations"),
                    colour_text,
                    dash.DynamicConfigValue(
                        id_val="thresholds",
                        value={
                            "mode": "absolute",
                            "steps": [
                                {"color": "green", "value": None},
                                {"color": "orange", "value": 30 * _DAY},
                                {"color": "red", "value": 90 * _DAY},
                            ],
                        },
                    ),
                ]
            },
            w=24,
        ),
    ]


def _sync_health(layout: Layout) -> list[_Item]:
    return [
        row(layout, "Sync health"),
        stat(
            layout,
            "Sync",
            "Whether imagetrail's newest background sync pass succeeded (imagetrail_sync_up;"
            " no data when imagetrail serves without --prometheus).",
            "min(imagetrail_sync_up)",
            steps=((None, "red"), (1, "green")),
            mappings={"0": ("failing", "red"), "1": ("OK", "green")},
            h=5,
        ),
        stat(
            layout,
            "Ledger lag",
            "How far the ledger's data is behind now (imagetrail_ledger_lag_seconds).",
            "max(imagetrail_ledger_lag_seconds)",
            unit="s",
            steps=((None, "green"), (600, "orange"), (3600, "red")),
            h=5,
        ),
        stat(
            layout,
            "Since the last successful sync",
            "time() - imagetrail_sync_last_success_timestamp_seconds.",
            "time() - max(imagetrail_sync_last_success_timestamp_seconds)",
            unit="s",
            steps=((None, "green"), (600, "orange"), (3600, "red")),
            h=5,
        ),
        stat(
            layout,
            "Failed sync passes",
            "Background sync passes that failed in the dashboard's time range "
            "(imagetrail_sync_errors_total).",
            "sum(increase(imagetrail_sync_errors_total[$__range]))",
            steps=((None, "green"), (1, "red")),
            h=5,
        ),
        timeseries(
            layout,
            "Ledger lag over time",
            "imagetrail_ledger_lag_seconds per imagetrail instance.",
            [target("max by (instance) (imagetrail_ledger_lag_seconds)", "{{instance}}")],
            unit="s",
            w=8,
            h=5,
        ),
    ]


def image_versions() -> dash_b.Dashboard:
    """The "Image versions" dashboard (a builder; ``.build()`` gives the SDK model)."""
    layout = Layout()
    board = (
        dash_b.Dashboard("Image versions")
        .uid(DASHBOARD_UID)
        .description(
            "Which container image versions run where, since when, and what changed — from "
            "imagetrail's exporter metrics and kube-state-metrics. Generated by "
            "`imagetrail dashboards`."
        )
        .tags(["imagetrail", "Kubernetes", "Prometheus"])
        .editable()
        .tooltip(dash.DashboardCursorSync.CROSSHAIR)
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .variables(
            [
                variables.datasource(),
                variables.cluster(),
                variables.namespace(),
                variables.workload(),
            ]
        )
        .annotations([annotation.built_in(), annotation.image_changes()])
    )
    for section in (_overview, _versions_over_time, _original, _now, _sync_health):
        for item in section(layout):
            board = board.with_row(item) if isinstance(item, dash_b.Row) else board.with_panel(item)
    return board


# For dotdc's "Kubernetes / Views / Namespaces": its $cluster is single-value, matched with
# "=" as dotdc's own panels do; its $namespace is multi-value, matched with "=~".
PASTE_IN_EXPR = (
    'count by (image) (kube_pod_container_info{cluster="$cluster", namespace=~"$namespace", '
    'container!=""})'
)


def paste_in_panel() -> ts_b.Panel:
    """The "Container image versions" panel for dotdc's namespace dashboard (a builder)."""
    return timeseries(
        Layout(),
        "Container image versions",
        'Containers per image (kube-state-metrics), replacing "Container Image Used": no '
        "pod sandbox (pause) containers, full image references instead of bare sha256 ids, "
        "and no rate window that drops short-lived containers. Generated by imagetrail.",
        [target(PASTE_IN_EXPR, "{{image}}")],
        bars=True,
        w=12,
        h=8,
    )


def to_plain(model: object) -> dict[str, Any]:
    """An SDK model as plain JSON-ready data (dicts, lists, strings, numbers)."""
    plain: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return plain


def _register_plugins() -> None:
    # The SDK decodes panel options and queries into typed models only for the plugins
    # registered in its runtime; registering is idempotent.
    plugins.register_default_plugins()


def load_dashboard(data: dict[str, Any]) -> dash.Dashboard:
    """A dashboard dict loaded into the SDK's models (typed panels, options and queries)."""
    _register_plugins()
    return dash.Dashboard.from_json(data)


def load_panel(data: dict[str, Any]) -> dash.Panel:
    """A single panel dict loaded into the SDK's models."""
    _register_plugins()
    return dash.Panel.from_json(data)


def dashboards() -> dict[str, dict[str, Any]]:
    """Every file ``write_dashboards`` writes: file name → JSON-ready dict.

    The "Image versions" dashboard and the paste-in panel for dotdc's namespace dashboard.
    """
    model = image_versions().build()
    # Pin the schema the panels are written for, whatever the SDK's default becomes.
    model.schema_version = SCHEMA_VERSION
    return {
        DASHBOARD_FILE: to_plain(model),
        PANEL_FILE: to_plain(paste_in_panel().build()),
    }
