"""What each workload container runs at one instant, with its change record: the exporter's data.

Pure: spans and changes in, one :class:`ContainerState` per workload container running at
``at`` out. Workload containers not running at ``at`` are left out, so the metrics made from
this vanish with their workload. :func:`failing_rollouts` reads changes only: a workload whose
first rollout is stuck runs nothing, and its failing rollout must still show.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imagetrail.analysis._common import ContainerKey, container_key, group_by_container
from imagetrail.analysis.timeline import segments
from imagetrail.imageref import classify
from imagetrail.model import Change, Span

# States of a newest change that leave its rollout going on: stuck is a rollout whose new pods
# do not run yet, neither finished nor given up (docs/metrics.md, rollout_in_progress).
_NOT_OVER = frozenset({"in-progress", "stuck"})


@dataclass(frozen=True, slots=True)
class RunningVersion:
    """One version running in a workload container at the instant."""

    image: str
    digest: str | None
    tag: str | None  # None when the reference has no tag (digest-only) or is no reference
    first_seen: float  # start of its current run in this workload container
    tag_digests: int  # distinct digests this image reference has had in the container


@dataclass(frozen=True, slots=True)
class ContainerState:
    """A workload container running at the instant."""

    key: ContainerKey  # (cluster, namespace, workload_kind, workload, container)
    versions: tuple[RunningVersion, ...]  # sorted by image, digest
    containers: int
    rollout_in_progress: bool  # the newest change is in progress or stuck: not over
    changes: tuple[tuple[str, int], ...]  # (kind, count), kinds sorted
    last_change: tuple[tuple[str, float], ...]  # (kind, newest started), kinds sorted
    recent_changes: int  # changes started within (at - window, at]


def current_state(
    spans: Sequence[Span], changes: Iterable[Change], *, at: float, window: float
) -> list[ContainerState]:
    """Per workload container running at ``at``: versions, ages, and its changes."""
    running: dict[ContainerKey, list[Span]] = defaultdict(list)
    for span in spans:
        if span.covers(at):
            running[container_key(span)].append(span)
    history = group_by_container(s for s in spans if container_key(s) in running)
    by_key: dict[ContainerKey, list[Change]] = defaultdict(list)
    for c in changes:
        by_key[(c.cluster, c.namespace, c.workload_kind, c.workload, c.container)].append(c)
    out = []
    for key in sorted(running):
        now = running[key]
        segs = segments(history[key], presorted=True)
        versions = []
        for image, digest in sorted({s.version for s in now}, key=_version_key):
            runs = [seg for seg in segs if seg.version == (image, digest)]
            # A version that never became the current one (a canary next to it) has no run
            # of its own: its running containers say since when.
            members = max(runs, key=lambda g: g.start).spans if runs else now
            versions.append(
                RunningVersion(
                    image=image,
                    digest=digest,
                    tag=_tag(image),
                    first_seen=min(s.first_seen for s in members if s.version == (image, digest)),
                    tag_digests=len({s.digest for s in history[key] if s.image == image} - {None}),
                )
            )
        mine = sorted(by_key.get(key, ()), key=lambda c: c.started)
        counts = Counter(c.kind.value for c in mine)
        newest: dict[str, float] = {}
        for change in mine:
            newest[change.kind.value] = change.started
        out.append(
            ContainerState(
                key=key,
                versions=tuple(versions),
                containers=len(now),
                rollout_in_progress=bool(mine) and mine[-1].state in _NOT_OVER,
                changes=tuple(sorted(counts.items())),
                last_change=tuple(sorted(newest.items())),
                recent_changes=sum(1 for c in mine if at - window < c.started <= at),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class FailingRollout:
    """A workload container whose newest change is stuck: its new pods are not running."""

    key: ContainerKey  # (cluster, namespace, workload_kind, workload, container)
    reasons: tuple[str, ...]  # why (ImagePullBackOff …), in order of first appearance
    started: float
    to_image: str | None


def failing_rollouts(changes: Iterable[Change], *, at: float) -> list[FailingRollout]:
    """Workload containers whose newest change started by ``at`` is ``stuck`` (running or not:
    a brand-new workload whose first rollout is stuck runs nothing), sorted by key. A rollout
    that failed (given up) or finished is over and not listed."""
    newest: dict[ContainerKey, Change] = {}
    for c in changes:
        if c.started > at:
            continue
        key = (c.cluster, c.namespace, c.workload_kind, c.workload, c.container)
        seen = newest.get(key)
        if seen is None or c.started >= seen.started:
            newest[key] = c
    return [
        FailingRollout(key, c.reasons, c.started, c.to_image)
        for key, c in sorted(newest.items())
        if c.state == "stuck" and c.reasons
    ]


def _version_key(version: tuple[str, str | None]) -> tuple[str, str]:
    return (version[0], version[1] or "")


def _tag(image: str) -> str | None:
    ref = classify(image).ref
    return None if ref is None else ref.tag
