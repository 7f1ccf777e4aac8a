"""Observations from a Prometheus-compatible server: the ``ksm`` and ``cadvisor`` signals.

How spans are found without pulling dense per-sample data, for a chunk of time:

1. **Presence** — one range query at a coarse step (the *bucket*, 1 h) with a raw-sample range
   function, e.g. ``sum by (...) (sum_over_time(kube_pod_container_status_running[1h]))``: which
   pod containers ran in which bucket. Raw range functions cost the server little (no per-step
   evaluation) and answer with one number per series and bucket.
2. **Refine** — only for the buckets that hold a series' first or last sample, an instant query
   restricted to those pods (``pod=~"a|b|..."``) asks for the exact sample time::

       min by (...) (min_over_time((timestamp(x) * x > 0)[1h:30s]))     # first running sample
       max by (...) (max_over_time((timestamp(x) * x)[1h:30s]))         # last running sample

   ``timestamp()`` applied straight to a selector returns each sample's own time, so the edges are
   exact to the sample — within one scrape interval of the truth.

Spans cut at chunk borders are joined by the ledger's merge (min of first, max of last).
kube-state-metrics lists containers that do not run (completed Job pods, waiting containers):
the ``ksm`` signal therefore counts the samples where ``kube_pod_container_status_running`` is 1
and takes the image from ``kube_pod_container_info`` of the same pod container.

**Waits** (``ksm`` only: cAdvisor never sees a container that did not run) are found the same
way, keyed by pod container *and* waiting reason, from
``kube_pod_container_status_waiting_reason`` (1 while waiting for that reason; older
kube-state-metrics also emit 0 for the other reasons, which the ``> 0`` filters drop). They
share the chunk's attribute and owner queries with the spans.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imagetrail.imageref import is_sandbox, resolve
from imagetrail.model import Heatmap, Signal, Span, Wait
from imagetrail.sources.promapi import PromClient, QueryResult
from imagetrail.sources.promql import check_regex, duration, matcher, regex_literal, selector

log = logging.getLogger("imagetrail.sources")

KSM_INFO = "kube_pod_container_info"
KSM_RUNNING = "kube_pod_container_status_running"
KSM_TERMINATED = "kube_pod_container_status_terminated"
KSM_RESTARTS = "kube_pod_container_status_restarts_total"
KSM_WAITING_REASON = "kube_pod_container_status_waiting_reason"
CADVISOR_CPU = "container_cpu_usage_seconds_total"

# Pod-name patterns used only when kube-state-metrics owner metrics are missing.
_CRONJOB_POD = re.compile(r"^(?P<name>.+)-\d{8,10}-[a-z0-9]{5}$")
_DEPLOYMENT_POD = re.compile(r"^(?P<name>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$")
_STATEFULSET_POD = re.compile(r"^(?P<name>.+)-\d+$")
_GENERATED_POD = re.compile(r"^(?P<name>.+)-[a-z0-9]{5}$")
_RS_HASH = re.compile(r"^(?P<name>.+)-[a-z0-9]{6,10}$")


REFINE_BATCH = 200  # pods per refine query (keeps the regex matcher short)
# ... and at most this many characters of escaped pod names per batch: a refine query repeats
# the regex once per selector (up to four), and VictoriaMetrics refuses queries over 16 KiB
# (-search.maxQueryLen) whatever the count.
REFINE_REGEX_CHARS = 3000
DEFAULT_BUCKET = 3600.0


@dataclass(frozen=True, slots=True)
class _Gate:
    """One way to tell from samples that a container is there.

    ``presence`` is a raw-sample range expression, > 0 for a bucket holding such samples;
    ``stamp`` gives, per evaluation step, the sample's own time where the container is there
    and a value <= 0 elsewhere.
    """

    metrics: tuple[str, ...]  # {sel0}, {sel1}, ... in the templates
    matchers: tuple[tuple[str, str, str], ...]
    presence: str  # uses {selN} and {w}
    stamp: str  # uses {selN}


# Started: running now, or restarted before (a crash-looping container may run for seconds only,
# between two scrapes; its restart counter still tells that it started).
_STARTED = _Gate(
    (KSM_RUNNING, KSM_RESTARTS),
    (),
    "sum_over_time({sel0}[{w}]) > 0 or max_over_time({sel1}[{w}]) > 0",
    "(timestamp({sel0}) * {sel0} > 0) or (timestamp({sel1}) * ({sel1} > bool 0) > 0)",
)
_NOT_TERMINATED = _Gate(
    (KSM_TERMINATED,),
    (),
    "count_over_time({sel0}[{w}]) - sum_over_time({sel0}[{w}])",
    "timestamp({sel0}) * (1 - {sel0})",
)
# Waiting: one series per pod container and reason, 1 while the container waits for it.
_WAITING = _Gate(
    (KSM_WAITING_REASON,),
    (),
    "max_over_time({sel0}[{w}])",
    "timestamp({sel0}) * {sel0}",
)
# The pod's uid is in cAdvisor's cgroup path (`/kubepods/burstable/pod<uid>/<container>`, or
# `kubepods-burstable-pod<uid with _>.slice` with the systemd driver): it keeps apart pods that
# reuse a name (StatefulSets).
_UID_RE = ".*pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}).*"


def _fill(template: str, **values: str) -> str:
    """Put values into a query template (not str.format: PromQL regexes hold braces)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _with_uid(expr: str) -> str:
    return f'label_replace({expr}, "pod_uid", "$1", "id", "{_UID_RE}")'


_CPU = _Gate(
    (CADVISOR_CPU,),
    (("image", "!=", ""),),
    _with_uid("count_over_time({sel0}[{w}])"),
    _with_uid("timestamp({sel0})"),
)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one signal is read: what makes a key, and the gates for first and last edges."""

    key_labels: tuple[str, ...]  # after the cluster label
    first: _Gate
    last: _Gate
    slim_labels: tuple[str, ...]  # usually enough to tell keys apart in a refine answer


# ksm: a container is there from its first running sample until it terminates or its pod goes
# (a crash-looping container waits between runs but is not terminated). The image comes from
# kube_pod_container_info of the same pod container.
_KSM = _Plan(
    ("namespace", "pod", "uid", "container"), _STARTED, _NOT_TERMINATED, ("uid", "container")
)
# ksm waits: a pod container waits for a reason from its first to its last sample saying so.
_KSM_WAITS = _Plan(
    ("namespace", "pod", "uid", "container", "reason"),
    _WAITING,
    _WAITING,
    ("uid", "container", "reason"),
)
# cadvisor: a container is there while its CPU counter is scraped; legacy label names included.
_CADVISOR = _Plan(
    ("namespace", "pod", "pod_name", "pod_uid", "container", "container_name", "image"),
    _CPU,
    _CPU,
    ("pod_uid", "container", "image"),
)
# How far back to look whether a container that is there but not running in a chunk ran before.
RAN_BEFORE_LOOKBACK = 7 * 86400.0


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
        bucket: float = DEFAULT_BUCKET,
        concurrency: int = 2,
    ) -> None:
        self.client = client
        self.cluster_label = cluster_label
        self.default_cluster = default_cluster
        self.resolution = resolution
        self.filters = filters
        self.include_sandbox = include_sandbox
        self.bucket = bucket
        self.concurrency = max(1, concurrency)
        if filters.namespace_regex is not None:
            check_regex(filters.namespace_regex)
        matcher(cluster_label, "=", "")  # validates the label name early

    # -- selectors -------------------------------------------------------------------------
    def _matchers(
        self, extra: Sequence[tuple[str, str, str]] = (), *, filtered: bool = True
    ) -> list[tuple[str, str, str]]:
        out = list(extra)
        if filtered and self.filters.cluster is not None:
            out.append((self.cluster_label, "=", self.filters.cluster))
        if filtered and self.filters.namespace_regex is not None:
            out.append(("namespace", "=~", self.filters.namespace_regex))
        return out

    def signal_selector(self, signal: Signal, *, filtered: bool = True) -> str:
        """The signal's selector; ``filtered=False`` leaves out the cluster and namespace."""
        if signal == "ksm":
            return selector(KSM_INFO, self._matchers(filtered=filtered))
        return selector(CADVISOR_CPU, self._matchers([("image", "!=", "")], filtered=filtered))

    @property
    def filtered(self) -> bool:
        """Whether a cluster or namespace narrows what this source reads."""
        return self.filters != Filters()

    # -- detection -------------------------------------------------------------------------
    def presence(
        self, signal: Signal, *, start: float, end: float, step: float, filtered: bool = True
    ) -> list[float]:
        """Ends of the ``step``-long buckets covering (start, end] in which the signal has data
        (matching the filters unless ``filtered`` is false)."""
        n = max(1, math.ceil((end - start) / step - 1e-9))
        sel = self.signal_selector(signal, filtered=filtered)
        query = f"count(count_over_time({sel}[{duration(step)}]))"
        result = self.client.query_range(query, start=end - (n - 1) * step, end=end, step=step)
        return sorted({t for s in result.series for t, v in s.values if v > 0})

    def detect(self, *, start: float, end: float, filtered: bool = True) -> list[Signal]:
        """Signals this server holds data for in [start, end], best first (matching the
        filters unless ``filtered`` is false)."""
        found: list[Signal] = []
        for signal in ("ksm", "cadvisor"):
            # The last day first: cheap, and where a live cluster's data is.
            recent = max(start, end - 86400.0)
            if self.presence(signal, start=recent, end=end, step=3600.0, filtered=filtered) or (
                recent > start
                and self.presence(
                    signal,
                    start=start,
                    end=end,
                    step=max(3600.0, (end - start) / 200),
                    filtered=filtered,
                )
            ):
                found.append(signal)
        return found

    def earliest(
        self, signal: Signal, *, end: float, lookback: float, filtered: bool = True
    ) -> float | None:
        """Start of the oldest day holding data for the signal, within ``lookback`` of ``end``
        (matching the filters unless ``filtered`` is false)."""
        day = 86400.0
        start = end - lookback
        times = self.presence(signal, start=start, end=end, step=day, filtered=filtered)
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

    # -- spans and waits --------------------------------------------------------------------
    def chunk_spans(self, signal: Signal, start: float, end: float) -> list[Span]:
        """Spans seen in the chunk ``(start, end]`` for one signal (edges exact to the sample)."""
        return self.chunk(signal, start, end, waits=False)[0]

    def chunk_waits(self, start: float, end: float) -> list[Wait]:
        """Waits (kube-state-metrics) seen in the chunk ``(start, end]``: per pod container and
        waiting reason, its first and last sample saying so (exact to the sample), with the
        image kube_pod_container_info lists (a digest only once the image was pulled)."""
        return self.chunk("ksm", start, end, spans=False)[1]

    def chunk(
        self, signal: Signal, start: float, end: float, *, spans: bool = True, waits: bool = True
    ) -> tuple[list[Span], list[Wait]]:
        """A chunk's spans and (``ksm`` only) waits, sharing the attribute and owner queries.

        Waits cost one presence range query, plus refine queries only for the buckets holding
        a wait's first or last sample; the ``cadvisor`` signal has none.
        """
        bucket = min(self.bucket, end - start)
        plan = _KSM if signal == "ksm" else _CADVISOR
        span_edges = self._span_edges(plan, start, end, bucket) if spans else {}
        wait_edges = self._edges(_KSM_WAITS, start, end, bucket) if waits and plan is _KSM else {}
        if not span_edges and not wait_edges:
            return [], []
        attributes = self._ksm_attributes(start, end) if plan is _KSM else {}
        owners = self.owners(start, end)
        found: list[Span] = []
        for key, (first, last) in span_edges.items():
            labels = dict(zip((self.cluster_label, *plan.key_labels), key, strict=True))
            if plan is _KSM:
                info = _pick(attributes.get(key), pulled=True)
                if info is None:
                    continue
                labels |= info
            span = self._span(signal, labels, first, last, owners)
            if span is not None:
                found.append(span)
        waited: list[Wait] = []
        for key, (first, last) in wait_edges.items():
            # A waiting container's image is listed before it is pulled (empty image_id).
            info = _pick(attributes.get(key[:-1]), pulled=False)
            if info is None:
                continue
            labels = dict(zip((self.cluster_label, *_KSM_WAITS.key_labels), key, strict=True))
            span = self._span("ksm", labels | info, first, last, owners)
            if span is not None:
                waited.append(Wait(span, key[-1]))
        return found, waited

    def _span_edges(
        self, plan: _Plan, start: float, end: float, bucket: float
    ) -> dict[tuple[str, ...], tuple[float, float]]:
        """First and last sample of each pod container that ran in the chunk."""
        ran = self._presence(plan, plan.first, start, end)
        if not ran and plan is _CADVISOR:
            return {}
        last_gate = plan.last
        there = ran if last_gate is plan.first else self._presence(plan, last_gate, start, end)
        if not there:  # an exporter without the terminated metric: running decides both edges
            last_gate, there = plan.first, ran
        # Containers there but not running in this chunk (crash-looping, or cut by the chunk
        # border) continue a span only if they ran before; a container that never started
        # (ImagePullBackOff) is not a version that ran.
        waiting = {k: v for k, v in there.items() if k not in ran}
        carried = self._ran_before(plan, waiting, start) if waiting else set()
        firsts = self._refine(plan, plan.first, "first", ran, bucket)
        lasts = self._refine(
            plan, last_gate, "last", {k: there.get(k) or ran[k] for k in (*ran, *carried)}, bucket
        )
        for key in carried:
            firsts[key] = start  # the ledger's merge keeps the true, earlier first sample
        return {key: (first, max(lasts.get(key, first), first)) for key, first in firsts.items()}

    def _edges(
        self, plan: _Plan, start: float, end: float, bucket: float
    ) -> dict[tuple[str, ...], tuple[float, float]]:
        """First and last sample passing ``plan``'s gate of each key present in the chunk."""
        there = self._presence(plan, plan.first, start, end)
        if not there:
            return {}
        firsts = self._refine(plan, plan.first, "first", there, bucket)
        lasts = self._refine(plan, plan.last, "last", there, bucket)
        return {key: (first, max(lasts.get(key, first), first)) for key, first in firsts.items()}

    def _presence(
        self, plan: _Plan, gate: _Gate, start: float, end: float
    ) -> dict[tuple[str, ...], list[float]]:
        """Bucket end times at which each key has samples passing the gate."""
        sels = {
            f"sel{i}": selector(m, self._matchers(gate.matchers))
            for i, m in enumerate(gate.metrics)
        }
        result = self._over_buckets(
            lambda w: f"sum by ({self._by(plan)}) ({_fill(gate.presence, w=w, **sels)})",
            start,
            end,
        )
        keyed: dict[tuple[str, ...], list[float]] = {}
        for series in result.series:
            if plan is _CADVISOR and not self._keep_cadvisor(series.labels):
                continue
            present = [t for t, v in series.values if v > 0]
            if present:
                keyed.setdefault(self._key(plan, series.labels), []).extend(present)
        return keyed

    def _ran_before(
        self, plan: _Plan, keys: Mapping[tuple[str, ...], list[float]], at: float
    ) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for pod_label, pods in self._pod_batches(plan, keys):
            expr = _fill(
                plan.first.presence,
                w=duration(RAN_BEFORE_LOOKBACK),
                **self._pod_selectors(plan.first, pod_label, pods),
            )
            query = f"sum by ({self._by(plan)}) ({expr})"
            for series in self.client.query(query, time=at).series:
                key = self._key(plan, series.labels)
                if key in keys and series.values and series.values[-1][1] > 0:
                    found.add(key)
        return found

    def _pod_batches(
        self, plan: _Plan, keys: Iterable[tuple[str, ...]]
    ) -> list[tuple[str, list[str]]]:
        groups: dict[str, set[str]] = {}
        for key in keys:
            pod_label, pod = self._pod(plan, key)
            groups.setdefault(pod_label, set()).add(pod)
        out: list[tuple[str, list[str]]] = []
        for pod_label, pods in groups.items():
            batch: list[str] = []
            chars = 0
            for pod in sorted(pods):
                size = len(regex_literal(pod)) + 1
                if batch and (len(batch) == REFINE_BATCH or chars + size > REFINE_REGEX_CHARS):
                    out.append((pod_label, batch))
                    batch, chars = [], 0
                batch.append(pod)
                chars += size
            if batch:
                out.append((pod_label, batch))
        return out

    def _pod_selectors(self, gate: _Gate, pod_label: str, pods: Sequence[str]) -> dict[str, str]:
        pod_re = "|".join(regex_literal(p) for p in pods)
        matchers = self._matchers([*gate.matchers, (pod_label, "=~", pod_re)])
        return {f"sel{i}": selector(m, matchers) for i, m in enumerate(gate.metrics)}

    def _key(self, plan: _Plan, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in (self.cluster_label, *plan.key_labels))

    @staticmethod
    def _pod(plan: _Plan, key: tuple[str, ...]) -> tuple[str, str]:
        """(label, value) naming the pod of a key: ``pod``, or ``pod_name`` on old kubelets."""
        pod = key[1 + plan.key_labels.index("pod")]
        if pod or "pod_name" not in plan.key_labels:
            return "pod", pod
        return "pod_name", key[1 + plan.key_labels.index("pod_name")]

    def _by(self, plan: _Plan) -> str:
        return ", ".join([self.cluster_label, *plan.key_labels])

    def _refine(
        self,
        plan: _Plan,
        gate: _Gate,
        edge: str,
        keyed: Mapping[tuple[str, ...], list[float]],
        bucket: float,
    ) -> dict[tuple[str, ...], float]:
        """Exact first or last sample times, asking only about the buckets holding that edge."""
        pick = min if edge == "first" else max
        by_bucket: dict[float, list[tuple[str, ...]]] = {}
        for key, times in keyed.items():
            by_bucket.setdefault(pick(times), []).append(key)
        jobs: list[tuple[float, str, list[str], dict[tuple[str, ...], tuple[str, ...]], str]] = []
        for t, keys in by_bucket.items():
            for pod_label, pods in self._pod_batches(plan, keys):
                wanted = set(pods)
                batch = [k for k in keys if self._pod(plan, k)[1] in wanted]
                labels, back = self._answer_labels(plan, batch)
                jobs.append((t, pod_label, pods, back, labels))
        func, agg = ("min_over_time", "min") if edge == "first" else ("max_over_time", "max")
        # Subquery steps are aligned to multiples of the resolution: evaluate one step later
        # (and look one step further back) so the samples right at both bucket edges are seen.
        window = f"[{duration(bucket + self.resolution)}:{duration(self.resolution)}]"

        def run(
            job: tuple[float, str, list[str], dict[tuple[str, ...], tuple[str, ...]], str],
        ) -> tuple[QueryResult, dict[tuple[str, ...], tuple[str, ...]], list[str]]:
            t, pod_label, pods, back, labels = job
            stamp = _fill(gate.stamp, **self._pod_selectors(gate, pod_label, pods))
            query = f"{agg} by ({labels}) ({func}(({stamp} > 0){window}))"
            return self.client.query(query, time=t + self.resolution), back, labels.split(", ")

        found: dict[tuple[str, ...], float] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for result, back, names in pool.map(run, jobs):
                for series in result.series:
                    hit = back.get(tuple(series.labels.get(n, "") for n in names))
                    if hit is not None and series.values:
                        value = series.values[-1][1]
                        found[hit] = pick(value, found.get(hit, value))
        return found

    def _answer_labels(
        self, plan: _Plan, keys: Sequence[tuple[str, ...]]
    ) -> tuple[str, dict[tuple[str, ...], tuple[str, ...]]]:
        """The fewest labels that tell this batch's keys apart, and how to map answers back.

        Refine answers are mostly label sets; a pod's uid (with the container) already names
        it, which makes the answer about half as large as the full key's labels.
        """
        full = (self.cluster_label, *plan.key_labels)
        # The cluster stays in: a pod selector matches that pod name in every cluster, and a
        # uid seen under two cluster labels (one cluster scraped twice) would mix their edges.
        for names in ((self.cluster_label, *plan.slim_labels), full):
            index = [full.index(n) for n in names]
            back = {tuple(k[i] for i in index): k for k in keys}
            if (len(back) == len(keys) and all(all(p) for p in back)) or names == full:
                return ", ".join(names), back
        raise AssertionError("unreachable")

    def _over_buckets(self, query: Callable[[str], str], start: float, end: float) -> QueryResult:
        """A range query stepping one bucket at a time over (start, end], each step looking
        back one bucket: the server never holds more than a bucket of samples per series,
        however long the chunk."""
        bucket = min(self.bucket, end - start)
        n = max(1, math.ceil((end - start) / bucket - 1e-9))
        return self.client.query_range(
            query(duration(bucket)), start=end - (n - 1) * bucket, end=end, step=bucket
        )

    def _ksm_attributes(
        self, start: float, end: float
    ) -> dict[tuple[str, ...], list[tuple[float, dict[str, str]]]]:
        """Image, image id and spec per pod container, from kube_pod_container_info: every
        set of values seen in the chunk, with how many samples said so (see :func:`_pick`)."""
        by = f"{self.cluster_label}, namespace, pod, uid, container, image, image_id, image_spec"
        sel = selector(KSM_INFO, self._matchers())
        result = self._over_buckets(
            lambda w: f"max by ({by}) (count_over_time({sel}[{w}]))", start, end
        )
        found: dict[tuple[str, ...], list[tuple[float, dict[str, str]]]] = {}
        for series in result.series:
            labels = series.labels
            samples = sum(v for _, v in series.values)
            info = {k: labels.get(k, "") for k in ("image", "image_id", "image_spec")}
            found.setdefault(self._key(_KSM, labels), []).append((samples, info))
        return found

    def _keep_cadvisor(self, labels: Mapping[str, str]) -> bool:
        container = labels.get("container") or labels.get("container_name", "")
        if self.include_sandbox:
            return True
        return container not in ("", "POD") and not is_sandbox(labels.get("image", ""))

    def owners(self, start: float, end: float) -> dict[tuple[str, str, str], Owner]:
        """(cluster, namespace, pod) → workload, from kube-state-metrics owner metrics."""
        c = self.cluster_label
        m = self._matchers()

        def grouped(metric: str, by: str) -> Callable[[str], str]:
            return lambda w: f"max by ({c}, {by}) (last_over_time({selector(metric, m)}[{w}]))"

        queries = {
            "pod": grouped("kube_pod_owner", "namespace, pod, owner_kind, owner_name"),
            "rs": grouped("kube_replicaset_owner", "namespace, replicaset, owner_kind, owner_name"),
            "job": grouped("kube_job_owner", "namespace, job_name, owner_kind, owner_name"),
        }
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = dict(
                zip(
                    queries,
                    pool.map(lambda q: self._over_buckets(q, start, end), queries.values()),
                    strict=True,
                )
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
                if match:
                    return Owner("Deployment", match.group("name"), inferred=True)
                return Owner(kind, name)
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

    def _span(
        self,
        signal: Signal,
        labels: Mapping[str, str],
        first: float,
        last: float,
        owners: Mapping[tuple[str, str, str], Owner],
    ) -> Span | None:
        return span_from_labels(
            signal,
            labels,
            first,
            last,
            owners,
            cluster_label=self.cluster_label,
            default_cluster=self.default_cluster,
            include_sandbox=self.include_sandbox,
        )


def _pick(
    candidates: Sequence[tuple[float, dict[str, str]]] | None, *, pulled: bool
) -> dict[str, str] | None:
    """One pod container's attributes among those kube_pod_container_info listed in a chunk.

    A container lists its image with an empty ``image_id`` until the image is pulled, then with
    it: a span (it ran) takes the pulled form, a wait the one from before (``pulled=False``),
    when both were seen. Otherwise (an image changed in place) the one seen longest.
    """
    if not candidates:
        return None
    _, info = max(
        candidates,
        key=lambda c: ((c[1]["image_id"] != "") == pulled, c[0], sorted(c[1].items())),
    )
    return info


def span_from_labels(
    signal: Signal,
    labels: Mapping[str, str],
    first: float,
    last: float,
    owners: Mapping[tuple[str, str, str], Owner],
    *,
    cluster_label: str = "cluster",
    default_cluster: str = "default",
    include_sandbox: bool = False,
) -> Span | None:
    """A span from one pod container's labels (current or legacy names) and its edges;
    ``None`` for a sandbox container unless asked for."""
    pod = labels.get("pod") or labels.get("pod_name", "")
    container = labels.get("container") or labels.get("container_name", "")
    namespace = labels.get("namespace", "")
    image, digest = resolve(
        labels.get("image", ""), labels.get("image_id", ""), labels.get("image_spec", "")
    )
    if not include_sandbox and is_sandbox(image):
        return None
    cluster = labels.get(cluster_label) or default_cluster
    owner = owners.get((cluster, namespace, pod)) or infer_owner(pod)
    return Span(
        cluster=cluster,
        namespace=namespace,
        workload_kind=owner.kind,
        workload=owner.name,
        pod=pod,
        container=container,
        image=image,
        digest=digest,
        first_seen=first,
        last_seen=last,
        signal=signal,
        workload_inferred=owner.inferred,
        pod_uid=(labels.get("uid") or labels.get("pod_uid", "")).replace("_", "-"),
    )
