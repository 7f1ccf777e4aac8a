"""The imagetrail alert rules: PromQL over the exporter's ``imagetrail_*`` metrics.

Every rule reads only what ``imagetrail serve`` exports (docs/metrics.md); the thresholds come
from the settings (``alert_*``, ``churn_window`` and ``cluster_silent_after``), so one table
documents and tunes them.
Each rule carries a ``severity`` label and ``summary``, ``description`` (templated with the
alert's labels) and ``runbook_url`` annotations, as the kubernetes-mixin rules do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from imagetrail.errors import InputError
from imagetrail.settings import Settings

GROUP = "imagetrail"
RUNBOOK_BASE = "https://github.com/imagetrail/imagetrail/blob/main/docs/alerts.md"
# The exporter's label set of one workload container (docs/metrics.md, "W").
WORKLOAD_LABELS = ("cluster", "namespace", "workload_kind", "workload", "container")
# Sync health thresholds: fixed, because they describe imagetrail itself, not a fleet's policy.
SYNC_FOR = 15 * 60.0
LEDGER_LAG_MAX = 3600.0
# How long a cluster must stay silent before ImagetrailClusterSilent fires (its threshold, how
# far its data may lag, is the cluster_silent_after setting).
CLUSTER_SILENT_FOR = 5 * 60.0

ALERT_NAMES: tuple[str, ...] = (
    "ImagetrailRolloutStuck",
    "ImagetrailRolloutFailing",
    "ImagetrailVersionDrift",
    "ImagetrailLatestTag",
    "ImagetrailImageNotUpdated",
    "ImagetrailTagRepushed",
    "ImagetrailRollback",
    "ImagetrailVersionChurn",
    "ImagetrailSyncFailing",
    "ImagetrailLedgerLagging",
    "ImagetrailClusterSilent",
)

# How a description names the workload container an alert is about.
_WHO = (
    "{{ $labels.workload_kind }} {{ $labels.namespace }}/{{ $labels.workload }} "
    "(container {{ $labels.container }}) in cluster {{ $labels.cluster }}"
)
_WHO_ANY_CLUSTER = (
    "{{ $labels.workload_kind }} {{ $labels.namespace }}/{{ $labels.workload }} "
    "(container {{ $labels.container }})"
)


@dataclass(frozen=True)
class Rule:
    """One alerting rule. ``for_`` is a Prometheus duration (``30m``), or None: fire at once."""

    name: str
    expr: str
    for_: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The rule as Prometheus's rule-file schema has it (``alert``, ``expr``, ``for`` …)."""
        out: dict[str, object] = {"alert": self.name, "expr": self.expr}
        if self.for_ is not None:
            out["for"] = self.for_
        out["labels"] = dict(self.labels)
        out["annotations"] = dict(self.annotations)
        return out


def runbook_anchor(name: str) -> str:
    """The docs/alerts.md heading anchor of an alert (GitHub lowercases heading text)."""
    return name.lower()


def runbook_url(name: str) -> str:
    """Where an alert's runbook lives: its section of docs/alerts.md on GitHub."""
    return f"{RUNBOOK_BASE}#{runbook_anchor(name)}"


def prometheus_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: ``90d``, ``1h30m``, ``45s``, ``1500ms``.

    Days are the largest unit, so the defaults read as they are written (``90d``, not
    ``12w6d``), and only from two days on (``24h`` and ``36h`` stay hours); milliseconds are
    Prometheus's finest unit, so finer parts are rounded.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"not a duration Prometheus can take: {seconds!r} s")
    ms = round(Fraction(seconds) * 1000)
    units = [("h", 3_600_000), ("m", 60_000), ("s", 1000)]
    if ms >= 2 * 86_400_000:
        units.insert(0, ("d", 86_400_000))
    parts = []
    for unit, size in units:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts) or "0s"


def promql_number(value: float) -> str:
    """A threshold as a PromQL number literal: ``7776000``, ``0.5``."""
    if not math.isfinite(value):
        raise InputError(f"not a finite threshold: {value!r}")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _rule(
    name: str, expr: str, for_: str | None, severity: str, summary: str, description: str
) -> Rule:
    return Rule(
        name=name,
        expr=expr,
        for_=for_,
        labels={"severity": severity},
        annotations={
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(name),
        },
    )


def _drift_expr() -> str:
    """Versions of a workload container that do not run in every cluster the workload runs in.

    Counting distinct images across clusters alone would also fire for a rollout in one
    cluster (two images, one cluster) and for a rollout that runs in every cluster at once;
    comparing each image's cluster count with the workload's cluster count fires only when
    the clusters disagree. The value is the number of such versions.
    """
    wl = "namespace, workload_kind, workload, container"
    return (
        f"count by ({wl}) (\n"
        f"  count by ({wl}, image) (\n"
        f"    count by (cluster, {wl}, image) (imagetrail_image_info)\n"
        f"  )\n"
        f"  < on ({wl}) group_left ()\n"
        f"  count by ({wl}) (\n"
        f"    count by (cluster, {wl}) (imagetrail_image_info)\n"
        f"  )\n"
        f")\n"
    )


def _rollout_stuck_expr() -> str:
    """More than one version running while the newest rollout is still in progress.

    Mixed versions whose newest rollout is over (a canary beside the current version, old
    pods a rollout that was aborted or superseded left behind) are not a rollout that has not
    finished; ``unless`` rather than ``and`` keeps firing for an exporter that has no
    ``imagetrail_rollout_in_progress`` for the workload container.
    """
    wl = ", ".join(WORKLOAD_LABELS)
    return (
        "imagetrail_workload_versions > 1\n"
        f"unless on ({wl}, job, instance)\n"
        "imagetrail_rollout_in_progress == 0\n"
    )


def _cluster_silent_expr(after_s: float) -> str:
    """Clusters whose newest sample is more than ``after_s`` older than where the ledger's data
    ends, or than now when the whole ledger lags that much; the value is how long ago (now)
    the cluster's data stopped.

    Comparing with the ledger's end first means a sync a few minutes behind does not make every
    cluster silent; a ledger that lags as much itself (sync stopped, an archived ledger) leaves
    every cluster silent, as seen from now.
    """
    limit = promql_number(after_s)
    return (
        "time() - imagetrail_cluster_last_data_timestamp_seconds\n"
        "and (\n"
        "    imagetrail_cluster_last_data_timestamp_seconds\n"
        "  < ignoring (cluster) group_left ()\n"
        f"    (imagetrail_ledger_data_end_timestamp_seconds - {limit})\n"
        "  or\n"
        "    imagetrail_cluster_last_data_timestamp_seconds\n"
        "  and ignoring (cluster)\n"
        f"    (time() - imagetrail_ledger_data_end_timestamp_seconds > {limit})\n"
        ")\n"
    )


def alert_rules(settings: Settings) -> list[Rule]:
    """The imagetrail alert rules (group ``imagetrail``), thresholds from ``settings``."""
    stuck = prometheus_duration(float(settings.alert_rollout_stuck_after))
    failing = prometheus_duration(float(settings.alert_rollout_failing_after))
    drift = prometheus_duration(float(settings.alert_drift_after))
    max_age_s = float(settings.alert_image_max_age)
    max_age = prometheus_duration(max_age_s)
    recent_s = float(settings.alert_recent_window)
    recent = prometheus_duration(recent_s)
    churn_n = int(settings.alert_churn_changes)
    churn_window = prometheus_duration(float(settings.churn_window))
    sync_for = prometheus_duration(SYNC_FOR)
    lag_max = prometheus_duration(LEDGER_LAG_MAX)
    silent_s = float(settings.cluster_silent_after)
    silent = prometheus_duration(silent_s)
    silent_for = prometheus_duration(CLUSTER_SILENT_FOR)

    rules = [
        _rule(
            "ImagetrailRolloutStuck",
            _rollout_stuck_expr(),
            stuck,
            "warning",
            f"A workload container's rollout has not finished for more than {stuck}.",
            f"{_WHO} has run {{{{ $value }}}} versions side by side for more than {stuck}: "
            "its newest rollout is still in progress (neither finished nor given up).",
        ),
        _rule(
            "ImagetrailRolloutFailing",
            # One series per reason: a rollout stuck for two reasons raises two alerts, each
            # naming its own, and the alert resolves when the exporter drops the series (the
            # rollout ran, failed for good or was undone).
            "imagetrail_rollout_failing == 1",
            failing,
            "warning",
            f"A workload container's new pods have not been able to run for more than {failing}.",
            f"The newest rollout of {_WHO} is stuck: its new pods have not run for more than "
            f"{failing} ({{{{ $labels.reason }}}}).",
        ),
        _rule(
            "ImagetrailVersionDrift",
            _drift_expr(),
            drift,
            "warning",
            f"A workload runs different versions in different clusters for more than {drift}.",
            f"{_WHO_ANY_CLUSTER} has run different versions in different clusters for more "
            f"than {drift}: {{{{ $value }}}} of its versions do not run in every cluster it "
            "runs in.",
        ),
        _rule(
            "ImagetrailLatestTag",
            'imagetrail_image_info{tag=~"latest|"}',
            None,
            "warning",
            "A workload container runs an image tagged latest or without a tag.",
            f"{_WHO} runs {{{{ $labels.image }}}}, a reference without a version tag "
            "(latest or none): what runs can change at the next pull, and the reference does "
            "not say which version it is.",
        ),
        _rule(
            "ImagetrailImageNotUpdated",
            f"imagetrail_running_image_age_seconds > {promql_number(max_age_s)}",
            None,
            "info",
            f"A workload container has run the same image for more than {max_age}.",
            f"{_WHO} has run {{{{ $labels.image }}}} for {{{{ $value | humanizeDuration }}}} "
            f"without an update (more than {max_age}).",
        ),
        _rule(
            "ImagetrailTagRepushed",
            'time() - imagetrail_last_change_timestamp_seconds{kind="tag-repush"} '
            f"< {promql_number(recent_s)}",
            None,
            "warning",
            f"A workload container's image tag was re-pushed with a new digest in the last "
            f"{recent}.",
            f"{_WHO} started running a new digest of an unchanged tag "
            "{{ $value | humanizeDuration }} ago: the tag was re-pushed, so the same "
            "reference now means different content.",
        ),
        _rule(
            "ImagetrailRollback",
            'time() - imagetrail_last_change_timestamp_seconds{kind="rollback"} '
            f"< {promql_number(recent_s)}",
            None,
            "info",
            f"A workload container was rolled back in the last {recent}.",
            f"{_WHO} was rolled back {{{{ $value | humanizeDuration }}}} ago: it went back to "
            "a version it ran before, so a release was undone.",
        ),
        _rule(
            "ImagetrailVersionChurn",
            f"imagetrail_recent_changes > {churn_n}",
            None,
            "warning",
            f"A workload container changed version more than {churn_n} times in {churn_window}.",
            f"{_WHO} changed version {{{{ $value }}}} times in the last {churn_window} "
            f"(more than {churn_n}).",
        ),
        _rule(
            "ImagetrailSyncFailing",
            # A first pass still running (a long backfill) is not a failure: errors must exist.
            "imagetrail_sync_up == 0 and imagetrail_sync_errors_total > 0",
            sync_for,
            "warning",
            f"imagetrail has failed to sync from its Prometheus source for more than {sync_for}.",
            "imagetrail {{ $labels.instance }} (job {{ $labels.job }}) has failed every "
            f"background sync pass for more than {sync_for}: its ledger and metrics are going "
            "stale.",
        ),
        _rule(
            "ImagetrailLedgerLagging",
            f"imagetrail_ledger_lag_seconds > {promql_number(LEDGER_LAG_MAX)}",
            sync_for,
            "warning",
            f"imagetrail's ledger is more than {lag_max} behind.",
            "The ledger of imagetrail {{ $labels.instance }} (job {{ $labels.job }}) ends "
            "{{ $value | humanizeDuration }} ago (more than "
            f"{lag_max}): the versions it reports are out of date.",
        ),
        _rule(
            "ImagetrailClusterSilent",
            _cluster_silent_expr(silent_s),
            silent_for,
            "warning",
            f"imagetrail has had no data from a cluster for more than {silent}.",
            "The data of cluster {{ $labels.cluster }} in imagetrail {{ $labels.instance }} "
            "(job {{ $labels.job }}) stopped {{ $value | humanizeDuration }} ago (more than "
            f"{silent} before the end of the ledger's data, or before now when the whole "
            "ledger lags): the versions shown for it are its last known ones.",
        ),
    ]
    assert tuple(r.name for r in rules) == ALERT_NAMES  # one list of names, kept in step
    return rules
