"""The series cAdvisor and kube-state-metrics would expose for a simulated fleet.

Labels follow the real exporters (see the nri-kubernetes fixtures) plus the target labels
a typical scrape config adds (``cluster``, ``job``, ``instance``; ``node`` and
``metrics_path`` for the kubelet). Each series carries its life [a, b) and how to compute
its value at a scrape instant; the writers sample it on the scrape grid. Containers with
an app profile get their CPU and memory from it (plus noise); the ``impact`` signal's
series are in :mod:`imagetrail.sim._impact_series`; :func:`imagetrail.sim.openmetrics.build`
gathers both.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import IntEnum

from imagetrail.sim._images import PAUSE_IMAGE
from imagetrail.sim.types import (
    CRASH_RUN,
    ContainerRun,
    Fleet,
    PodRun,
    Waiting,
    image_id,
    reported_image,
)


class Kind(IntEnum):
    """How a series' value at an instant is computed (:meth:`Series.value`)."""

    CONST = 0  # always 1 (info series)
    COUNTER = 1  # p1 per second since a, on a daily wave
    GAUGE = 2  # p1 on a daily wave, phase p2
    RUNNING = 3  # 0, then 1 and 0 in turn at each of points
    STEPS = 4  # how many of points are past
    NCOUNTER = 5  # a noisy counter: rate p1, scraped every p2 s, reset at points
    NGAUGE = 6  # p1 with noise of amplitude p2


# Series.value runs once per sample (a writer samples millions), and on Python 3.11 looking a
# member up on its enum class costs about 0.3 µs, several times the comparison itself.
_CONST, _COUNTER, _GAUGE, _STEPS, _NCOUNTER, _NGAUGE = (
    Kind.CONST,
    Kind.COUNTER,
    Kind.GAUGE,
    Kind.STEPS,
    Kind.NCOUNTER,
    Kind.NGAUGE,
)


_TWO_PI_PER_DAY = 2 * math.pi / 86400.0
_CRASH_RUN = CRASH_RUN  # a crash-looping container runs this long before it dies again
OOM_BACKOFF = 10.0  # an OOM-killed container is back this long after the kill
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: OpenMetrics wants counters' TYPE line without ``_total``."""

    name: str  # sample name
    type: str
    help: str
    signal: str

    @property
    def family(self) -> str:
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


FAMILIES = (
    Family(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed in seconds.",
        "cadvisor",
    ),
    Family(
        "container_memory_working_set_bytes", "gauge", "Current working set in bytes.", "cadvisor"
    ),
    Family("kube_pod_info", "gauge", "[STABLE] Information about pod.", "ksm"),
    Family("kube_pod_owner", "gauge", "[STABLE] Information about the Pod's owner.", "ksm"),
    Family(
        "kube_replicaset_owner",
        "gauge",
        "[STABLE] Information about the ReplicaSet's owner.",
        "ksm",
    ),
    Family("kube_job_owner", "gauge", "[STABLE] Information about the Job's owner.", "ksm"),
    Family(
        "kube_pod_container_info",
        "gauge",
        "[STABLE] Information about a container in a pod.",
        "ksm",
    ),
    Family(
        "kube_pod_init_container_info",
        "gauge",
        "[STABLE] Information about an init container in a pod.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_running",
        "gauge",
        "[STABLE] Describes whether the container is currently in running state.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_terminated",
        "gauge",
        "[STABLE] Describes whether the container is currently in terminated state.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_restarts_total",
        "counter",
        "[STABLE] The number of container restarts per container.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_waiting",
        "gauge",
        "[STABLE] Describes whether the container is currently in waiting state.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_waiting_reason",
        "gauge",
        "[STABLE] Describes the reason the container is currently in waiting state.",
        "ksm",
    ),
    Family(
        "kube_pod_container_status_last_terminated_reason",
        "gauge",
        "Describes the last reason the container was in terminated state.",
        "ksm",
    ),
    Family(
        "container_cpu_cfs_periods_total",
        "counter",
        "Number of elapsed enforcement period intervals.",
        "impact",
    ),
    Family(
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        "Number of throttled period intervals.",
        "impact",
    ),
    Family(
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container",
        "impact",
    ),
    Family("http_requests_total", "counter", "HTTP requests served, by status code.", "impact"),
    Family("ALERTS", "gauge", "Alerts firing (Prometheus rule evaluation).", "impact"),
)


@dataclass(frozen=True, slots=True)
class Series:
    """One series: rendered labels, life [a, b), scrape offset and value model."""

    labels: str
    a: float
    b: float
    offset_ms: int
    kind: Kind
    p1: float = 0.0  # COUNTER, NCOUNTER: rate; GAUGE, NGAUGE: base
    p2: float = 0.0  # GAUGE: phase; NCOUNTER: scrape interval (s); NGAUGE: noise amplitude
    points: tuple[float, ...] = ()  # RUNNING: on/off edges; STEPS: step instants; NCOUNTER: resets
    key: int = 0  # NCOUNTER, NGAUGE: noise stream; NCOUNTER: < 0 for whole numbers

    def value(self, t: float) -> str:
        """The sample value at ``t`` as OpenMetrics text."""
        if self.kind == _CONST:
            return "1"
        if self.kind == _NCOUNTER:
            since = self.a
            for p in self.points:
                if p > t:
                    break
                since = p
            # steady rate, the noise moving each sample by up to 40 % of one scrape's worth:
            # never decreasing, and the same distribution for the same rate
            v = self.p1 * (t - since) + self.p1 * self.p2 * 0.4 * (1 + noise(self.key, t))
            return str(math.floor(v)) if self.key < 0 else f"{v:.6f}"
        if self.kind == _NGAUGE:
            return str(int(self.p1 * (1 + self.p2 * noise(self.key, t))))
        if self.kind == _COUNTER:
            e = t - self.a
            # rate * (1 + 0.5 sin): never decreasing, but not a straight line either
            v = self.p1 * e + 0.5 * self.p1 * (1 - math.cos(_TWO_PI_PER_DAY * e)) / _TWO_PI_PER_DAY
            return f"{v:.6f}"
        if self.kind == _GAUGE:
            return str(int(self.p1 * (1 + 0.15 * math.sin(_TWO_PI_PER_DAY * t + self.p2))))
        n = 0
        for p in self.points:
            if p > t:
                break
            n += 1
        if self.kind == _STEPS:
            return str(n)
        return "1" if n % 2 else "0"


def escape(value: str) -> str:
    """Label value escaping shared by OpenMetrics and the Prometheus text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(labels: dict[str, str]) -> str:
    """``{k="v",...}`` in the given order."""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def noise(key: int, t: float) -> float:
    """Deterministic noise in [-1, 1) for a series (``key``) at a scrape instant (splitmix64)."""
    x = (abs(key) * 0x9E3779B97F4A7C15 + round(t * 1000)) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return x / 2.0**63 - 1.0


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _hex64(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _ip(*parts: str) -> str:
    h = _h(*parts)
    return f"10.{(h >> 16) % 250}.{(h >> 8) % 250}.{h % 250 + 2}"


def _qos(pod: PodRun) -> str:
    return "besteffort" if _h(pod.namespace, pod.workload) % 4 == 0 else "burstable"


def _offset(instance: str, step_ms: int) -> int:
    return _h(instance) % step_ms


def _active_end(pod: PodRun, end: float) -> float:
    """When the pod's cgroups go away: its last container end (Job pods linger after)."""
    if any(c.end is None for c in pod.containers) or not pod.containers:
        return end if pod.end is None else pod.end
    return max(c.end for c in pod.containers if c.end is not None)


def segments(c: ContainerRun, end: float) -> list[tuple[int, float, float]]:
    """(restart count, from, to) of each runtime container a ContainerRun went through."""
    edges = [c.start, *c.restarts, end if c.end is None else c.end]
    return [(i, edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def container_id(pod: PodRun, c: ContainerRun, restart: int) -> str:
    """A stable 64-hex runtime container id per pod, container and restart."""
    return _hex64(pod.uid, c.name, str(restart))


def kubelet_target(pod: PodRun) -> dict[str, str]:
    """The target labels of the kubelet's cAdvisor endpoint on the pod's node."""
    return {
        "cluster": pod.cluster,
        "instance": f"{_ip(pod.cluster, pod.node)}:10250",
        "job": "kubelet",
        "metrics_path": "/metrics/cadvisor",
        "node": pod.node,
    }


def pod_cgroup(pod: PodRun) -> str:
    """The pod's cgroup path, cAdvisor's ``id`` of the pod (prefix of its containers')."""
    return f"/kubepods/{_qos(pod)}/pod{pod.uid}"


def _cadvisor(pod: PodRun, end: float, step_ms: int, out: dict[str, list[Series]]) -> None:
    target = kubelet_target(pod)
    off = _offset(pod.cluster + target["instance"], step_ms)
    cgroup = pod_cgroup(pod)
    pod_end = _active_end(pod, end)
    sandbox = _hex64(pod.uid, "sandbox")
    Row = tuple[str, str, str, str, float, float, float, ContainerRun | None]
    rows: list[Row] = [
        # container, id, image, name, from, to, cpu rate, container run
        ("", cgroup, "", "", pod.start, pod_end, 0.05, None),
        ("", f"{cgroup}/{sandbox}", PAUSE_IMAGE, sandbox, pod.start, pod_end, 0.00002, None),
    ]
    for c in pod.containers:
        rate = 0.002 + (_h(pod.uid, c.name) % 1000) / 2500.0
        for n, a, b in segments(c, end):
            cid = container_id(pod, c, n)
            rows.append((c.name, f"{cgroup}/{cid}", reported_image(c), cid, a, b, rate, c))
    step = step_ms / 1000.0
    for container, id_, image, name, a, b, rate, run in rows:
        if b <= a:
            continue
        exp = {"container": container, "cpu": "total", "id": id_, "image": image, "name": name}
        exp |= {"namespace": pod.namespace, "pod": pod.pod}
        labels = render(exp | target)
        del exp["cpu"]
        mem_labels = render(exp | target)
        if run is not None and run.profile is not None:
            # App containers: the version's profile, so equal versions look alike.
            prof = run.profile
            cpu = Series(labels, a, b, off, Kind.NCOUNTER, prof.cpu, step, key=_h(labels))
            mem = Series(mem_labels, a, b, off, Kind.NGAUGE, prof.memory, 0.03, key=_h(mem_labels))
        else:
            cpu = Series(labels, a, b, off, Kind.COUNTER, rate)
            base = 8e6 + (_h(id_) % 600) * 1e6 if container else 2e7 + (_h(id_) % 100) * 1e6
            phase = (_h(id_, "phase") % 628) / 100.0
            mem = Series(mem_labels, a, b, off, Kind.GAUGE, base, phase)
        out["container_cpu_usage_seconds_total"].append(cpu)
        out["container_memory_working_set_bytes"].append(mem)


def _ksm_target(cluster: str, step_ms: int) -> tuple[dict[str, str], int]:
    instance = f"{_ip(cluster, 'kube-state-metrics')}:8080"
    target = {"cluster": cluster, "instance": instance, "job": "kube-state-metrics"}
    return target, _offset(cluster + instance, step_ms)


def _ksm_pod(pod: PodRun, end: float, step_ms: int, out: dict[str, list[Series]]) -> None:
    target, off = _ksm_target(pod.cluster, step_ms)
    a, b = pod.start, end if pod.end is None else pod.end
    if b <= a:
        return
    ident = {"namespace": pod.namespace, "pod": pod.pod, "uid": pod.uid}
    created_by = "Node" if pod.owner_kind == "Node" else pod.owner_kind
    info = ident | {
        "host_ip": _ip(pod.cluster, pod.node),
        "pod_ip": _ip(pod.cluster, pod.uid),
        "node": pod.node,
        "created_by_kind": created_by,
        "created_by_name": pod.owner_name,
        "priority_class": "system-node-critical" if pod.namespace == "kube-system" else "",
        "host_network": "true" if pod.owner_kind == "Node" else "false",
    }
    out["kube_pod_info"].append(Series(render(info | target), a, b, off, Kind.CONST))
    owner = ident | {
        "owner_kind": pod.owner_kind,
        "owner_name": pod.owner_name,
        "owner_is_controller": "true",
    }
    out["kube_pod_owner"].append(Series(render(owner | target), a, b, off, Kind.CONST))
    for c in pod.containers:
        family = "kube_pod_init_container_info" if c.init else "kube_pod_container_info"
        segs = segments(c, end)
        created = a
        if c.waits and c.waits[0].start < c.start:
            # Waited before it was first created (a missing secret): no image id, no
            # container id until then.
            created = c.start
            labels = ident | {
                "container": c.name,
                "image_spec": c.image,
                "image": c.image,
                "image_id": "",
                "container_id": "",
            }
            out[family].append(Series(render(labels | target), a, created, off, Kind.CONST))
        for n, s_from, s_to in segs:
            # KSM lists the container from pod creation on, and until the pod is deleted.
            lo = created if n == 0 else s_from
            hi = b if n == len(segs) - 1 else s_to
            labels = ident | {
                "container": c.name,
                "image_spec": c.image,
                "image": reported_image(c),
                "image_id": image_id(c),
                "container_id": f"containerd://{container_id(pod, c, n)}",
            }
            out[family].append(Series(render(labels | target), lo, hi, off, Kind.CONST))
        if c.init:
            continue
        cl = render(ident | {"container": c.name} | target)
        c_end = end if c.end is None else c.end
        if c.restarts and c.profile is not None and c.profile.restart_every is not None:
            # OOM kills: running until the kill, waiting for the back-off, running again
            edges = [c.start]
            for r in c.restarts:
                edges += [r - OOM_BACKOFF, r]
            edges.append(c_end)
        elif c.restarts:
            edges = []
            for start in (c.start, *c.restarts):
                edges += [start, min(start + _CRASH_RUN, c_end)]
        else:
            edges = [c.start, c_end]
        out["kube_pod_container_status_running"].append(
            Series(cl, a, b, off, Kind.RUNNING, points=tuple(edges))
        )
        # Terminated (a completed Job container the pod still lists); a crash-looping one is
        # "waiting" between runs, never terminated.
        done = (c_end,) if c.end is not None and c.end < b else ()
        out["kube_pod_container_status_terminated"].append(
            Series(cl, a, b, off, Kind.RUNNING, points=done)
        )
        out["kube_pod_container_status_restarts_total"].append(
            Series(cl, a, b, off, Kind.STEPS, points=c.restarts)
        )
        _waiting(ident, c.name, c.waits, a, b, target, off, out)
        if c.restarts:
            # Crash loops die with an error, app containers here are OOM-killed.
            oom = c.profile is not None and c.profile.restart_every is not None
            died = c.restarts[0] - OOM_BACKOFF if oom else min(c.start + _CRASH_RUN, c_end)
            last = ident | {"container": c.name, "reason": "OOMKilled" if oom else "Error"}
            out["kube_pod_container_status_last_terminated_reason"].append(
                Series(render(last | target), died, b, off, Kind.CONST)
            )
    for w in pod.waiting:
        # Never ran: listed with the pod-spec image, no image id and no container id yet.
        labels = ident | {
            "container": w.name,
            "image_spec": w.image,
            "image": w.image,
            "image_id": "",
            "container_id": "",
        }
        out["kube_pod_container_info"].append(
            Series(render(labels | target), a, b, off, Kind.CONST)
        )
        cl = render(ident | {"container": w.name} | target)
        for family in ("running", "terminated"):
            out[f"kube_pod_container_status_{family}"].append(Series(cl, a, b, off, Kind.RUNNING))
        out["kube_pod_container_status_restarts_total"].append(Series(cl, a, b, off, Kind.STEPS))
        _waiting(ident, w.name, w.waits, a, b, target, off, out)


def _waiting(
    ident: dict[str, str],
    container: str,
    waits: tuple[Waiting, ...],
    a: float,
    b: float,
    target: dict[str, str],
    off: int,
    out: dict[str, list[Series]],
) -> None:
    """``..._status_waiting`` (0/1) for the pod's life and, while waiting,
    ``..._waiting_reason{reason}`` = 1 (kube-state-metrics v2 lists only the current
    reason). Periods of one reason are one series with gaps, its samples together."""
    cl = render(ident | {"container": container} | target)
    edges: list[float] = []
    for w in waits:
        lo, hi = max(w.start, a), b if w.end is None else min(w.end, b)
        if lo >= hi:
            continue
        if edges and edges[-1] == lo:
            edges[-1] = hi  # back to back: still waiting
        else:
            edges += [lo, hi]
    out["kube_pod_container_status_waiting"].append(
        Series(cl, a, b, off, Kind.RUNNING, points=tuple(edges))
    )
    for reason in dict.fromkeys(w.reason for w in waits):
        labels = render(ident | {"container": container, "reason": reason} | target)
        for w in waits:
            lo, hi = max(w.start, a), b if w.end is None else min(w.end, b)
            if w.reason == reason and lo < hi:
                out["kube_pod_container_status_waiting_reason"].append(
                    Series(labels, lo, hi, off, Kind.CONST)
                )


def _ksm_owners(fleet: Fleet, step_ms: int, out: dict[str, list[Series]]) -> None:
    end = fleet.end
    rs: dict[tuple[str, str, str], list[float]] = {}  # replicaset -> [first start, last end]
    deployments_gone: dict[tuple[str, str, str], float | None] = {}
    for pod in fleet.pods:
        target, off = _ksm_target(pod.cluster, step_ms)
        pod_end = end if pod.end is None else pod.end
        if pod.owner_kind == "ReplicaSet":
            key = (pod.cluster, pod.namespace, pod.owner_name)
            span = rs.setdefault(key, [pod.start, pod_end])
            span[0] = min(span[0], pod.start)
            dkey = (pod.cluster, pod.namespace, pod.workload)
            gone = deployments_gone.get(dkey, 0.0)
            deployments_gone[dkey] = None if gone is None or pod.end is None else max(gone, pod.end)
        elif pod.owner_kind == "Job":
            cron = pod.workload_kind == "CronJob"
            labels = {
                "namespace": pod.namespace,
                "job_name": pod.owner_name,
                "owner_kind": "CronJob" if cron else "",
                "owner_name": pod.workload if cron else "",
                "owner_is_controller": "true" if cron else "",
            }
            out["kube_job_owner"].append(
                Series(render(labels | target), pod.start, pod_end, off, Kind.CONST)
            )
    for pod in fleet.pods:
        if pod.owner_kind != "ReplicaSet":
            continue
        key = (pod.cluster, pod.namespace, pod.owner_name)
        if key not in rs:
            continue  # already written
        first, _ = rs.pop(key)
        # ReplicaSets outlive their pods (revision history) until the Deployment is deleted.
        gone = deployments_gone[(pod.cluster, pod.namespace, pod.workload)]
        target, off = _ksm_target(pod.cluster, step_ms)
        labels = {
            "namespace": pod.namespace,
            "replicaset": pod.owner_name,
            "owner_kind": "Deployment",
            "owner_name": pod.workload,
            "owner_is_controller": "true",
        }
        out["kube_replicaset_owner"].append(
            Series(render(labels | target), first, end if gone is None else gone, off, Kind.CONST)
        )


def sample_times(s: Series, lo: float, hi: float, start_ms: int, step_ms: int) -> range:
    """Scrape instants (ms) of ``s`` on its grid within [lo, hi) ∩ [a, b)."""
    lo_ms = max(lo, s.a) * 1000.0
    hi_ms = min(hi, s.b) * 1000.0
    base = start_ms + s.offset_ms
    k0 = max(0, math.ceil((lo_ms - base) / step_ms))
    k1 = max(k0, math.ceil((hi_ms - base) / step_ms))
    return range(base + k0 * step_ms, base + k1 * step_ms, step_ms)


def values(s: Series, times_ms: range) -> list[str]:
    """Values of ``s`` at each instant; the common info series take the fast path."""
    if s.kind == Kind.CONST:
        return ["1"] * len(times_ms)
    return [s.value(t / 1000.0) for t in times_ms]
