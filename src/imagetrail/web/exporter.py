"""The ``imagetrail_*`` metrics on ``/metrics`` (docs/metrics.md): a prometheus-client collector.

Each scrape computes the series from the ledger's current state, so a workload that stops
running loses its series at once; the expensive part (:func:`current_state` over every span)
is cached until the ledger changes, and only the ages are recomputed per scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from imagetrail.analysis.current import (
    ContainerState,
    FailingRollout,
    current_state,
    failing_rollouts,
)
from imagetrail.analysis.silence import Silence
from imagetrail.analysis.spanindex import SpanIndex
from imagetrail.errors import ImagetrailError
from imagetrail.model import Change

if TYPE_CHECKING:
    from imagetrail.web.syncer import SyncStatus

log = logging.getLogger("imagetrail.web.exporter")
WORKLOAD_LABELS = ["cluster", "namespace", "workload_kind", "workload", "container"]


class ExporterCollector(Collector):
    """Collects from the functions it is given, not from the app (the span index, the ledger's
    changes, each cluster's end of data, the sync loop's status), so a test can hand it any.

    ``changes_stamp`` first brings the derived changes up to date (a sync killed before
    deriving them), then says which version of them :func:`changes` reads.
    """

    def __init__(
        self,
        *,
        index: Callable[[], SpanIndex],
        changes: Callable[[], list[Change]],
        changes_stamp: Callable[[], object],
        silence: Callable[[], Silence],
        sync_status: Callable[[], SyncStatus],
        tolerance: float,
        churn_window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index = index
        self._changes = changes
        self._changes_stamp = changes_stamp
        self._silence = silence
        self._sync_status = sync_status
        self._tolerance = tolerance
        self._churn_window = churn_window
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: _Snapshot | None = None

    def _snapshot(self, index: SpanIndex) -> _Snapshot | None:
        """Current states, the instant they describe, each cluster's end of data and the stuck
        rollouts; None for an empty ledger. A silent cluster keeps its last known series
        (docs/metrics.md)."""
        if index.bounds is None:
            return None
        stamp = (id(index), self._changes_stamp())
        with self._lock:
            if self._cached is None or self._cached.stamp != stamp:
                at = index.data_end
                silence = self._silence()
                spans = index.select(index.mask(), tolerance=self._tolerance, silence=silence)
                changes = self._changes()
                states = current_state(spans, changes, at=at, window=self._churn_window)
                failing = [
                    f for f in failing_rollouts(changes, at=at) if not silence.gone(f.key[0])
                ]
                self._cached = _Snapshot(stamp, states, at, silence, failing)
            return self._cached

    def describe(self) -> Iterator[Metric]:
        # Registering must not compute anything (the registry would collect() to learn names).
        return iter(())

    def collect(self) -> Iterator[Metric]:
        yield from self._sync_metrics()
        try:
            index = self._index()
            snapshot = self._snapshot(index)
        except ImagetrailError as exc:
            # /metrics must still answer (process and sync metrics tell what is wrong).
            log.warning("ledger metrics unavailable: %s", exc.message)
            return
        if snapshot is None:
            return
        states, at, silence = snapshot.states, snapshot.at, snapshot.silence
        now = self._clock()
        yield _gauge(
            "imagetrail_ledger_data_end_timestamp_seconds", "Where the ledger's data ends.", at
        )
        yield _gauge(
            "imagetrail_ledger_lag_seconds",
            "Scrape time minus where the ledger's data ends.",
            now - at,
        )
        yield _gauge("imagetrail_ledger_spans", "Spans in the ledger.", len(index))
        last_data = GaugeMetricFamily(
            "imagetrail_cluster_last_data_timestamp_seconds",
            "Newest sample of each cluster in the ledger (a cluster far behind the ledger's "
            "data end is silent; clusters gone for cluster_silent_forget_after are left out).",
            labels=["cluster"],
        )
        for cluster in sorted(silence.ends):
            if not silence.gone(cluster):
                last_data.add_metric([cluster], silence.end(cluster))
        yield last_data
        yield from _container_metrics(states, now)
        yield _failing_metric(snapshot.failing)

    def _sync_metrics(self) -> Iterator[Metric]:
        status = self._sync_status()
        if not status.enabled:
            return
        up = 1.0 if status.passes and status.last_error is None else 0.0
        yield _gauge("imagetrail_sync_up", "1 when the newest background sync pass succeeded.", up)
        if status.last_success is not None:
            yield _gauge(
                "imagetrail_sync_last_success_timestamp_seconds",
                "End of the newest successful background sync pass.",
                status.last_success,
            )
        yield CounterMetricFamily(
            "imagetrail_sync_errors",
            "Failed background sync passes since the process started.",
            value=status.failures,
        )
        yield CounterMetricFamily(
            "imagetrail_sync_passes",
            "Background sync passes since the process started.",
            value=status.passes,
        )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    stamp: object
    states: list[ContainerState]
    at: float
    silence: Silence
    failing: list[FailingRollout]


def _failing_metric(failing: list[FailingRollout]) -> GaugeMetricFamily:
    """One series per reason of each stuck rollout (docs/metrics.md); gone once it is over."""
    family = GaugeMetricFamily(
        "imagetrail_rollout_failing",
        "1 for each reason the newest rollout of a workload container is stuck (its new pods "
        "do not run: ImagePullBackOff, CreateContainerConfigError, ...).",
        labels=[*WORKLOAD_LABELS, "reason"],
    )
    for f in failing:
        for reason in f.reasons:
            family.add_metric([*f.key, reason], 1.0)
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _container_metrics(states: list[ContainerState], now: float) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "imagetrail_image_info",
        "A version running in a workload container (always 1).",
        labels=[*WORKLOAD_LABELS, "image", "tag", "digest"],
    )
    versions = GaugeMetricFamily(
        "imagetrail_workload_versions",
        "Distinct versions running in a workload container.",
        labels=WORKLOAD_LABELS,
    )
    containers = GaugeMetricFamily(
        "imagetrail_workload_containers",
        "Containers running in a workload container.",
        labels=WORKLOAD_LABELS,
    )
    rollout = GaugeMetricFamily(
        "imagetrail_rollout_in_progress",
        "1 when the newest change of the workload container is in progress or stuck.",
        labels=WORKLOAD_LABELS,
    )
    first_seen = GaugeMetricFamily(
        "imagetrail_running_image_first_seen_timestamp_seconds",
        "Start of the running version's current run in the workload container.",
        labels=[*WORKLOAD_LABELS, "image", "digest"],
    )
    age = GaugeMetricFamily(
        "imagetrail_running_image_age_seconds",
        "Seconds the running version has run in the workload container (its current run).",
        labels=[*WORKLOAD_LABELS, "image", "digest"],
    )
    tag_digests = GaugeMetricFamily(
        "imagetrail_tag_digests",
        "Distinct digests the running image reference has had in the workload container.",
        labels=[*WORKLOAD_LABELS, "image"],
    )
    last_change = GaugeMetricFamily(
        "imagetrail_last_change_timestamp_seconds",
        "Start of the newest change of each kind of the workload container.",
        labels=[*WORKLOAD_LABELS, "kind"],
    )
    changes = GaugeMetricFamily(
        "imagetrail_changes",
        "Changes of each kind recorded in the ledger for the workload container.",
        labels=[*WORKLOAD_LABELS, "kind"],
    )
    recent = GaugeMetricFamily(
        "imagetrail_recent_changes",
        "Changes of the workload container started within churn_window before the data's end.",
        labels=WORKLOAD_LABELS,
    )
    for state in states:
        key = list(state.key)
        versions.add_metric(key, len(state.versions))
        containers.add_metric(key, state.containers)
        rollout.add_metric(key, 1.0 if state.rollout_in_progress else 0.0)
        recent.add_metric(key, state.recent_changes)
        seen_images = set()
        for v in state.versions:
            digest = v.digest or ""
            info.add_metric([*key, v.image, v.tag or "", digest], 1.0)
            first_seen.add_metric([*key, v.image, digest], v.first_seen)
            age.add_metric([*key, v.image, digest], max(0.0, now - v.first_seen))
            if v.image not in seen_images:
                seen_images.add(v.image)
                tag_digests.add_metric([*key, v.image], v.tag_digests)
        for kind, started in state.last_change:
            last_change.add_metric([*key, kind], started)
        for kind, count in state.changes:
            changes.add_metric([*key, kind], count)
    yield from (info, versions, containers, rollout, first_seen, age, tag_digests)
    yield from (last_change, changes, recent)
