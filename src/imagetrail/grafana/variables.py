"""Dashboard variables, defined the way the dotdc Kubernetes dashboards define theirs.

dotdc ("Kubernetes / Views / …") has a ``datasource`` variable of type datasource (query
``prometheus``, refresh on load, no regex), then query variables from ``label_values(…)``
refreshed on dashboard load (``cluster``, ``namespace``) or on time-range change (its
workload filter ``created_by``), sorted alphabetically, the multi-value ones with
``includeAll`` and ``allValue: ".*"``. imagetrail's variables are the same, read from
imagetrail's own ``imagetrail_image_info`` so they list exactly what the panels can show.

One deliberate difference: ``cluster`` is multi-value with "All" here (dotdc's picks one
cluster) — imagetrail is a fleet tool, and version drift between clusters is only visible
with several selected. Grafana regex-escapes the values of a multi-value variable, so the
panels match it with ``=~``.
"""

from __future__ import annotations

from typing import Self

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard as dash

from imagetrail.grafana.panels import DATASOURCE

__all__ = ["cluster", "datasource", "namespace", "workload"]

# The refId Grafana's Prometheus variable editor gives a label-values query (as in dotdc).
_EDITOR_REF = "PrometheusVariableQueryEditor-VariableQuery"
_LABEL_VALUES = 1  # the editor's "Label values" query type


class _DatasourceVariable(dash_b.DatasourceVariable):
    """The SDK's builder lacks ``refresh`` and ``options``, which dotdc's variable sets."""

    def refresh(self, refresh: dash.VariableRefresh) -> Self:
        self._internal.refresh = refresh
        return self

    def options(self, options: list[dash.VariableOption]) -> Self:
        self._internal.options = options
        return self


def datasource() -> dash_b.DatasourceVariable:
    """``$datasource``: any Prometheus data source, as in every dotdc dashboard."""
    return (
        _DatasourceVariable("datasource")
        .type("prometheus")
        .hide(dash.VariableHide.DONT_HIDE)
        .multi(False)
        .include_all(False)
        .regex("")
        .options([])
        .refresh(dash.VariableRefresh.ON_DASHBOARD_LOAD)
    )


def _label_values(
    name: str,
    query: str,
    refresh: dash.VariableRefresh,
    description: str,
) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(name)
        .description(description)
        .datasource(DATASOURCE)
        .query({"qryType": _LABEL_VALUES, "query": query, "refId": _EDITOR_REF})
        .hide(dash.VariableHide.DONT_HIDE)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .options([])
        .refresh(refresh)
        .regex("")
        .sort(dash.VariableSort.ALPHABETICAL_ASC)
    )


def cluster() -> dash_b.QueryVariable:
    """``$cluster``: the clusters imagetrail reports on."""
    return _label_values(
        "cluster",
        "label_values(imagetrail_image_info, cluster)",
        dash.VariableRefresh.ON_DASHBOARD_LOAD,
        "Clusters known to imagetrail (the cluster label of imagetrail_image_info).",
    )


def namespace() -> dash_b.QueryVariable:
    """``$namespace``: namespaces of the selected clusters."""
    return _label_values(
        "namespace",
        'label_values(imagetrail_image_info{cluster=~"$cluster"}, namespace)',
        dash.VariableRefresh.ON_DASHBOARD_LOAD,
        "Namespaces of the selected clusters.",
    )


def workload() -> dash_b.QueryVariable:
    """``$workload``: workloads (Deployment, StatefulSet, … names) in the selection."""
    return _label_values(
        "workload",
        'label_values(imagetrail_image_info{cluster=~"$cluster", namespace=~"$namespace"}, '
        "workload)",
        # Like dotdc's workload filter: workloads come and go with the time range.
        dash.VariableRefresh.ON_TIME_RANGE_CHANGED,
        "Workloads (Deployment, StatefulSet, DaemonSet, CronJob … names) in the selected "
        "namespaces. Panels from kube-state-metrics or cAdvisor match their pods by name "
        "(<workload>-…).",
    )
