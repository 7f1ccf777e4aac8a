"""Ground-truth value types of the simulator: configuration, pods, containers, changes.

Times are float unix seconds (UTC). A ``ContainerRun``'s ``start``/``end`` is its *running*
interval; a ``PodRun``'s ``start``/``end`` is the life of the pod object (what
kube-state-metrics lists), which begins before its containers run and, for Job pods,
lasts after they completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagetrail.model import Span

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

    @property
    def end(self) -> float:
        """End of the simulated period (exclusive)."""
        return self.config.start + self.config.days * 86400.0

    def spans(self, *, include_init: bool = False) -> list[Span]:
        """Ground-truth spans (signal ``ksm``): one per pod container, clipped to the period."""
        from imagetrail.sim._images import display_version

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
