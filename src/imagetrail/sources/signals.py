"""The impact signals' PromQL and the reader that asks Prometheus for them.

A signal is a query per workload container and block (:class:`SignalDef`); the built-in ones
are PromQL templates with placeholders this module fills, every label value escaped. A
:class:`SignalReader` gives a signal's value per block: :class:`PrometheusSignals` by asking
Prometheus, :class:`imagetrail.sim.signals.SimSignals` by evaluating the same queries on a
simulated fleet. The statistics that judge the values live in
:mod:`imagetrail.analysis.verdict`, the runner that plans and reads in
:mod:`imagetrail.service.impact`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from imagetrail.settings import Settings
from imagetrail.sources.promapi import PromClient
from imagetrail.sources.promql import check_label_name, duration, matcher, quote, regex_literal
from imagetrail.sources.template import pods_regex, substitute

WorkloadKey = tuple[str, str, str, str, str]  # cluster, namespace, kind, workload, container
_MAX_PODS = 300  # beyond this many pod names the selector matches the workload's name prefix


@dataclass(frozen=True, slots=True)
class SignalDef:
    """A built-in signal: PromQL with ``{SEL}`` (workload container selector), ``{POD_SEL}``
    (namespace + pods) and ``{B}`` (block duration); higher is always worse."""

    name: str
    unit: str
    expr: str
    absent_is_zero: bool = False  # no series at all means "none" (ALERTS), not "no data"
    decides: bool = True
    template: bool = False  # a user's ``impact_queries`` template (``expr`` not yet substituted)


BUILTIN_SIGNALS = (
    SignalDef(
        "restarts",
        "restarts/h",
        "sum(increase(kube_pod_container_status_restarts_total{SEL}[B])) * 3600 / {SECONDS}",
    ),
    SignalDef(
        "oom_kills",
        "OOM kills/h",
        "sum(increase(container_oom_events_total{SEL}[B])) * 3600 / {SECONDS}",
    ),
    SignalDef(
        "cpu_throttling",
        "throttled share",
        "sum(increase(container_cpu_cfs_throttled_periods_total{SEL}[B]))"
        " / sum(increase(container_cpu_cfs_periods_total{SEL}[B]))",
    ),
    SignalDef(
        "alerts",
        "alerts firing",
        'count(max_over_time(ALERTS{alertstate="firing",POD_SEL}[B]))',
        absent_is_zero=True,
    ),
    SignalDef(
        "cpu",
        "cores/container",
        "avg(rate(container_cpu_usage_seconds_total{SEL}[B]))",
        decides=False,
    ),
    SignalDef(
        "memory",
        "bytes/container",
        "avg(avg_over_time(container_memory_working_set_bytes{SEL}[B]))",
        decides=False,
    ),
)


_PLACEHOLDER = re.compile(r"POD_SEL|\{SEL\}|\[B\]|\{SECONDS\}")


def pods_selector(
    settings: Settings, cluster: str, namespace: str, workload: str, pods: Sequence[str]
) -> str:
    """Label matchers (no braces) for exactly these pods of one workload, every value escaped.

    Series without the cluster label count as ``default_cluster``; beyond ``_MAX_PODS`` pod
    names the workload's name is matched as a prefix instead."""
    label, default = settings.cluster_label, settings.default_cluster
    if cluster == default:
        in_cluster = matcher(label, "=~", "|" + regex_literal(cluster))
    else:
        in_cluster = matcher(label, "=", cluster)
    if len(pods) > _MAX_PODS:
        pod = "pod=~" + quote(regex_literal(workload) + "-.*")
    else:
        pod = "pod=~" + quote(pods_regex(list(pods)))
    return ",".join((in_cluster, matcher("namespace", "=", namespace), pod))


def events_expr(settings: Settings, key: WorkloadKey, pods: Sequence[str], seconds: float) -> str:
    """PromQL counting, per ``state`` (``waiting``/``terminated``) and ``reason``, the pod
    containers of one workload container that were waiting with that reason at some point of
    the ``seconds`` before the query's time, or restarted then with that last terminated
    reason. Every label value is escaped by the selector builders."""
    cluster, namespace, _, workload, container = key
    sel = pods_selector(settings, cluster, namespace, workload, pods)
    sel = "{" + sel + "," + matcher("container", "=", container) + "}"
    window = "[" + duration(max(1.0, round(seconds))) + "]"
    ids = ", ".join((check_label_name(settings.cluster_label), "namespace", "pod", "container"))
    waiting = (
        f"count by (reason) (max_over_time(kube_pod_container_status_waiting_reason{sel}"
        f"{window}) == 1)"
    )
    # The last terminated reason stays on a container until it terminates again: only the
    # containers that restarted inside the window count, so an old OOM kill is not news.
    terminated = (
        "count by (reason) ("
        f"(max_over_time(kube_pod_container_status_last_terminated_reason{sel}{window}) == 1)"
        f" and on ({ids}) (increase(kube_pod_container_status_restarts_total{sel}{window}) > 0))"
    )
    return (
        f'label_replace({waiting}, "state", "waiting", "", "")\nor\n'
        f'label_replace({terminated}, "state", "terminated", "", "")'
    )


def signal_expr(
    settings: Settings, signal: SignalDef, key: WorkloadKey, pods: Sequence[str], block: float
) -> str:
    """A signal's PromQL for one workload container and its pods, every value escaped."""
    cluster, namespace, _, workload, container = key
    if signal.template:
        values = {
            "cluster": cluster,
            "namespace": namespace,
            "workload": workload,
            "container": container,
            "pods": pods_regex(list(pods)),
        }
        return substitute(signal.expr, values, block=block)
    pod_sel = pods_selector(settings, cluster, namespace, workload, pods)
    sel = pod_sel + "," + matcher("container", "=", container)
    fill = {
        "POD_SEL": pod_sel,
        "{SEL}": "{" + sel + "}",
        "[B]": "[" + duration(block) + "]",
        "{SECONDS}": repr(float(block)),
    }
    # One pass: a label value that spells a placeholder is never substituted again.
    return _PLACEHOLDER.sub(lambda m: fill[m.group()], signal.expr)


class SignalReader(Protocol):
    """Where the signals' values come from: Prometheus, or the simulator of a demo ledger.

    The statistics never know which: both give the values the same PromQL gives (the
    simulator evaluates the built-in signals' queries on its own series)."""

    @property
    def name(self) -> str:
        """For people: where the values come from (``Prometheus``, ``the demo simulator``)."""
        ...

    def reads(self, signal: SignalDef) -> bool:
        """Can this reader give ``signal`` (the simulator has no user templates)?"""
        ...

    def block_values(
        self,
        signal: SignalDef,
        key: WorkloadKey,
        pods: Sequence[str],
        ends: Sequence[float],
        block: float,
    ) -> list[float | None]:
        """The signal's value for the block ending at each of ``ends`` (None: no value)."""
        ...

    def events(
        self, key: WorkloadKey, pods: Sequence[str], at: float, seconds: float
    ) -> dict[tuple[str, str], int]:
        """Pod containers per (state, reason) in the ``seconds`` before ``at``."""
        ...

    def usage(
        self,
        key: WorkloadKey,
        pods: Sequence[str],
        start: float,
        end: float,
        step: float,
        rate_range: float,
    ) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
        """``(pod, time, value)`` of CPU cores and working-set bytes, every ``step``."""
        ...

    def close(self) -> None: ...


class PrometheusSignals:
    """The signals from Prometheus: the built-in signals' PromQL and the user's templates."""

    name = "Prometheus"

    def __init__(self, settings: Settings, client: PromClient) -> None:
        """``client``: one for the source, spending the budget in force (the reader closes
        it)."""
        self.settings = settings
        self.client = client

    def close(self) -> None:
        self.client.close()

    def reads(self, signal: SignalDef) -> bool:
        return True

    def expression(
        self, signal: SignalDef, key: WorkloadKey, pods: Sequence[str], block: float
    ) -> str:
        return signal_expr(self.settings, signal, key, pods, block)

    def block_values(
        self,
        signal: SignalDef,
        key: WorkloadKey,
        pods: Sequence[str],
        ends: Sequence[float],
        block: float,
    ) -> list[float | None]:
        if not ends:
            return []
        expr = self.expression(signal, key, pods, block)
        result = self.client.query_range(expr, start=ends[0], end=ends[-1], step=block)
        got: dict[int, float] = {}
        for series in result.series:
            for t, v in series.values:
                if math.isfinite(v):
                    got[round(t * 1000)] = got.get(round(t * 1000), 0.0) + v
        return [got.get(round(t * 1000)) for t in ends]

    def events(
        self, key: WorkloadKey, pods: Sequence[str], at: float, seconds: float
    ) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        expr = events_expr(self.settings, key, pods, seconds)
        for series in self.client.query(expr, time=at).series:
            value = series.values[-1][1] if series.values else math.nan
            if math.isfinite(value):
                counts[(series.labels.get("state", ""), series.labels.get("reason", ""))] = int(
                    value
                )
        return counts

    def usage(
        self,
        key: WorkloadKey,
        pods: Sequence[str],
        start: float,
        end: float,
        step: float,
        rate_range: float,
    ) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
        cluster, namespace, _, workload, container = key
        sel = pods_selector(self.settings, cluster, namespace, workload, pods)
        sel += "," + matcher("container", "=", container)
        cpu = f"rate(container_cpu_usage_seconds_total{{{sel}}}[{duration(rate_range)}])"
        mem = f"container_memory_working_set_bytes{{{sel}}}"
        return self._points(cpu, start, end, step), self._points(mem, start, end, step)

    def _points(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[str, float, float]]:
        result = self.client.query_range(expr, start=start, end=end, step=step)
        return [
            (series.labels.get("pod", ""), t, v)
            for series in result.series
            for t, v in series.values
            if math.isfinite(v)
        ]
