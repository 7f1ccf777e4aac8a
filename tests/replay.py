"""Real scrapes (fixtures/nri-kubernetes) replayed as a short timeline for a real Prometheus."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from paths import FIXTURES as DATA
from servers import split_sample_line

FIXTURES = DATA / "nri-kubernetes"
SCRAPES = {
    "kind-1-31": ["k8s_1_31/kubelet_metrics_cadvisor.txt", "k8s_1_31/ksm_metrics.txt"],
    "kind-1-22": ["k8s_1_22/kubelet_metrics_cadvisor.txt", "k8s_1_22/ksm_metrics.txt"],
    "minikube-1-15": ["legacy/k8s_v1_15_kubelet_metrics_cadvisor.txt"],
}
KEEP = ("container_cpu_usage_seconds_total", "kube_pod_")


def read_scrape(path: Path) -> list[tuple[str, str, float]]:
    """(metric name, labels text without braces, value) for each sample line of a scrape."""
    out = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        series, value, _ = split_sample_line(line)
        name, _, labels = series.partition("{")
        if name.startswith(KEEP):
            out.append((name, labels.rstrip("}"), float(value)))
    return out


def write_replay(
    out: Path,
    *,
    start: float,
    minutes: int = 30,
    step: float = 30.0,
    clusters: Mapping[str, tuple[str, Sequence[tuple[int, int]]]] | None = None,
) -> Path:
    """Every scraped series repeated every ``step`` seconds for ``minutes``, one cluster label
    per scrape, as OpenMetrics for promtool (counters keep their value: the scrape is a still).

    ``clusters``: cluster label -> (a key of SCRAPES, the minute ranges ``[a, b]`` in which that
    cluster reports), for replays where a cluster goes silent or comes back."""
    plan = clusters or {name: (name, [(0, minutes)]) for name in SCRAPES}
    families: dict[str, list[tuple[str, float, tuple[tuple[int, int], ...]]]] = defaultdict(list)
    for cluster, (scrape, ranges) in plan.items():
        for name in SCRAPES[scrape]:
            for metric, labels, value in read_scrape(FIXTURES / name):
                joined = f'cluster="{cluster}"' + (f",{labels}" if labels else "")
                families[metric].append((joined, value, tuple(ranges)))
    minute_steps = int(minutes * 60 / step) + 1
    path = out / "replay.om.txt"
    with path.open("w") as f:
        for metric, series in sorted(families.items()):
            f.write(f"# TYPE {metric} unknown\n")
            for labels, value, ranges in sorted(set(series)):
                for i in range(minute_steps):
                    if any(a * 60 <= i * step <= b * 60 for a, b in ranges):
                        f.write(f"{metric}{{{labels}}} {value} {start + i * step:.3f}\n")
        f.write("# EOF\n")
    return path


# -- scripted pods ------------------------------------------------------------------------------
# A scripted pod copies the kube-state-metrics series a real pod has in a scrape (its template)
# under a new name, uid and ReplicaSet, and plays a script of container states over them: the
# series that say what the container does (running, waiting and why, terminated and why,
# restarts, the pod's phase and readiness, the image id once pulled) follow the script; the
# others (requests, labels, tolerations...) are the template's.

KSM_1_31 = "k8s_1_31/ksm_metrics.txt"
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# Series a script decides (the template's own are dropped); kube_pod_completion_time is for
# finished pods only.
_SCRIPTED = {
    "kube_pod_completion_time",
    "kube_pod_container_info",
    "kube_pod_container_state_started",
    "kube_pod_container_status_last_terminated_exitcode",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_last_terminated_timestamp",
    "kube_pod_container_status_ready",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_running",
    "kube_pod_container_status_terminated",
    "kube_pod_container_status_terminated_reason",
    "kube_pod_container_status_waiting",
    "kube_pod_container_status_waiting_reason",
    "kube_pod_status_container_ready_time",
    "kube_pod_status_phase",
    "kube_pod_status_ready",
    "kube_pod_status_ready_time",
}
_PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")
State = Literal["real", "running", "waiting", "crashloop"]


@dataclass(frozen=True, slots=True)
class Phase:
    """From ``start`` (inclusive) to ``end`` (exclusive), minutes into the replay.

    ``real``: the template's series as scraped; ``running``; ``waiting`` (with a kubelet
    ``reason``); ``crashloop``: the container starts, dies with ``Error`` two seconds later and
    is restarted after kubelet's back-off (10 s doubling to 5 min), scraped as waiting
    ``CrashLoopBackOff``, ``terminated`` (within 15 s of a crash) or running, its restart
    counter rising."""

    start: float
    end: float
    state: State
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScriptedPod:
    """A pod in the replay: the template pod's series (``scrape``, pod name ``template``) with
    its ``name``, ``uid``, ``replicaset``, ``image`` and ``image_id`` (reported once the
    container was created) replaced, playing ``phases``. Empty fields keep the template's."""

    cluster: str
    template: str
    phases: tuple[Phase, ...]
    name: str = ""
    uid: str = ""
    replicaset: str = ""
    image: str = ""
    image_id: str = ""
    scrape: str = KSM_1_31

    def state(self, minute: float) -> Phase | None:
        return next((p for p in self.phases if p.start <= minute < p.end), None)

    def without_waits(self, cluster: str) -> ScriptedPod | None:
        """The same pod in another cluster, never listed while it waits (None if it only
        waited): the replay as it would be without the attempts' waiting pods."""
        phases = tuple(p for p in self.phases if p.state != "waiting")
        return replace(self, cluster=cluster, phases=phases) if phases else None


def image_pull_backoff(start: float, end: float, step: float = 30.0) -> tuple[Phase, ...]:
    """A container whose image cannot be pulled, as scraped every ``step`` seconds:
    ``ErrImagePull`` at each pull attempt (kubelet retries after 10 s doubling to 5 min),
    ``ImagePullBackOff`` in between."""
    pulls, t, backoff = [], start * 60, 10.0
    while t < end * 60:
        pulls.append(t)
        t += backoff
        backoff = min(2 * backoff, 300.0)
    phases: list[Phase] = []
    t = start * 60
    while t < end * 60:
        failed_pull = any(t - step < p <= t for p in pulls)
        reason = "ErrImagePull" if failed_pull else "ImagePullBackOff"
        if phases and phases[-1].reason == reason:
            phases[-1] = replace(phases[-1], end=(t + step) / 60)
        else:
            phases.append(Phase(t / 60, (t + step) / 60, "waiting", reason))
        t += step
    return tuple(replace(p, end=min(p.end, end)) for p in phases)


def _crashes(start: float, until: float) -> list[tuple[float, float]]:
    """(started, died) seconds of each run of a crash-looping container started at ``start``."""
    runs, t, backoff = [], start + 5.0, 10.0
    while t <= until:
        runs.append((t, t + 2.0))
        t += 2.0 + backoff
        backoff = min(2 * backoff, 300.0)
    return runs


def _pod_template(scrape: str, pod: str) -> list[tuple[str, list[tuple[str, str]], float]]:
    """A pod's kube-state-metrics series in a scrape: (metric, labels in order, value)."""
    found = [
        (metric, _LABEL.findall(labels), value)
        for metric, labels, value in read_scrape(FIXTURES / scrape)
        if f'pod="{pod}"' in labels
    ]
    if not found:
        raise ValueError(f"no pod {pod!r} in {scrape}")
    return found


def _text(labels: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels)


def _series_at(
    pod: ScriptedPod, template: list[tuple[str, list[tuple[str, str]], float]], t: float
) -> list[tuple[str, str, float]]:
    """(metric, labels text, value) of a scripted pod scraped at ``t`` seconds into the replay."""
    phase = pod.state(t / 60)
    if phase is None:
        return []
    cluster = ("cluster", pod.cluster)
    if phase.state == "real":
        return [(m, _text([cluster, *labels]), v) for m, labels, v in template]
    uid = dict(template[0][1]).get("uid", "")
    names = {"pod": pod.name or pod.template, "uid": pod.uid or uid}
    created = min(p.start for p in pod.phases) * 60
    # When the container was first created: a crash-looping one after its image pull.
    began = [
        p.start * 60 + (5.0 if p.state == "crashloop" else 0.0)
        for p in pod.phases
        if p.state != "waiting" and p.start * 60 + (5.0 if p.state == "crashloop" else 0.0) <= t
    ]
    runs = _crashes(phase.start * 60, t) if phase.state == "crashloop" else []
    restarts = max(0, sum(1 for s, _ in runs if s <= t) - 1)
    died = [d for _, d in runs if d <= t]
    running = phase.state == "running" or any(s <= t < d for s, d in runs)
    if phase.state == "crashloop" and not running and not died:
        waiting_reason = "ContainerCreating"  # pulling the image, the first run is to come
    elif phase.state == "crashloop" and died and t - died[-1] >= 15 and not running:
        waiting_reason = "CrashLoopBackOff"
    else:
        waiting_reason = phase.reason if phase.state == "waiting" else ""
    terminated = phase.state == "crashloop" and not running and not waiting_reason
    started = bool(began)
    out: list[tuple[str, str, float]] = []
    containers: list[list[tuple[str, str]]] = []
    for metric, labels, value in template:
        new = [(k, names.get(k, v)) for k, v in labels]
        if metric == "kube_pod_container_info":
            new = [
                (k, v)
                if k not in ("image", "image_id", "image_spec", "container_id")
                else (k, _info(pod, k, v, started))
                for k, v in new
            ]
            containers.append(
                [lb for lb in new if lb[0] in ("namespace", "pod", "uid", "container")]
            )
        if metric == "kube_pod_owner" and pod.replicaset:
            new = [(k, pod.replicaset if k == "owner_name" else v) for k, v in new]
        if metric == "kube_pod_info" and pod.replicaset:
            new = [(k, pod.replicaset if k == "created_by_name" else v) for k, v in new]
        if metric in _SCRIPTED and metric != "kube_pod_container_info":
            continue
        # The template's own times (created, scheduled, started) become the scripted pod's.
        value = created if metric.endswith(("_time", "_created")) else value
        out.append((metric, _text([cluster, *new]), value))
    pod_labels = [(k, v) for k, v in containers[0] if k != "container"]
    phase_name = "Running" if started else "Pending"
    ready = phase.state == "running"
    for name in _PHASES:
        out.append(
            (
                "kube_pod_status_phase",
                _text([cluster, *pod_labels, ("phase", name)]),
                float(name == phase_name),
            )
        )
    for condition in ("true", "false", "unknown"):
        value = float(condition == ("true" if ready else "false"))
        out.append(
            (
                "kube_pod_status_ready",
                _text([cluster, *pod_labels, ("condition", condition)]),
                value,
            )
        )
    for labels in containers:
        lt = _text([cluster, *labels])
        out += [
            ("kube_pod_container_status_running", lt, float(running)),
            ("kube_pod_container_status_waiting", lt, float(bool(waiting_reason))),
            ("kube_pod_container_status_terminated", lt, float(terminated)),
            ("kube_pod_container_status_ready", lt, float(ready)),
            ("kube_pod_container_status_restarts_total", lt, float(restarts)),
        ]
        if waiting_reason:
            reason = _text([cluster, *labels, ("reason", waiting_reason)])
            out.append(("kube_pod_container_status_waiting_reason", reason, 1.0))
        if terminated:
            reason = _text([cluster, *labels, ("reason", "Error")])
            out.append(("kube_pod_container_status_terminated_reason", reason, 1.0))
        if restarts:
            reason = _text([cluster, *labels, ("reason", "Error")])
            out.append(("kube_pod_container_status_last_terminated_reason", reason, 1.0))
        if began:
            out.append(("kube_pod_container_state_started", lt, began[0]))
    return out


def _info(pod: ScriptedPod, key: str, value: str, started: bool) -> str:
    """A kube_pod_container_info label of a scripted pod: the image id and container id are
    empty until the container was created (kubelet reports them from the runtime)."""
    if key == "image":
        return pod.image or value
    if key == "image_spec":
        return pod.image or value
    if key == "image_id":
        return (pod.image_id or value) if started else ""
    return f"containerd://{hashlib.sha256(pod.uid.encode()).hexdigest()}" if started else ""


def write_scripted_replay(
    out: Path,
    pods: Sequence[ScriptedPod],
    *,
    start: float,
    minutes: int,
    step: float = 30.0,
    name: str = "scripted.om.txt",
) -> Path:
    """The scripted pods scraped every ``step`` seconds for ``minutes``, as OpenMetrics for
    promtool, with a ``kube_replicaset_owner`` for each ReplicaSet their pods name."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(dict)
    templates = {(p.scrape, p.template): _pod_template(p.scrape, p.template) for p in pods}
    for i in range(int(minutes * 60 / step) + 1):
        t = i * step
        for pod in pods:
            for metric, labels, value in _series_at(pod, templates[pod.scrape, pod.template], t):
                series[metric].setdefault(labels, []).append((start + t, value))
                if metric == "kube_pod_owner":
                    _owner(series, dict(_LABEL.findall(labels)), start + t)
    path = out / name
    with path.open("w") as f:
        for metric in sorted(series):
            f.write(f"# TYPE {metric} unknown\n")
            for labels, samples in sorted(series[metric].items()):
                for ts, value in samples:
                    f.write(f"{metric}{{{labels}}} {value} {ts:.3f}\n")
        f.write("# EOF\n")
    return path


def _owner(
    series: dict[str, dict[str, list[tuple[float, float]]]], owner: Mapping[str, str], ts: float
) -> None:
    """kube_replicaset_owner of a pod's ReplicaSet (its Deployment: the name without the hash)."""
    if owner.get("owner_kind") != "ReplicaSet":
        return
    rs = owner["owner_name"]
    labels = _text(
        [
            ("cluster", owner["cluster"]),
            ("namespace", owner["namespace"]),
            ("replicaset", rs),
            ("owner_kind", "Deployment"),
            ("owner_name", rs.rsplit("-", 1)[0]),
            ("owner_is_controller", "true"),
        ]
    )
    samples = series["kube_replicaset_owner"].setdefault(labels, [])
    if not samples or samples[-1][0] < ts:
        samples.append((ts, 1.0))
