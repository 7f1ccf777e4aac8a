"""Prometheus alert rules over the exporter's metrics, with thresholds from the settings.

``render(settings, "prometheus")`` is a rule file for ``rule_files:``;
``render(settings, "prometheus-operator")`` a ``PrometheusRule`` object. ``alert_rules`` gives
the rules as values; docs/alerts.md is the runbook of each.
"""

from __future__ import annotations

from imagetrail.rules.alerts import (
    ALERT_NAMES,
    GROUP,
    RUNBOOK_BASE,
    Rule,
    alert_rules,
    prometheus_duration,
    runbook_anchor,
    runbook_url,
)
from imagetrail.rules.render import FORMATS, PROMETHEUS_RULE_NAME, groups, render

__all__ = [
    "ALERT_NAMES",
    "FORMATS",
    "GROUP",
    "PROMETHEUS_RULE_NAME",
    "RUNBOOK_BASE",
    "Rule",
    "alert_rules",
    "groups",
    "prometheus_duration",
    "render",
    "runbook_anchor",
    "runbook_url",
]
