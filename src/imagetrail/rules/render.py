"""The alert rules as YAML: a Prometheus rule file or a prometheus-operator ``PrometheusRule``."""

from __future__ import annotations

from typing import Any

import yaml

from imagetrail.errors import InputError
from imagetrail.rules.alerts import GROUP, alert_rules
from imagetrail.settings import Settings

FORMATS = ("prometheus", "prometheus-operator")
PROMETHEUS_RULE_NAME = "imagetrail"
# kube-prometheus selects rules by these labels (its default ruleSelector matches any); the
# app.kubernetes.io ones say where the object came from.
PROMETHEUS_RULE_LABELS = {
    "app.kubernetes.io/name": "imagetrail",
    "app.kubernetes.io/component": "alert-rules",
    "prometheus": "k8s",
    "role": "alert-rules",
}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so a PromQL expression reads as written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def groups(settings: Settings) -> list[dict[str, Any]]:
    """The rule groups (one, ``imagetrail``) as plain data, as both formats embed them."""
    return [{"name": GROUP, "rules": [r.to_dict() for r in alert_rules(settings)]}]


def render(settings: Settings, fmt: str) -> str:
    """The alert rules as YAML text: ``fmt`` is ``prometheus`` or ``prometheus-operator``."""
    if fmt == "prometheus":
        doc: dict[str, Any] = {"groups": groups(settings)}
    elif fmt == "prometheus-operator":
        doc = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": PROMETHEUS_RULE_NAME, "labels": dict(PROMETHEUS_RULE_LABELS)},
            "spec": {"groups": groups(settings)},
        }
    else:
        raise InputError(f"unknown rules format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,  # one line per annotation: no folding inside {{ }}
    )
