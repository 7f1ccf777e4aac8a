"""Ground-truth value types of the simulator: configuration, pods, containers, changes; and
the image labels a simulated container reports.

Times are float unix seconds (UTC). A ``ContainerRun``'s ``start``/``end`` is its *running*
interval; a ``PodRun``'s ``start``/``end`` is the life of the pod object (what
kube-state-metrics lists), which begins before its containers run and, for Job pods,
lasts after they completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagetrail.imageref import resolve
from imagetrail.model import Span, Wait
from imagetrail.sim._images import config_id, qualify, repository

#: 2026-11-01T00:00:00Z: a fixed start so that every run of the simulator is identical.
DEFAULT_START = 1793491200.0


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. Equal configs give identical fleets."""

    seed: int = 7
    start: float = DEFAULT_START
    days: float = 14
    scrape_interval: float = 30.0
    clusters: tuple[str, ...] = ("prod-eu", "prod-us", "staging")
    scale: str = "demo"  # "demo": the hand-written fleet; "bench": generated, sized by containers
    containers: int = 0  # scale="bench": target number of concurrently running containers
    hostile: bool = False  # add a workload whose names and image carry markup and odd bytes


@dataclass(frozen=True, slots=True)
class AppProfile:
    """How one image version of a container behaves, for the ``impact`` signal.

    Every container of that version gets these levels plus small deterministic noise per
    scrape, and nothing else: two versions with equal profiles are indistinguishable in
    the metrics. ``restart_every`` (seconds, low..high): the container is OOM-killed and
    restarted in place at random intervals in that range.
    """

    cpu: float  # cores
    memory: float  # working set, bytes
    throttled: float  # fraction of CFS periods throttled
    rps: float  # HTTP requests per second, per pod
    error_ratio: float  # fraction of requests answered with a 500
    restart_every: tuple[float, float] | None = None


#: How long a crash-looping container runs before it dies again.
CRASH_RUN = 5.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """A period during which a container was listed by kube-state-metrics but not running,
    and why (its ``kube_pod_container_status_waiting_reason``)."""

    start: float
    end: float | None  # None: still waiting when the simulation ends
    reason: str  # ErrImagePull, ImagePullBackOff, CreateContainerConfigError, CrashLoopBackOff


@dataclass(frozen=True, slots=True)
class WaitingContainer:
    """A main container that never ran: listed with its pod-spec ``image`` and an empty
    image id for the pod's whole life, waiting for the ``waits`` reasons."""

    name: str
    image: str
    waits: tuple[Waiting, ...]


@dataclass(frozen=True, slots=True)
class ContainerRun:
    """One container of one pod: what it ran and while.

    ``image`` is the reference as written in the pod spec (may be short form);
    ``image_id_digest`` the repo digest that ran. ``restarts`` are the instants the
    container was restarted in place (crash loop): a new runtime container id each time.
    """

    name: str
    image: str
    image_id_digest: str
    start: float
    end: float | None
    init: bool = False
    report_bare_id: bool = False
    restarts: tuple[float, ...] = ()
    profile: AppProfile | None = None  # the version's behaviour; None: no app metrics
    # Listed but not running (a missing secret before ``start``, CrashLoopBackOff between
    # restarts), as kube-state-metrics reports it; empty for every container that just runs.
    waits: tuple[Waiting, ...] = ()


def reported_image(c: ContainerRun) -> str:
    """kube-state-metrics' and cAdvisor's ``image`` label for a container."""
    return config_id(c.image_id_digest) if c.report_bare_id else qualify(c.image)


def image_id(c: ContainerRun) -> str:
    """kube-state-metrics' ``image_id`` label: ``repo@sha256:...``."""
    return f"{repository(c.image)}@{c.image_id_digest}"


def display_version(c: ContainerRun) -> tuple[str, str | None]:
    """The normalised (display, digest) version of a container, as the ledger stores it."""
    return resolve(reported_image(c), image_id(c), c.image)


@dataclass(frozen=True, slots=True)
class PodRun:
    """One pod's life (ground truth). ``end`` None: still there when the simulation ends."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    uid: str
    node: str
    start: float
    end: float | None
    containers: tuple[ContainerRun, ...]
    owner_kind: str = ""  # kube_pod_owner: ReplicaSet, StatefulSet, DaemonSet, Job, Node
    owner_name: str = ""
    waiting: tuple[WaitingContainer, ...] = ()  # main containers that never ran


@dataclass(frozen=True, slots=True)
class ExpectedChange:
    """A change the analysis must find, derived from the simulator's own pods."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    from_image: str | None
    from_digest: str | None
    to_image: str | None
    to_digest: str | None
    kind: str  # an imagetrail.model.ChangeKind value
    started: float
    finished: float | None
    cut_short: str | None = None  # "aborted"/"superseded": the next change came first;
    # "failed": its new pods never ran (or only crash-looped) and were given up
    ended: float | None = None  # with cut_short: the next change's start (failed: last wait)
    # Attempts (docs/simulator.md): why the new version's pods waited, and how they fared.
    reasons: tuple[str, ...] = ()
    pods: int | None = None
    pods_ran: int | None = None
    waited: float | None = None

    @property
    def state(self) -> str:
        """As :attr:`imagetrail.model.Change.state`: finished, in-progress, stuck, aborted,
        superseded or failed."""
        if self.finished is not None:
            return "finished"
        if self.cut_short is not None:
            return self.cut_short
        return "stuck" if self.reasons and not self.pods_ran else "in-progress"


@dataclass(frozen=True, slots=True)
class ScriptedRollout:
    """One template change as scripted (ground truth for deployments, DORA and CI/CD).

    ``kind``: ``rollout`` (a routine one), ``bad`` (completes, then misbehaves),
    ``failed`` (its new pods never run, or only crash-loop; never completes), ``rollback``
    (``kubectl rollout undo``). ``finished``: when the last pod of the version it replaced
    stopped running; None when that is not within the simulation, for a failed rollout, and
    for (Cron)Jobs (the next run simply uses the new template). ``containers``: (name, from
    image, to image) of each container whose image changed, images as written in the pod
    spec. ``reason``: why its new pods waited (``ImagePullBackOff``,
    ``CreateContainerConfigError``, ``CrashLoopBackOff``), "" when they did not.
    """

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    at: float
    finished: float | None
    kind: str
    containers: tuple[tuple[str, str, str], ...]
    reason: str = ""

    @property
    def never_ran(self) -> bool:
        """A failed rollout whose new pods never ran at all (no crash loop)."""
        return self.kind == "failed" and self.reason not in ("", "CrashLoopBackOff")


@dataclass(frozen=True, slots=True)
class ExpectedImpact:
    """The verdict the impact analysis must give on one change (see docs/simulator.md).

    Images and ``started`` are those of the matching :class:`ExpectedChange`.
    """

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    from_image: str
    to_image: str
    started: float
    verdict: str  # an imagetrail.model.Verdict value


@dataclass(frozen=True, slots=True)
class DeployEvent:
    """What a CI/CD pipeline posts for one scripted rollout of one container."""

    cluster: str
    namespace: str
    workload: str
    container: str
    image: str  # as in the pod spec
    commit: str  # 40 hex digits
    commit_time: float
    deployed_at: float
    pipeline_url: str


@dataclass(frozen=True, slots=True)
class ExpectedDora:
    """DORA ground truth of one workload over a period (see :func:`expected_dora`)."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    deployments: int
    failures: int
    restore_seconds: tuple[float, ...]
    lead_seconds: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ScenarioNote:
    """A human description of one scripted event, for docs and tests."""

    kind: str  # rollout, failed-rollout, rollback, tag-repush, added, removed, drain, ...
    cluster: str
    namespace: str
    workload: str
    at: float
    text: str


@dataclass(frozen=True, slots=True)
class Fleet:
    """A simulated fleet: its pods (ground truth) and the changes they imply."""

    config: SimConfig
    pods: tuple[PodRun, ...]
    expected_changes: tuple[ExpectedChange, ...]
    notes: tuple[ScenarioNote, ...] = field(default=(), compare=False)
    rollouts: tuple[ScriptedRollout, ...] = ()
    expected_impacts: tuple[ExpectedImpact, ...] = ()
    deploy_events: tuple[DeployEvent, ...] = ()

    @property
    def end(self) -> float:
        """End of the simulated period (exclusive)."""
        return self.config.start + self.config.days * 86400.0

    def spans(self, *, include_init: bool = False) -> list[Span]:
        """Ground-truth spans (signal ``ksm``): one per pod container, clipped to the period."""
        out: list[Span] = []
        for pod in self.pods:
            for c in pod.containers:
                if c.init and not include_init:
                    continue
                first = max(c.start, self.config.start)
                last = self.end if c.end is None else min(c.end, self.end)
                if last < first:
                    continue
                image, digest = display_version(c)
                out.append(
                    Span(
                        cluster=pod.cluster,
                        namespace=pod.namespace,
                        workload_kind=pod.workload_kind,
                        workload=pod.workload,
                        pod=pod.pod,
                        container=c.name,
                        image=image,
                        digest=digest,
                        first_seen=first,
                        last_seen=last,
                        signal="ksm",
                        pod_uid=pod.uid,
                    )
                )
        return out

    def waits(self) -> list[Wait]:
        """Ground-truth waits: one per period a pod's main container was listed but not
        running, clipped to the period; image and digest as the ingest path reads them
        (:func:`imagetrail.imageref.resolve` of kube-state-metrics' labels: no digest until
        the container first ran)."""
        out: list[Wait] = []
        for pod in self.pods:
            listed: list[tuple[str, Waiting, str, str | None]] = []
            for c in pod.containers:
                if c.init:
                    continue
                image, digest = display_version(c)
                for w in c.waits:
                    listed.append((c.name, w, image, digest if w.start >= c.start else None))
            for wc in pod.waiting:
                image, digest = resolve(wc.image, "", wc.image)
                listed.extend((wc.name, w, image, digest) for w in wc.waits)
            for name, w, image, digest in listed:
                first = max(w.start, self.config.start)
                last = self.end if w.end is None else min(w.end, self.end)
                if last < first:
                    continue
                span = Span(
                    cluster=pod.cluster,
                    namespace=pod.namespace,
                    workload_kind=pod.workload_kind,
                    workload=pod.workload,
                    pod=pod.pod,
                    container=name,
                    image=image,
                    digest=digest,
                    first_seen=first,
                    last_seen=last,
                    signal="ksm",
                    pod_uid=pod.uid,
                )
                out.append(Wait(span, w.reason))
        return out
