"""Domain types shared by sources, ledger, analysis and the interfaces.

Times are float unix seconds (UTC) everywhere inside; they become RFC 3339 only at the
edges (JSON, tables). Image strings in these types are already normalised display
references (see :mod:`imagetrail.imageref`), digests are ``sha256:<hex>`` or ``None``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from imagetrail.errors import InputError

Signal = Literal["ksm", "cadvisor"]


class ChangeKind(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    ROLLBACK = "rollback"
    TAG_REPUSH = "tag-repush"
    ADDED = "added"
    REMOVED = "removed"
    OTHER = "other"
    CLUSTER_GONE = "cluster-gone"  # a cluster silent for longer than cluster_silent_forget_after


class CutShort(StrEnum):
    """How a rollout that never finished ended (see docs/analysis.md)."""

    ABORTED = "aborted"  # the workload went back to the version the rollout started from
    SUPERSEDED = "superseded"  # another version, or the workload's removal, overtook it
    FAILED = "failed"  # the new version's pods never ran (or only crash-looped): given up


@dataclass(frozen=True, slots=True, order=True)
class Workload:
    """A controller-level owner of pods: Deployment, StatefulSet, DaemonSet, CronJob, Job, ...

    ``inferred`` is True when the owner was guessed from the pod name (cAdvisor signal
    without kube-state-metrics) rather than read from ``kube_pod_owner``.
    """

    cluster: str
    namespace: str
    kind: str
    name: str
    inferred: bool = field(default=False, compare=False)

    @property
    def id(self) -> str:
        """``cluster/namespace/Kind/name``, the form used in JSON lists."""
        return f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Span:
    """A maximal interval during which one pod's container ran one image.

    Identity (what a re-sync merges on) is everything but ``first_seen``/``last_seen``.
    """

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    container: str
    image: str
    digest: str | None
    first_seen: float
    last_seen: float
    signal: Signal = "ksm"
    workload_inferred: bool = False
    pod_uid: str = ""  # tells apart pods that reuse a name (StatefulSets); "" when unknown

    @property
    def workload_ref(self) -> Workload:
        return Workload(
            self.cluster, self.namespace, self.workload_kind, self.workload, self.workload_inferred
        )

    @property
    def version(self) -> tuple[str, str | None]:
        """What counts as "one version": the image reference and its digest."""
        return (self.image, self.digest)

    def key(self) -> tuple[str, str, str, str, str, str, str, str | None, str]:
        """Identity used to merge re-observed spans."""
        return (
            self.signal,
            self.cluster,
            self.namespace,
            self.pod,
            self.pod_uid,
            self.container,
            self.image,
            self.digest,
            self.workload,
        )

    def covers(self, t: float) -> bool:
        return self.first_seen <= t <= self.last_seen


@dataclass(frozen=True, slots=True)
class Wait:
    """A period during which one pod's container was listed with an image but not running,
    and why (a kube-state-metrics waiting reason: ``ImagePullBackOff``, ``ErrImagePull``,
    ``CreateContainerConfigError``, ``CrashLoopBackOff``, ``ContainerCreating``...).

    ``span`` says who and what (its ``digest`` is usually None: the image was not pulled) and
    from when to when; versions, heatmaps and counts never read waits, only attempts do.
    """

    span: Span
    reason: str

    def key(self) -> tuple[object, ...]:
        """Identity used to merge re-observed waits: the span's and the reason."""
        return (*self.span.key(), self.reason)


@dataclass(frozen=True, slots=True)
class Change:
    """A workload container's running image moved from one version to another."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    from_image: str | None
    from_digest: str | None
    to_image: str | None
    to_digest: str | None
    kind: ChangeKind
    started: float
    finished: float | None  # None: the old version was still running when it was last seen
    cut_short: CutShort | None = None  # set when the next change came before this one finished
    ended: float | None = None  # with cut_short: when the rollout was given up (the next start)
    # Failed and stuck rollouts (kube-state-metrics only; docs/analysis.md, "Attempts"):
    reasons: tuple[str, ...] = ()  # why the new version's pods did not run (ImagePullBackOff…)
    pods: int | None = None  # with reasons: pods that were to run the new version
    pods_ran: int | None = None  # with reasons: of those, pods that ran it (not crash-looping)
    waited: float | None = None  # seconds its pods waited before the first one ran

    @property
    def state(self) -> str:
        """``finished``, ``in-progress``, ``stuck`` (in progress, its new pods not running, with
        ``reasons``), ``aborted``, ``superseded`` or ``failed``."""
        if self.finished is not None:
            return "finished"
        if self.cut_short is not None:
            return self.cut_short.value
        return "stuck" if self.reasons and not self.pods_ran else "in-progress"

    @property
    def settled(self) -> float | None:
        """When the rollout stopped moving: finished, or given up; None while in progress."""
        return self.finished if self.finished is not None else self.ended

    def identity_hash(self, *, with_finished: bool = False) -> str:
        """SHA-256 (hex) of what identifies the change, stable across re-detection.

        Without ``finished`` (which moves while a rollout runs) it names the change from its
        start on (Grafana annotation tags); with it, one state of the change (recorded
        impact verdicts, which are final only for a finished rollout)."""
        parts = [
            self.cluster,
            self.namespace,
            self.workload_kind,
            self.workload,
            self.container,
            self.from_image or "",
            self.from_digest or "",
            self.to_image or "",
            self.to_digest or "",
            self.kind.value,
            repr(float(self.started)),
        ]
        if with_finished:
            parts.append("" if self.finished is None else repr(float(self.finished)))
            if self.cut_short is not None and self.ended is not None:
                parts += [self.cut_short.value, repr(float(self.ended))]
        return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class VersionCount:
    """One row of the version distribution at an instant."""

    image: str
    digest: str | None
    containers: int
    workloads: tuple[str, ...]  # Workload.id values, sorted
    stale: bool = False  # some containers are last known values of a silent cluster
    stale_containers: int = 0  # how many of ``containers`` those are


@dataclass(frozen=True, slots=True)
class Heatmap:
    """image x time bucket -> number of containers (the original panel's picture)."""

    times: tuple[float, ...]
    images: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[i][j]: image i at times[j]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One version segment of one container of a workload."""

    container: str
    image: str
    digest: str | None
    first_seen: float
    last_seen: float
    containers_max: int


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """A workload container with what it runs at the end of the window."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    images: tuple[str, ...]
    containers: int
    first_seen: float
    last_seen: float
    last_change: float | None
    inferred: bool
    stale: bool = False  # its cluster is silent: what it ran when the data stopped


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What one workload container ran inside an audit window."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    image: str
    digest: str | None
    first_seen: float  # clipped to the window
    last_seen: float  # clipped to the window
    containers_max: int


WORKLOAD_FORMS = (
    "NAME, KIND/NAME, NAMESPACE/NAME, NAMESPACE/KIND/NAME, CLUSTER/NAMESPACE/NAME "
    "or CLUSTER/NAMESPACE/KIND/NAME"
)


@dataclass(frozen=True, slots=True)
class WorkloadName:
    """One reading of a ``--workload`` value: the parts it names (``None``: any)."""

    name: str
    cluster: str | None = None
    namespace: str | None = None
    kind: str | None = None  # compared case-insensitively

    def matches(self, *, cluster: str, namespace: str, kind: str, name: str) -> bool:
        return (
            name == self.name
            and (self.cluster is None or cluster == self.cluster)
            and (self.namespace is None or namespace == self.namespace)
            and (self.kind is None or kind.lower() == self.kind.lower())
        )


def parse_workload(spec: str) -> tuple[WorkloadName, ...]:
    """Every reading of a ``--workload`` value (a workload matches when any reading does):
    the one grammar the ledger's SQL, the span index and live answers all use.
    :class:`InputError` when it has none of the forms of :data:`WORKLOAD_FORMS`.

    Two parts are ``namespace/name`` or ``kind/name``; three are ``cluster/namespace/name``
    or ``namespace/kind/name`` (the shapes the ambiguity hint and JSON ids offer).
    """
    parts = spec.split("/")
    if any(not p for p in parts) or len(parts) > 4:
        raise InputError(f"workload {spec!r} is not {WORKLOAD_FORMS}")
    *head, name = parts
    if len(head) == 0:
        return (WorkloadName(name),)
    if len(head) == 1:
        return (WorkloadName(name, namespace=head[0]), WorkloadName(name, kind=head[0]))
    if len(head) == 2:
        return (
            WorkloadName(name, cluster=head[0], namespace=head[1]),
            WorkloadName(name, namespace=head[0], kind=head[1]),
        )
    return (WorkloadName(name, cluster=head[0], namespace=head[1], kind=head[2]),)


def check_workload_spec(spec: str) -> list[str]:
    """The parts of a ``--workload`` value; :class:`InputError` when it has none of the forms."""
    parse_workload(spec)
    return spec.split("/")


def matches_workload(pattern: str, *, cluster: str, namespace: str, kind: str, name: str) -> bool:
    """Does a user's workload pattern name this workload? (any reading of
    :func:`parse_workload`; kinds compare case-insensitively)."""
    return any(
        r.matches(cluster=cluster, namespace=namespace, kind=kind, name=name)
        for r in parse_workload(pattern)
    )


Verdict = Literal["regression", "improvement", "no-change", "insufficient-data"]


@dataclass(frozen=True, slots=True)
class SignalResult:
    """One signal compared before and after a change (see docs/impact.md).

    ``before``/``after`` are the means of the block values (per second for counters);
    ``effect`` is Cliff's delta of after vs before (-1..1, positive = higher after);
    ``p_value`` the two-sided Mann-Whitney U p-value, Holm-adjusted across the change's
    signals. ``None`` where there was not enough data to say.
    """

    name: str
    unit: str
    before: float | None
    after: float | None
    p_value: float | None
    effect: float | None
    blocks_before: int
    blocks_after: int
    verdict: Verdict
    decides: bool = True  # False: shown as evidence, never makes the change a regression
    before_values: tuple[float, ...] = ()  # the block values compared (for charts)
    after_values: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class EventCount:
    """Pod containers of a change's workload container seen in one state during a window
    (see docs/impact.md, "Events"): ``waiting`` with a kube-state-metrics waiting reason
    (``ImagePullBackOff``, ``CrashLoopBackOff``…), or ``terminated`` (restarted) with a last
    terminated reason (``OOMKilled``, ``Error``…). ``None``: that window does not exist."""

    state: Literal["waiting", "terminated"]
    reason: str
    before: int | None
    after: int | None


@dataclass(frozen=True, slots=True)
class Impact:
    """The verdict on one change, with the evidence and the windows compared."""

    change: Change
    verdict: Verdict
    reason: str
    before: tuple[float, float]
    after: tuple[float, float] | None  # None: the rollout has not finished
    signals: tuple[SignalResult, ...]
    # Container states before and after; None when not read (a verdict recorded in the ledger).
    events: tuple[EventCount, ...] | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """One CI/CD deployment event. ``image`` is a normalised display reference (``name:tag``,
    or ``name@digest`` without a tag), ``digest`` the digest the pipeline gave, if any."""

    id: str
    namespace: str
    workload: str
    image: str
    digest: str | None
    deployed_at: float
    received_at: float
    cluster: str | None = None
    container: str | None = None
    commit: str | None = None
    commit_time: float | None = None
    pipeline_url: str | None = None

    def same_event(self, other: Deployment) -> bool:
        """Is ``other`` a retry of this event? Same id and the same what-and-where; times may
        differ, because a retry resolves a default or relative time (``now``, ``2h``) anew."""
        return _identity(self) == _identity(other)


def _identity(d: Deployment) -> tuple[object, ...]:
    return (
        d.id,
        d.namespace,
        d.workload,
        d.image,
        d.digest,
        d.cluster,
        d.container,
        d.commit,
        d.pipeline_url,
    )
