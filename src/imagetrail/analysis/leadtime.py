"""Deployment events matched to detected changes, and lead time. Pure functions, no I/O.

The rule (docs/cicd.md): an event matches a detected change of the same workload (namespace
and name; cluster and container too when the event names them) whose new version is the
event's image — the same digest when both sides know one, else the same repository and tag —
and which started within ``window`` seconds of the event's ``deployed_at``, before or after.
The nearest such change wins; an event matches at most one change.

Lead time is the time from the commit to the change being done: the change's ``finished``
(``started`` while the rollout runs) minus the event's ``commit_time``. A rollout cut short
(aborted or superseded) was never done, so its event has no lead time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imagetrail.imageref import ImageRef, classify
from imagetrail.model import Change, Deployment


@dataclass(frozen=True, slots=True)
class DeploymentMatch:
    """A deployment event, the change it matched (or ``None``) and its lead time in seconds
    (``None`` without a match or a commit time, when the commit is newer than the change, or
    when the matched rollout was cut short)."""

    deployment: Deployment
    change: Change | None
    lead_time: float | None


def _ref(image: str | None) -> ImageRef | None:
    return None if image is None else classify(image).ref


def same_version(image: str, digest: str | None, change: Change) -> bool:
    """Is the change's new version the deployed image?

    Both references are normalised; repository names must be equal, then digests decide when
    both are known, else tags (an event without a tag matches only by digest).
    """
    mine, theirs = _ref(image), _ref(change.to_image)
    if mine is None or theirs is None or mine.name != theirs.name:
        return False
    want = digest or mine.digest
    have = change.to_digest or theirs.digest
    if want is not None and have is not None:
        return want == have
    return mine.tag is not None and mine.tag == theirs.tag


def same_workload(deployment: Deployment, change: Change) -> bool:
    """Same namespace and name; same cluster and container where the event names them."""
    return (
        change.namespace == deployment.namespace
        and change.workload == deployment.workload
        and (deployment.cluster is None or change.cluster == deployment.cluster)
        and (deployment.container is None or change.container == deployment.container)
    )


def match_change(deployment: Deployment, changes: Iterable[Change], window: float) -> Change | None:
    """The change ``deployment`` matches (see the module docstring), or ``None``.

    Ties on distance go to the earlier change, then to the smallest by every other field, so
    the answer does not depend on the order of ``changes``.
    """
    best: tuple[object, ...] | None = None
    found: Change | None = None
    for change in changes:
        distance = abs(change.started - deployment.deployed_at)
        if distance > window or not same_workload(deployment, change):
            continue
        if not same_version(deployment.image, deployment.digest, change):
            continue
        key = (distance, change.started, *_fields(change))
        if best is None or key < best:
            best, found = key, change
    return found


def _fields(c: Change) -> tuple[str, ...]:
    return (
        c.cluster,
        c.container,
        c.workload_kind,
        c.to_image or "",
        c.to_digest or "",
        c.from_image or "",
        c.from_digest or "",
        c.kind.value,
        "" if c.finished is None else repr(c.finished),
        "" if c.cut_short is None else c.cut_short.value,
        "" if c.ended is None else repr(c.ended),
    )


def lead_time(deployment: Deployment, change: Change | None) -> float | None:
    """Seconds from ``commit_time`` to the change being done (finished, else started while
    it rolls out).

    ``None`` without a change or a commit time; when the rollout was cut short (aborted or
    superseded: the commit never reached a finished rollout, and the time until it was given
    up is no lead time); and when the commit is newer than the change: such an event's times
    are wrong, and a negative lead time would skew every average.
    """
    if change is None or deployment.commit_time is None or change.cut_short is not None:
        return None
    done = change.finished if change.finished is not None else change.started
    seconds = done - deployment.commit_time
    return seconds if seconds >= 0 else None


def match_deployments(
    deployments: Sequence[Deployment], changes: Sequence[Change], window: float
) -> list[DeploymentMatch]:
    """Every event with its matched change and lead time, oldest event first."""
    by_workload: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        by_workload.setdefault((change.namespace, change.workload), []).append(change)
    out = []
    for d in sorted(deployments, key=lambda d: (d.deployed_at, d.id)):
        found = match_change(d, by_workload.get((d.namespace, d.workload), ()), window)
        out.append(DeploymentMatch(d, found, lead_time(d, found)))
    return out


__all__ = [
    "DeploymentMatch",
    "lead_time",
    "match_change",
    "match_deployments",
    "same_version",
    "same_workload",
]
