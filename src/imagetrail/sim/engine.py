"""Turns workload scripts (rollouts, drains, schedules) into pods, the way controllers would.

Each workload is simulated on its own, with its own random stream, so adding one workload
to a scenario does not move anything in the others. Timing follows the controllers:
Deployments surge one pod at a time and remove an old pod once a new one is ready,
StatefulSets replace pods in reverse ordinal order under the same name, DaemonSets go
node by node, CronJobs start one Job per schedule tick, node drains evict and reschedule.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field

from imagetrail.sim._images import digest_for
from imagetrail.sim.types import (
    CRASH_RUN,
    AppProfile,
    ContainerRun,
    PodRun,
    ScriptedRollout,
    Waiting,
    WaitingContainer,
)

# The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A container of a pod template. ``push`` selects which push of the tag is pulled."""

    name: str
    image: str
    push: int = 0
    init: bool = False
    bare_id: bool = False
    profile: AppProfile | None = None  # how this version behaves (app metrics); None: none


@dataclass(frozen=True, slots=True)
class Rollout:
    """A change of the pod template at ``at``; ``fail`` makes the new pods crash-loop.

    ``bad`` and ``undo`` change nothing in how the rollout goes (a bad version misbehaves
    through its containers' profile); they say what it is in the ground truth: a bad
    version, and ``kubectl rollout undo`` back to the template before.

    ``reason`` makes the new pods wait as kube-state-metrics would show it: with ``fail``,
    ``CrashLoopBackOff`` (a crash loop with its waits; without a reason the crash loop has
    none) or ``ImagePullBackOff`` (the tag does not exist: the pods never run, alternating
    ErrImagePull and ImagePullBackOff; ``stuck``: never undone); without ``fail``,
    ``CreateContainerConfigError`` with ``fixed_after``: the missing secret appears that
    many seconds later and the waiting pods start in place.
    """

    at: float
    containers: tuple[ContainerSpec, ...]
    fail: bool = False
    rollback_after: float = 1200.0  # failed rollouts are undone after this many seconds
    bad: bool = False
    undo: bool = False
    reason: str = ""
    fixed_after: float | None = None
    stuck: bool = False


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A workload's script. ``kind`` is a Kubernetes kind, or ``StaticPod``."""

    cluster: str
    namespace: str
    kind: str
    name: str
    containers: tuple[ContainerSpec, ...]
    replicas: int = 1
    rollouts: tuple[Rollout, ...] = ()
    created: float | None = None  # None: exists before the simulation starts
    deleted: float | None = None
    period: float = 3600.0  # CronJob schedule
    run_seconds: tuple[float, float] = (60.0, 300.0)  # Job/CronJob run length
    node: str = ""  # StaticPod: the node it lives on


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A cluster's nodes; workers run everything but static pods."""

    name: str
    workers: tuple[str, ...]
    control_plane: str


@dataclass(slots=True)
class _Ctr:
    name: str
    image: str
    digest: str
    start: float
    end: float | None
    init: bool
    bare: bool
    restarts: list[float] = field(default_factory=list)
    profile: AppProfile | None = None
    waits: list[tuple[float, float, str]] = field(default_factory=list)
    crash_waits: bool = False  # CrashLoopBackOff between its restarts (set in freeze)


@dataclass(slots=True)
class _Pod:
    name: str
    uid: str
    node: str
    start: float
    containers: list[_Ctr]
    owner_kind: str
    owner_name: str
    end: float | None = None
    waiting: list[tuple[str, str, list[tuple[float, float, str]]]] = field(default_factory=list)

    @property
    def ready(self) -> float:
        """When every main container runs (readiness probes are folded into this)."""
        return max((c.start for c in self.containers if not c.init), default=self.start)


def suffix(rng: random.Random, n: int = 5) -> str:
    """A Kubernetes-style random name suffix."""
    return "".join(rng.choice(_K8S_ALPHABET) for _ in range(n))


def template_hash(*parts: object) -> str:
    """A pod-template-hash: equal templates give equal ReplicaSet names (as rollbacks do)."""
    h = int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")
    out = []
    for _ in range(10):
        h, r = divmod(h, len(_K8S_ALPHABET))
        out.append(_K8S_ALPHABET[r])
    return "".join(out)


class _Workload:
    """Simulates one workload; ``pods`` collects every pod it ever had."""

    def __init__(
        self,
        spec: WorkloadSpec,
        cluster: ClusterSpec,
        seed: int,
        sim_start: float,
        sim_end: float,
    ) -> None:
        self.spec = spec
        self.cluster = cluster
        self.rng = random.Random(f"{seed}:{spec.cluster}:{spec.namespace}:{spec.kind}:{spec.name}")
        self.sim_start = sim_start
        self.sim_end = sim_end
        self.template = spec.containers
        self.pods: list[_Pod] = []
        self.live: list[_Pod] = []
        self.busy: list[tuple[float, float]] = []  # rollout windows: no drains in there
        self.done: list[ScriptedRollout] = []  # the rollouts applied, as ground truth

    # -- building blocks ---------------------------------------------------------------

    def _u(self, lo: float, hi: float) -> float:
        return round(self.rng.uniform(lo, hi), 3)

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _owner(self) -> tuple[str, str]:
        kind, name = self.spec.kind, self.spec.name
        if kind == "Deployment":
            return "ReplicaSet", f"{name}-{self._rs_hash()}"
        if kind == "StaticPod":
            return "Node", self.spec.node
        return kind, name

    def _rs_hash(self) -> str:
        images = tuple((c.name, c.image, c.push) for c in self.template)
        return template_hash(self.spec.cluster, self.spec.namespace, self.spec.name, images)

    def _pod_name(self, owner_name: str) -> str:
        if self.spec.kind == "StaticPod":
            return f"{self.spec.name}-{self.spec.node}"
        return f"{owner_name}-{suffix(self.rng)}"

    def _node(self, avoid: str = "") -> str:
        choices = [n for n in self.cluster.workers if n != avoid] or list(self.cluster.workers)
        return self.rng.choice(choices)

    def new_pod(
        self,
        start: float,
        node: str,
        *,
        name: str | None = None,
        owner: tuple[str, str] | None = None,
        crash: bool = False,
    ) -> _Pod:
        """Create a pod at ``start``: init containers first, then the main ones."""
        owner_kind, owner_name = owner or self._owner()
        t = start + self._u(1.0, 4.0)
        ctrs: list[_Ctr] = []
        for spec in (c for c in self.template if c.init):
            end = t + self._u(20.0, 90.0) if not ctrs else t + self._u(2.0, 10.0)
            ctrs.append(self._ctr(spec, t, end))
            t = end + self._u(0.5, 2.0)
        main_start = t + self._u(10.0, 30.0) if not ctrs else t + self._u(1.0, 5.0)
        for spec in (c for c in self.template if not c.init):
            ctr = self._ctr(spec, main_start + self._u(0.0, 1.5), None)
            every = spec.profile.restart_every if spec.profile is not None else None
            if every is not None:
                # OOM-killed after running a while, restarted in place (end_pod trims these).
                r = round(ctr.start + self._u(*every), 3)
                while r < self.sim_end:
                    ctr.restarts.append(r)
                    r = round(r + self._u(*every), 3)
            ctrs.append(ctr)
        if crash:
            # CrashLoopBackOff: each restart waits twice as long, capped at five minutes.
            first = next(c for c in ctrs if not c.init)
            backoff, t = 10.0, first.start
            while t < start + 4 * 3600:
                t += self._u(3.0, 8.0) + backoff
                first.restarts.append(round(t, 3))
                backoff = min(backoff * 2, 300.0)
        pod = _Pod(
            name=name or self._pod_name(owner_name),
            uid=self._uid(),
            node=node,
            start=start,
            containers=ctrs,
            owner_kind=owner_kind,
            owner_name=owner_name,
        )
        self.pods.append(pod)
        return pod

    def _ctr(self, spec: ContainerSpec, start: float, end: float | None) -> _Ctr:
        return _Ctr(
            name=spec.name,
            image=spec.image,
            digest=digest_for(spec.image, spec.push),
            start=round(start, 3),
            end=None if end is None else round(end, 3),
            init=spec.init,
            bare=spec.bare_id,
            profile=spec.profile,
        )

    @staticmethod
    def end_pod(pod: _Pod, at: float) -> None:
        at = round(at, 3)
        pod.end = at
        for c in pod.containers:
            if c.end is None or c.end > at:
                c.end = max(at, c.start)
            c.restarts = [r for r in c.restarts if r < c.end]

    # -- controller behaviour ----------------------------------------------------------

    def create(self, at: float, *, before_start: bool) -> None:
        """Bring the workload up: ``before_start`` pods were already running at t0."""
        kind = self.spec.kind
        if kind in ("CronJob", "Job"):
            return
        if kind == "StaticPod":
            nodes = [self.spec.node]
        elif kind == "DaemonSet":
            nodes = list(self.cluster.workers)
        else:
            nodes = [self._node() for _ in range(self.spec.replicas)]
        t = at
        for i, node in enumerate(nodes):
            start = at - self._u(600.0, 2.5 * 86400.0) if before_start else t
            name = f"{self.spec.name}-{i}" if kind == "StatefulSet" else None
            pod = self.new_pod(start, node, name=name)
            self.live.append(pod)
            # StatefulSets start ordinal n+1 only once n is ready.
            t = pod.ready + self._u(2.0, 10.0) if kind == "StatefulSet" else t + self._u(0.5, 3.0)

    def rollout(self, ro: Rollout) -> None:
        """Apply a template change the way the workload's controller would."""
        old_template = self.template
        self.template = ro.containers
        kind, t = self.spec.kind, ro.at
        if kind in ("CronJob", "Job"):
            self._record(ro.at, None, "rollout", old_template, ro.containers)
            return  # the next run simply uses the new template
        olds = sorted(self.live, key=lambda p: p.start)
        if ro.fail and ro.reason not in ("", "CrashLoopBackOff"):
            end = self._never_runs(ro, olds, old_template)
        elif ro.fail:
            end = self._failed_rollout(ro, olds, old_template)
        elif kind == "Deployment" and ro.fixed_after is not None:
            end = self._surge(t, olds, fixed_at=t + ro.fixed_after, reason=ro.reason)
        elif kind == "Deployment":
            end = self._surge(t, olds)
        else:
            end = self._replace_in_place(t, olds)
        if not ro.fail:
            finished = max((p.end for p in olds if p.end is not None), default=None)
            what = "rollback" if ro.undo else "bad" if ro.bad else "rollout"
            self._record(t, finished, what, old_template, ro.containers, ro.reason)
        self.busy.append((t, end))

    def _record(
        self,
        at: float,
        finished: float | None,
        kind: str,
        old: tuple[ContainerSpec, ...],
        new: tuple[ContainerSpec, ...],
        reason: str = "",
    ) -> None:
        before = {c.name: c for c in old}
        changed = tuple(
            (c.name, before[c.name].image, c.image)
            for c in new
            if c.name in before and (c.image, c.push) != (before[c.name].image, before[c.name].push)
        )
        wkind, name = self.spec.kind, self.spec.name
        if wkind == "StaticPod":
            wkind, name = "Node", self.spec.node
        self.done.append(
            ScriptedRollout(
                cluster=self.spec.cluster,
                namespace=self.spec.namespace,
                workload_kind=wkind,
                workload=name,
                at=at,
                finished=None if finished is None or finished >= self.sim_end else finished,
                kind=kind,
                containers=changed,
                reason=reason,
            )
        )

    def _surge(
        self, t: float, olds: list[_Pod], *, fixed_at: float | None = None, reason: str = ""
    ) -> float:
        # maxSurge 1, maxUnavailable 0: one new pod, wait until it runs, drop one old pod.
        cur, news = t, []
        for old in olds:
            pod = self.new_pod(cur, self._node())
            if fixed_at is not None and pod.start < fixed_at:
                # The image is pulled but the container cannot be created (a secret is
                # missing) until ``fixed_at``; then the kubelet's next retry starts it.
                retry = fixed_at + self._u(2.0, 20.0)
                for c in pod.containers:
                    if not c.init and c.start < retry:
                        c.waits.append((c.start, retry, reason))
                        c.start = round(retry + self._u(0.0, 1.5), 3)
            old_end = pod.ready + self._u(3.0, 12.0)
            self.end_pod(old, old_end)
            news.append(pod)
            cur = max(cur + self._u(20.0, 60.0), old_end + self._u(0.5, 2.0))
        self.live = news
        return cur

    def _replace_in_place(self, t: float, olds: list[_Pod]) -> float:
        # StatefulSet (highest ordinal first), DaemonSet (node by node), static pod:
        # the old pod goes first, its replacement keeps the name (StatefulSet) or node.
        if self.spec.kind == "StatefulSet":
            olds = sorted(olds, key=lambda p: -int(p.name.rsplit("-", 1)[1]))
        cur, news = t, []
        for old in olds:
            self.end_pod(old, cur + self._u(2.0, 15.0))
            assert old.end is not None
            keep_name = self.spec.kind in ("StatefulSet", "StaticPod")
            pod = self.new_pod(
                old.end + self._u(1.0, 3.0) + (self._u(5.0, 20.0) if keep_name else 0.0),
                old.node,
                name=old.name if keep_name else None,
            )
            news.append(pod)
            cur = pod.ready + self._u(5.0, 20.0)
        self.live = news
        return cur

    def _failed_rollout(
        self, ro: Rollout, olds: list[_Pod], old_template: tuple[ContainerSpec, ...]
    ) -> float:
        # maxSurge 25 %, maxUnavailable 25 %: the new ReplicaSet gets surge+unavailable pods,
        # one old pod goes at once; the new pods crash-loop, so nothing else moves until the
        # rollback (`kubectl rollout undo`) scales the old ReplicaSet back up.
        n = len(olds)
        unavailable = max(1, n // 4)
        surge = max(1, -(-n // 4))
        t = ro.at
        bad = [
            self.new_pod(t + i * self._u(0.5, 2.0), self._node(), crash=True)
            for i in range(surge + unavailable)
        ]
        for pod in bad:
            for c in pod.containers:
                c.crash_waits = bool(ro.reason) and bool(c.restarts)
        for old in olds[:unavailable]:
            self.end_pod(old, t + self._u(1.0, 5.0))
        keep = olds[unavailable:]
        rb = t + ro.rollback_after + self._u(0.0, 300.0)
        self.template = old_template
        cur, fresh = rb, []
        for _ in range(n - len(keep)):
            pod = self.new_pod(cur, self._node())
            fresh.append(pod)
            cur = max(cur + self._u(20.0, 60.0), pod.ready + self._u(0.5, 2.0))
        last_ready = max(p.ready for p in fresh)
        for i, pod in enumerate(bad):
            self.end_pod(pod, last_ready + self._u(1.0, 5.0) + i)
        self.live = keep + fresh
        gone = max(p.end or 0.0 for p in bad)
        self._record(t, None, "failed", old_template, ro.containers, ro.reason)
        if rb < self.sim_end:
            self._record(rb, gone, "rollback", ro.containers, old_template)
        return gone

    def _never_runs(
        self, ro: Rollout, olds: list[_Pod], old_template: tuple[ContainerSpec, ...]
    ) -> float:
        # maxSurge 25 % (rounded up), maxUnavailable 25 % (rounded down): the new pods cannot
        # pull their image, so they wait, and one old pod in four goes. `kubectl rollout
        # undo` after ``rollback_after`` deletes the waiting pods and brings the old
        # ReplicaSet back to size; a ``stuck`` rollout waits until the end.
        n = len(olds)
        surge, unavailable = -(-n // 4), n // 4
        t = ro.at
        until = self.sim_end if ro.stuck else min(self.sim_end, t + ro.rollback_after + 900.0)
        bad = []
        for i in range(surge + unavailable):
            pod = self.new_pod(t + i * self._u(0.5, 2.0), self._node())
            mains = [c for c in pod.containers if not c.init]
            pod.containers = [c for c in pod.containers if c.init]
            for c in mains:
                # the pull fails where the container would have started
                pod.waiting.append((c.name, c.image, self._pull_waits(c.start, until)))
            bad.append(pod)
        for old in olds[:unavailable]:
            self.end_pod(old, t + self._u(1.0, 5.0))
        keep = olds[unavailable:]
        self._record(t, None, "failed", old_template, ro.containers, ro.reason)
        self.template = old_template
        if ro.stuck:
            self.live = keep  # the waiting pods are the controller's, never drained
            return self.sim_end
        rb = t + ro.rollback_after + self._u(0.0, 120.0)
        cur, fresh = rb, []
        for _ in range(n - len(keep)):
            pod = self.new_pod(cur, self._node())
            fresh.append(pod)
            cur = max(cur + self._u(20.0, 60.0), pod.ready + self._u(0.5, 2.0))
        # Waiting pods are unavailable: the controller deletes them at once.
        for i, pod in enumerate(bad):
            self.end_pod(pod, rb + self._u(1.0, 5.0) + i)
        self.live = keep + fresh
        gone = max(p.end or 0.0 for p in bad)
        if rb < self.sim_end:
            self._record(rb, gone, "rollback", ro.containers, old_template)
        return max(gone, cur)

    def _pull_waits(self, begin: float, until: float) -> list[tuple[float, float, str]]:
        """ErrImagePull while a pull fails, then ImagePullBackOff for the back-off (10 s,
        doubling, at most five minutes), over and over; the first pull takes longest."""
        out: list[tuple[float, float, str]] = []
        t, backoff, first = begin, 10.0, True
        while t < until:
            failed = round(t + (self._u(35.0, 50.0) if first else self._u(3.0, 10.0)), 3)
            retry = round(failed + backoff + self._u(0.0, 5.0), 3)
            out += [(round(t, 3), failed, "ErrImagePull"), (failed, retry, "ImagePullBackOff")]
            t, backoff, first = retry, min(backoff * 2, 300.0), False
        return out

    def drain(self, at: float, node: str) -> None:
        """Evict this workload's pods from ``node``; controllers reschedule them elsewhere."""
        if self.spec.kind not in ("Deployment", "StatefulSet"):
            return  # DaemonSet and static pods stay; Job pods are short-lived
        if any(a - 600.0 <= at <= b + 600.0 for a, b in self.busy):
            return  # never churn a workload while it rolls out (keeps ground truth clear)
        t = at
        for old in [p for p in self.live if p.node == node and p.start < at]:
            t += self._u(1.0, 6.0)
            self.live.remove(old)
            if self.spec.kind == "StatefulSet":
                self.end_pod(old, t + self._u(1.0, 30.0))
                assert old.end is not None
                pod = self.new_pod(old.end + self._u(1.0, 5.0), self._node(node), name=old.name)
            else:
                pod = self.new_pod(t, self._node(node), owner=(old.owner_kind, old.owner_name))
                self.end_pod(old, t + self._u(1.0, 30.0))
            self.live.append(pod)

    def delete(self, at: float) -> None:
        """The workload is deleted: every pod goes within half a minute."""
        for pod in self.live:
            self.end_pod(pod, at + self._u(0.0, 30.0))
        self.live = []

    def jobs(self, rollouts: tuple[Rollout, ...]) -> None:
        """Run the CronJob schedule, or the bare Job once."""
        spec = self.spec
        lo, hi = spec.run_seconds
        if spec.kind == "Job":
            at = spec.created if spec.created is not None else self.sim_start - 3600.0
            self._job_pod(spec.name, at, self._u(lo, hi), None)
            return
        first = spec.created if spec.created is not None else self.sim_start - 3 * spec.period
        stop = min(spec.deleted or self.sim_end, self.sim_end)
        tick = -(-first // spec.period) * spec.period
        pending = sorted(rollouts, key=lambda r: r.at)
        for ro in pending:
            if ro.at < stop:
                self._record(ro.at, None, "rollout", self.template, ro.containers)
                self.template = ro.containers
        self.template = spec.containers
        while tick < stop:
            while pending and pending[0].at <= tick:
                self.template = pending.pop(0).containers
            job = f"{spec.name}-{int(tick // 60)}"
            # successfulJobsHistoryLimit 3: the pod is deleted when a later Job finishes.
            linger = 3 * spec.period + self._u(lo, hi)
            self._job_pod(job, tick, self._u(lo, hi), tick + linger)
            tick += spec.period

    def _job_pod(self, job: str, at: float, run: float, deleted: float | None) -> None:
        pod = self.new_pod(at + self._u(0.5, 3.0), self._node(), owner=("Job", job))
        for c in pod.containers:
            if not c.init:
                c.end = round(c.start + run, 3)
        if deleted is not None:
            pod.end = round(deleted, 3)

    # -- output --------------------------------------------------------------------------

    def freeze(self) -> list[PodRun]:
        """Pods as ground truth; anything at or past the end of the simulation is open."""
        kind, name = self.spec.kind, self.spec.name
        if kind == "StaticPod":
            kind, name = "Node", self.spec.node
        out = []
        for pod in self.pods:
            if pod.start >= self.sim_end:
                continue

            def clip(t: float | None) -> float | None:
                return None if t is None or t >= self.sim_end else t

            ctrs = tuple(
                ContainerRun(
                    name=c.name,
                    image=c.image,
                    image_id_digest=c.digest,
                    start=c.start,
                    end=clip(c.end),
                    init=c.init,
                    report_bare_id=c.bare,
                    restarts=tuple(r for r in c.restarts if r < self.sim_end),
                    profile=c.profile,
                    waits=self._waits(pod, c.waits + _crash_waits(c)),
                )
                for c in pod.containers
                # a pod deleted before its container started never ran that container
                if c.start < self.sim_end and (pod.end is None or c.start < pod.end)
            )
            waiting = tuple(
                WaitingContainer(name, image, self._waits(pod, waits))
                for name, image, waits in pod.waiting
            )
            out.append(
                PodRun(
                    cluster=self.spec.cluster,
                    namespace=self.spec.namespace,
                    workload_kind=kind,
                    workload=name,
                    pod=pod.name,
                    uid=pod.uid,
                    node=pod.node,
                    start=pod.start,
                    end=clip(pod.end),
                    containers=ctrs,
                    owner_kind=pod.owner_kind,
                    owner_name=pod.owner_name,
                    waiting=waiting,
                )
            )
        return out

    def _waits(self, pod: _Pod, waits: list[tuple[float, float, str]]) -> tuple[Waiting, ...]:
        """Waits within the pod's life and the simulation; open when still going at the end."""
        stop = min(self.sim_end, pod.end if pod.end is not None else self.sim_end)
        return tuple(
            Waiting(a, None if min(b, stop) >= self.sim_end else min(b, stop), reason)
            for a, b, reason in sorted(waits)
            if a < stop
        )


def _crash_waits(c: _Ctr) -> list[tuple[float, float, str]]:
    """CrashLoopBackOff from each crash (``CRASH_RUN`` after a start) to the next restart."""
    if not c.crash_waits:
        return []
    starts = [c.start, *c.restarts]
    ends = [*c.restarts, math.inf if c.end is None else c.end]
    return [
        (round(a + CRASH_RUN, 3), b, "CrashLoopBackOff")
        for a, b in zip(starts, ends, strict=True)
        if a + CRASH_RUN < b
    ]


def run_workload(
    spec: WorkloadSpec,
    cluster: ClusterSpec,
    drains: list[tuple[float, str]],
    *,
    seed: int,
    sim_start: float,
    sim_end: float,
) -> tuple[list[PodRun], list[ScriptedRollout]]:
    """Simulate one workload through its script and the cluster's node drains.

    Returns its pods and the rollouts that were applied (those before the end of the
    simulation and the workload's deletion).
    """
    w = _Workload(spec, cluster, seed, sim_start, sim_end)
    if spec.kind in ("CronJob", "Job"):
        w.jobs(spec.rollouts)
        return w.freeze(), w.done
    # (time, order at equal times, what, node): creation first, deletion last.
    events: list[tuple[float, int, str, object]] = []
    created = spec.created if spec.created is not None else sim_start
    events.append((created, 0, "create", None))
    events.extend((r.at, 1, "rollout", r) for r in spec.rollouts)
    events.extend((t, 2, "drain", node) for t, node in drains if created < t)
    if spec.deleted is not None:
        events.append((spec.deleted, 3, "delete", None))
    events.sort(key=lambda e: (e[0], e[1]))
    for at, _, what, arg in events:
        if at >= sim_end or (spec.deleted is not None and at > spec.deleted):
            continue
        if what == "create":
            w.create(at, before_start=spec.created is None)
        elif what == "delete":
            w.delete(at)
        elif isinstance(arg, Rollout):
            w.rollout(arg)
        elif isinstance(arg, str):
            w.drain(at, arg)
    return w.freeze(), w.done
