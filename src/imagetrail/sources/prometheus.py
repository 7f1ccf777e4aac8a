"""Observations from a Prometheus-compatible server: the ``ksm`` and ``cadvisor`` signals.

How spans are found cheaply (never pulling dense per-sample data): for a chunk ``(a, b]`` one
instant query at ``b`` asks, per pod container and image, for the timestamp of its first and of its
last sample inside the chunk::

    min_over_time(max by (labels) (timestamp(metric{...}))[<b-a>:<scrape interval>])
    max_over_time(... the same ...)

``timestamp()`` applied straight to a selector returns each sample's own timestamp, so the edges
come back exact to the sample (within one scrape interval of the truth), while the response holds
two numbers per series and chunk instead of one per scrape. Spans cut at chunk borders are joined
again by the ledger's merge (min of first, max of last).

kube-state-metrics also lists containers that do not run (completed Job pods, waiting containers):
``and on(...) (kube_pod_container_status_running == 1)`` keeps only running ones; the sample
timestamps still come from ``kube_pod_container_info``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imagetrail.errors import InputError
from imagetrail.imageref import is_sandbox, resolve
from imagetrail.model import Heatmap, Signal, Span
from imagetrail.sources.promapi import PromClient, QueryResult
from imagetrail.sources.promql import check_regex, duration, matcher, selector

log = logging.getLogger("imagetrail.sources")

KSM_INFO = "kube_pod_container_info"
KSM_RUNNING = "kube_pod_container_status_running"
CADVISOR_CPU = "container_cpu_usage_seconds_total"
SIGNAL_METRIC: dict[str, str] = {"ksm": KSM_INFO, "cadvisor": CADVISOR_CPU}

# Pod-name patterns used only when kube-state-metrics owner metrics are missing.
_CRONJOB_POD = re.compile(r"^(?P<name>.+)-\d{8,10}-[a-z0-9]{5}$")
_DEPLOYMENT_POD = re.compile(r"^(?P<name>.+)-[a-f0-9]{6,10}-[a-z0-9]{5}$")
_STATEFULSET_POD = re.compile(r"^(?P<name>.+)-\d+$")
_GENERATED_POD = re.compile(r"^(?P<name>.+)-[a-z0-9]{5}$")
_RS_HASH = re.compile(r"^(?P<name>.+)-[a-z0-9]{6,10}$")


@dataclass(frozen=True, slots=True)
class Filters:
    """Optional narrowing of what is read (pushed into PromQL, escaped)."""

    cluster: str | None = None
    namespace_regex: str | None = None


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str
    name: str
    inferred: bool = False


def infer_owner(pod: str) -> Owner:
    """Guess a pod's workload from its name; marked ``inferred``."""
    for pattern, kind in (
        (_CRONJOB_POD, "CronJob"),
        (_DEPLOYMENT_POD, "Deployment"),
        (_STATEFULSET_POD, "StatefulSet"),
        (_GENERATED_POD, "DaemonSet"),
    ):
        match = pattern.match(pod)
        if match:
            return Owner(kind, match.group("name"), inferred=True)
    return Owner("Pod", pod, inferred=True)


class PrometheusSource:
    """Reads spans for one signal from one Prometheus-compatible server."""

    def __init__(
        self,
        client: PromClient,
        *,
        cluster_label: str = "cluster",
        default_cluster: str = "default",
        resolution: float = 30.0,
        filters: Filters = Filters(),
        include_sandbox: bool = False,
    ) -> None:
        self.client = client
        self.cluster_label = cluster_label
        self.default_cluster = default_cluster
        self.resolution = resolution
        self.filters = filters
        self.include_sandbox = include_sandbox
        if filters.namespace_regex is not None:
            check_regex(filters.namespace_regex)
        matcher(cluster_label, "=", "")  # validates the label name early

    # -- selectors -------------------------------------------------------------------------
    def _matchers(self, extra: Sequence[tuple[str, str, str]] = ()) -> list[tuple[str, str, str]]:
        out = list(extra)
        if self.filters.cluster is not None:
            out.append((self.cluster_label, "=", self.filters.cluster))
        if self.filters.namespace_regex is not None:
            out.append(("namespace", "=~", self.filters.namespace_regex))
        return out

    def signal_selector(self, signal: Signal) -> str:
        if signal == "ksm":
            return selector(KSM_INFO, self._matchers())
        return selector(CADVISOR_CPU, self._matchers([("image", "!=", "")]))

    # -- detection -------------------------------------------------------------------------
    def presence(self, signal: Signal, *, start: float, end: float, step: float) -> list[float]:
        """Bucket end times in [start, end] at which the signal has any series."""
        query = f"count(count_over_time({self.signal_selector(signal)}[{duration(step)}]))"
        result = self.client.query_range(query, start=start, end=end, step=step)
        times = sorted({t for s in result.series for t, v in s.values if v > 0})
        return times

    def detect(self, *, start: float, end: float) -> list[Signal]:
        """Signals this server holds data for in [start, end], best first."""
        step = max(3600.0, (end - start) / 200)
        found: list[Signal] = []
        for signal in ("ksm", "cadvisor"):
            if self.presence(signal, start=start, end=end, step=step):
                found.append(signal)
        return found

    def earliest(self, signal: Signal, *, end: float, lookback: float) -> float | None:
        """Start of the oldest day holding data for the signal, within ``lookback`` of ``end``."""
        day = 86400.0
        start = end - lookback
        times = self.presence(signal, start=start, end=end, step=day)
        return (times[0] - day) if times else None

    # -- the original panel ----------------------------------------------------------------
    def panel_query(self, step: float) -> str:
        """The dotdc "Container Image Used" query, with Grafana's variables filled in."""
        # Grafana: $__rate_interval = max($__interval + scrape interval, 4 * scrape interval)
        rate_interval = max(step + self.resolution, 4 * self.resolution)
        sel = selector(CADVISOR_CPU, self._matchers([("image", "!=", "")]))
        return f"count(rate({sel}[{duration(rate_interval)}])) by (image)"

    def panel_heatmap(self, *, start: float, end: float, step: float) -> Heatmap:
        """Run the panel's query as Grafana would (start aligned to the step)."""
        start = math.floor(start / step) * step
        result = self.client.query_range(self.panel_query(step), start=start, end=end, step=step)
        times = tuple(start + i * step for i in range(int((end - start) // step) + 1))
        index = {round(t, 3): i for i, t in enumerate(times)}
        rows: dict[str, list[int]] = {}
        for series in result.series:
            row = rows.setdefault(series.labels.get("image", ""), [0] * len(times))
            for t, value in series.values:
                i = index.get(round(t, 3))
                if i is not None and not math.isnan(value):
                    row[i] += int(value)
        images = tuple(sorted(rows))
        return Heatmap(times, images, tuple(tuple(rows[i]) for i in images))

    # -- spans -----------------------------------------------------------------------------
    def _edge_query(self, func: str, inner: str, window: float) -> str:
        return f"{func}(({inner})[{duration(window)}:{duration(self.resolution)}])"

    def _ksm_inner(self) -> str:
        c = self.cluster_label
        by = f"{c}, namespace, pod, container, image, image_id, image_spec"
        running = selector(KSM_RUNNING, self._matchers())
        return (
            f"max by ({by}) (timestamp({self.signal_selector('ksm')}))"
            f" and on ({c}, namespace, pod, container) ({running} == 1)"
        )

    def _cadvisor_inner(self) -> str:
        by = f"{self.cluster_label}, namespace, pod, pod_name, container, container_name, image"
        return f"max by ({by}) (timestamp({self.signal_selector('cadvisor')}))"

    def chunk_spans(self, signal: Signal, start: float, end: float) -> list[Span]:
        """Spans (clipped to what the chunk ``(start, end]`` shows) for one signal."""
        window = end - start
        inner = self._ksm_inner() if signal == "ksm" else self._cadvisor_inner()
        firsts = self.client.query(self._edge_query("min_over_time", inner, window), time=end)
        lasts = self.client.query(self._edge_query("max_over_time", inner, window), time=end)
        owners = self.owners(start, end)
        return list(self._to_spans(signal, firsts, lasts, owners))

    def owners(self, start: float, end: float) -> dict[tuple[str, str, str], Owner]:
        """(cluster, namespace, pod) → workload, from kube-state-metrics owner metrics."""
        c = self.cluster_label
        window = duration(end - start)
        m = self._matchers()

        def grouped(metric: str, by: str) -> str:
            return f"max by ({c}, {by}) (last_over_time({selector(metric, m)}[{window}]))"

        queries = {
            "pod": grouped("kube_pod_owner", "namespace, pod, owner_kind, owner_name"),
            "rs": grouped("kube_replicaset_owner", "namespace, replicaset, owner_kind, owner_name"),
            "job": grouped("kube_job_owner", "namespace, job_name, owner_kind, owner_name"),
        }
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = dict(
                zip(queries, pool.map(lambda q: self.client.query(q, time=end), queries.values()),
                    strict=True)
            )
        rs_owner = self._parents(results["rs"], "replicaset")
        job_owner = self._parents(results["job"], "job_name")
        owners: dict[tuple[str, str, str], Owner] = {}
        for series in results["pod"].series:
            labels = series.labels
            key = (self._cluster(labels), labels.get("namespace", ""), labels.get("pod", ""))
            kind, name = labels.get("owner_kind", ""), labels.get("owner_name", "")
            owners[key] = self._resolve_owner(key, kind, name, rs_owner, job_owner)
        return owners

    def _parents(
        self, result: QueryResult, child_label: str
    ) -> dict[tuple[str, str, str], tuple[str, str]]:
        out: dict[tuple[str, str, str], tuple[str, str]] = {}
        for series in result.series:
            labels = series.labels
            key = (self._cluster(labels), labels.get("namespace", ""), labels.get(child_label, ""))
            out[key] = (labels.get("owner_kind", ""), labels.get("owner_name", ""))
        return out

    @staticmethod
    def _resolve_owner(
        key: tuple[str, str, str],
        kind: str,
        name: str,
        rs_owner: Mapping[tuple[str, str, str], tuple[str, str]],
        job_owner: Mapping[tuple[str, str, str], tuple[str, str]],
    ) -> Owner:
        cluster, namespace, pod = key
        if kind in ("", "<none>") or not name or name == "<none>":
            return Owner("Pod", pod)
        if kind == "ReplicaSet":
            parent = rs_owner.get((cluster, namespace, name))
            if parent is None:
                match = _RS_HASH.match(name)
                return Owner("Deployment", match.group("name"), True) if match else Owner(kind, name)
            if parent[0] and parent[1] and parent[0] != "<none>":
                return Owner(parent[0], parent[1])
            return Owner(kind, name)
        if kind == "Job":
            parent = job_owner.get((cluster, namespace, name))
            if parent and parent[0] and parent[1] and parent[0] != "<none>":
                return Owner(parent[0], parent[1])
            if parent is None:
                match = re.match(r"^(?P<name>.+)-\d{8,10}$", name)
                if match:
                    return Owner("CronJob", match.group("name"), True)
            return Owner("Job", name)
        return Owner(kind, name)

    def _cluster(self, labels: Mapping[str, str]) -> str:
        return labels.get(self.cluster_label) or self.default_cluster

    def _to_spans(
        self,
        signal: Signal,
        firsts: QueryResult,
        lasts: QueryResult,
        owners: Mapping[tuple[str, str, str], Owner],
    ) -> Iterable[Span]:
        last_by_labels = {_frozen(s.labels): s.values[-1][1] for s in lasts.series if s.values}
        for series in firsts.series:
            if not series.values:
                continue
            first = series.values[-1][1]
            last = last_by_labels.get(_frozen(series.labels))
            if last is None:
                continue
            labels = series.labels
            pod = labels.get("pod") or labels.get("pod_name", "")
            container = labels.get("container") or labels.get("container_name", "")
            namespace = labels.get("namespace", "")
            if signal == "cadvisor" and container in ("", "POD") and not self.include_sandbox:
                continue
            image, digest = resolve(
                labels.get("image", ""), labels.get("image_id", ""), labels.get("image_spec", "")
            )
            if not self.include_sandbox and is_sandbox(image):
                continue
            cluster = self._cluster(labels)
            owner = owners.get((cluster, namespace, pod)) or infer_owner(pod)
            yield Span(
                cluster=cluster,
                namespace=namespace,
                workload_kind=owner.kind,
                workload=owner.name,
                pod=pod,
                container=container,
                image=image,
                digest=digest,
                first_seen=min(first, last),
                last_seen=max(first, last),
                signal=signal,
                workload_inferred=owner.inferred,
            )


def _frozen(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def validate_filters(cluster: str | None, namespace_regex: str | None) -> Filters:
    """Filters from user input; a bad regex is an InputError before any query is sent."""
    if namespace_regex is not None:
        try:
            check_regex(namespace_regex)
        except InputError:
            raise
    return Filters(cluster=cluster, namespace_regex=namespace_regex)
