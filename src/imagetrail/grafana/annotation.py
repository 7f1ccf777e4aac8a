"""Dashboard annotations: Grafana's built-in one, and image changes from imagetrail's metrics."""

from __future__ import annotations

from typing import Self

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard as dash

from imagetrail.grafana.panels import DATASOURCE
from imagetrail.grafana.queries import workload_filter

__all__ = ["PROMETHEUS_ANNOTATION_FIELDS", "built_in", "image_changes"]

# Fields Grafana's Prometheus annotation support reads that the SDK's AnnotationQuery model
# does not know (it models the Grafana-datasource annotation): without them every event
# would have an empty title and text. They are the only keys a round trip through the SDK's
# models may lose.
PROMETHEUS_ANNOTATION_FIELDS = ("titleFormat", "textFormat", "tagKeys", "useValueForTime")


class PrometheusAnnotationQuery(dash.AnnotationQuery):
    """The SDK's AnnotationQuery plus the Prometheus-specific event formatting fields."""

    def __init__(self) -> None:
        super().__init__()
        self.title_format: str | None = None
        self.text_format: str | None = None
        self.tag_keys: str | None = None
        self.use_value_for_time: bool | None = None

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        extra = (self.title_format, self.text_format, self.tag_keys, self.use_value_for_time)
        for key, value in zip(PROMETHEUS_ANNOTATION_FIELDS, extra, strict=True):
            if value is not None:
                payload[key] = value
        return payload


class PrometheusAnnotation(dash_b.AnnotationQuery):
    """Builds a :class:`PrometheusAnnotationQuery`."""

    _internal: PrometheusAnnotationQuery

    def __init__(self) -> None:
        self._internal = PrometheusAnnotationQuery()

    def build(self) -> PrometheusAnnotationQuery:
        return self._internal

    def title_format(self, title_format: str) -> Self:
        """Event title: a legend template over the series labels (``{{kind}}``)."""
        self._internal.title_format = title_format
        return self

    def text_format(self, text_format: str) -> Self:
        """Event text: a legend template over the series labels."""
        self._internal.text_format = text_format
        return self

    def tag_keys(self, tag_keys: str) -> Self:
        """Comma-separated labels whose values become the event's tags."""
        self._internal.tag_keys = tag_keys
        return self

    def use_value_for_time(self, use_value_for_time: bool) -> Self:
        """Take the event time from the sample value (in ms) instead of the sample time."""
        self._internal.use_value_for_time = use_value_for_time
        return self


def built_in() -> dash_b.AnnotationQuery:
    """Grafana's own "Annotations & Alerts", exactly as the dotdc dashboards carry it."""
    return (
        dash_b.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dash.DataSourceRef(type_val="datasource", uid="grafana"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
        .target(dash_b.AnnotationTarget().limit(100).match_any(False).tags([]).type("dashboard"))
    )


# The value is the start of the newest change of each kind (seconds); Grafana wants the
# event time in milliseconds. Using the value, not the sample time, puts the marker where the
# change began rather than where a scrape first saw it, and identical values of one series
# collapse into one event.
IMAGE_CHANGES_EXPR = f"imagetrail_last_change_timestamp_seconds{{{workload_filter()}}} * 1000"


def image_changes() -> PrometheusAnnotation:
    """Markers at every image change of the selected workloads, titled with the change kind."""
    return (
        PrometheusAnnotation()
        .name("Image changes")
        .datasource(DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color("orange")
        .expr(IMAGE_CHANGES_EXPR)
        .title_format("{{kind}}: {{namespace}}/{{workload}}")
        .text_format("{{workload_kind}} {{workload}}, container {{container}}, cluster {{cluster}}")
        .tag_keys("cluster,namespace,workload,kind")
        .use_value_for_time(True)
    )
