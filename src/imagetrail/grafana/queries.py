"""The PromQL behind every panel, and the tools to check it outside Grafana.

Every expression is a constant built from metric names, label names and Grafana variable
references (``$cluster`` …) — never from label values. Grafana fills the variables in when
it runs a query, escaping the values of multi-value variables for ``=~``; that is why every
filter on a multi-value variable is a regex match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from imagetrail.errors import InputError

__all__ = [
    "ALL_VALUES",
    "BUILTIN_VALUES",
    "DEFAULT_VALUES",
    "all_queries",
    "ksm_filter",
    "substitute_variables",
    "variable_names",
    "variable_query_expr",
    "workload_filter",
]

# The label filter of every query on imagetrail's own per-workload-container metrics.
WORKLOAD_FILTER = 'cluster=~"$cluster", namespace=~"$namespace", workload=~"$workload"'

# kube-state-metrics and cAdvisor know pods, not workloads: a workload's pods are named
# ``<workload>-<suffix>`` (ReplicaSet hash, ordinal, random suffix) or, for a bare pod, the
# name itself. With "All" ``$workload`` is ``.*`` and this matches every pod.
POD_OF_WORKLOAD = 'pod=~"(${workload})(-.+)?"'


def workload_filter(*extra: str) -> str:
    """Matchers for imagetrail's per-workload-container metrics, plus ``extra`` matchers."""
    return ", ".join((WORKLOAD_FILTER, *extra))


def ksm_filter(*extra: str) -> str:
    """Matchers for kube-state-metrics/cAdvisor series: cluster, namespace, the workload's pods."""
    return ", ".join(('cluster=~"$cluster"', 'namespace=~"$namespace"', POD_OF_WORKLOAD, *extra))


# The dashboards' own variables on "All": every filter variable's "All" value is ``.*``, so
# against a real Prometheus the substituted query matches everything, as Grafana would run it.
ALL_VALUES: Mapping[str, str] = {
    "datasource": "prometheus",
    "cluster": ".*",
    "namespace": ".*",
    "workload": ".*",
    "created_by": ".*",
    "resolution": "30s",
}

# Grafana's global variables, with values a one-hour dashboard range would give.
BUILTIN_VALUES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__auto": "30s",
    "__from": "1700000000000",
    "__to": "1700003600000",
}

DEFAULT_VALUES: Mapping[str, str] = {**ALL_VALUES, **BUILTIN_VALUES}

# Grafana's own variable syntax: $name, ${name}, ${name:format}, ${name.field}, [[name]],
# [[name:format]] (the same alternatives as its templateSrv regex).
_VARIABLE = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\[\[(?P<bracket>\w+?)(?::\w+)?\]\]"
    r"|\$\{(?P<braced>\w+)(?:\.[^:^}]+)?(?::[^}]+)?\}"
)


def substitute_variables(
    expr: str, values: Mapping[str, str] | None = None, *, all_values: bool = True
) -> str:
    """Replace Grafana variables in ``expr`` with plausible values, giving plain PromQL.

    Grafana's global variables get :data:`BUILTIN_VALUES`; with ``all_values`` (the
    default) the dashboards' variables get their "All" value (:data:`ALL_VALUES`, ``.*``),
    without it they must be given. ``values`` overrides both (e.g. ``{"cluster": "prod-eu"}``
    for a query that matches ``cluster="$cluster"`` exactly); values are inserted as they
    are, so pass values that are valid inside the PromQL string they land in. ``$1``-style
    regex back-references are left alone, as Grafana leaves them. An unknown variable raises
    :class:`~imagetrail.errors.InputError`: a dashboard must not use a variable it does not
    define.
    """
    known = {**BUILTIN_VALUES, **(ALL_VALUES if all_values else {}), **(values or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group("plain") or match.group("bracket") or match.group("braced")
        if name.isdigit():
            return match.group(0)
        if name not in known:
            raise InputError(
                f"unknown Grafana variable ${name} in {expr!r}",
                hint="define it on the dashboard or pass a value for it",
            )
        return known[name]

    return _VARIABLE.sub(replace, expr)


def variable_names(expr: str) -> set[str]:
    """The Grafana variables ``expr`` refers to (without ``$1``-style back-references)."""
    names = set()
    for match in _VARIABLE.finditer(expr):
        name = match.group("plain") or match.group("bracket") or match.group("braced")
        if not name.isdigit():
            names.add(name)
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


def variable_query_expr(query: str) -> str:
    """The PromQL that lists the values a ``label_values(selector, label)`` variable offers.

    Grafana asks the series API; ``count by (label) (selector)`` returns the same label
    values as an ordinary query, so it can be parsed and run like any panel query.
    """
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise InputError(f"not a label_values(selector, label) variable query: {query!r}")
    return f"count by ({match['label']}) ({match['selector']})"


def _panels(panels: list[Any]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # A collapsed row keeps its panels inside it.
        yield from _panels(panel.get("panels") or [])


def all_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, PromQL) for every panel target, annotation and variable query of ``dashboard``.

    ``dashboard`` is a dashboard dict as :func:`imagetrail.grafana.dashboards` returns, or a
    single panel dict (the paste-in panel). Expressions still contain Grafana variables: run
    them through :func:`substitute_variables`. Annotations are titled ``annotation: NAME``,
    variables ``variable: $NAME``.
    """
    out: list[tuple[str, str]] = []
    # A dashboard has no "type"; a panel has one.
    panels = [dashboard] if "type" in dashboard else list(dashboard.get("panels") or [])
    for panel in _panels(panels):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                out.append((str(panel.get("title", "")), str(target["expr"])))
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        if annotation.get("expr"):
            out.append((f"annotation: {annotation['name']}", str(annotation["expr"])))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if text:
            out.append((f"variable: ${variable['name']}", variable_query_expr(str(text))))
    return out
