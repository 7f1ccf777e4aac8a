"""Failed and stuck rollouts: the versions a workload's pods were to run but did not.

Versions, heatmaps and counts are running-only; a rollout whose new pods never come up
(``ImagePullBackOff``, ``CreateContainerConfigError``, ``CrashLoopBackOff``…) leaves no span
of its own. kube-state-metrics lists such a container with its image and a waiting reason:
those periods are :class:`~imagetrail.model.Wait` values. This module joins them to the
changes found from spans (docs/analysis.md, "Attempts"). Pure.

- An **attempt** is a stretch of waits of one image in one workload container, pieces less
  than ``merge_gap`` apart, that is not the current version's own (a restart of what already
  runs). Waits that only say the container is being created and last less than
  ``BENIGN_WAIT`` are every rollout's normal start, not an attempt.
- An attempt whose image became the current version (a change to it started during the
  attempt or within ``merge_gap`` after) is that change: it gains the ``reasons``, the pod
  counts and ``waited`` (from the attempt's start to the change's start). If that change was
  cut short and its new pods never ran (only waited or crash-looped), it **failed**.
- An attempt whose image never became current is a change of its own, from the version
  current at its start: **failed** once its waits end before the cluster's end of data (the
  pods went away or the workload went back; ``ended`` is its last wait), **stuck** while they
  go on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from imagetrail.analysis._common import ContainerKey, Version
from imagetrail.analysis.kinds import classify
from imagetrail.analysis.timeline import Segment, segments
from imagetrail.model import Change, ChangeKind, CutShort, Span, Wait

#: Reasons every new container goes through before it runs.
BENIGN = frozenset({"ContainerCreating", "PodInitializing"})
#: How long a benign wait may last before it counts as an attempt that is stuck.
BENIGN_WAIT = 300.0
#: Reasons of a container that runs and dies over and over: it ran, but not really.
CRASHING = frozenset({"CrashLoopBackOff"})
_JOB_KINDS = frozenset({"Job", "CronJob"})


@dataclass(slots=True)
class _Attempt:
    image: str
    start: float
    end: float
    reasons: dict[str, None] = field(default_factory=dict)  # in order of first appearance
    pods: set[tuple[str, str]] = field(default_factory=set)
    crashing: set[tuple[str, str]] = field(default_factory=set)

    def counts(self) -> bool:
        return bool(set(self.reasons) - BENIGN) or self.end - self.start >= BENIGN_WAIT

    def shown(self) -> tuple[str, ...]:
        """Why the version did not run: the benign reasons only when they are all there
        was (a start stuck for ``BENIGN_WAIT``), not beside the reason that kept it."""
        return tuple(r for r in self.reasons if r not in BENIGN) or tuple(self.reasons)


def _attempts(waits: Iterable[Wait], merge_gap: float) -> list[_Attempt]:
    by_image: dict[str, list[Wait]] = defaultdict(list)
    for w in waits:
        by_image[w.span.image].append(w)
    out: list[_Attempt] = []
    for image in sorted(by_image):
        ordered = sorted(by_image[image], key=lambda w: (w.span.first_seen, w.span.last_seen))
        current: _Attempt | None = None
        for w in ordered:
            s = w.span
            if current is None or s.first_seen > current.end + merge_gap:
                current = _Attempt(image, s.first_seen, s.last_seen)
                out.append(current)
            current.end = max(current.end, s.last_seen)
            current.reasons.setdefault(w.reason)
            current.pods.add((s.pod, s.pod_uid))
            if w.reason in CRASHING:
                current.crashing.add((s.pod, s.pod_uid))
    return [a for a in out if a.counts()]


def join_attempts(
    key: ContainerKey,
    changes: Sequence[Change],
    spans: Sequence[Span],
    waits: Iterable[Wait],
    *,
    horizon: float,
    tolerance: float = 60.0,
    merge_gap: float = 600.0,
) -> list[Change]:
    """One workload container's ``changes`` (found from its ``spans``) with the attempts of
    its ``waits`` joined in, ordered by start. ``horizon``: its cluster's end of data, until
    which a wait that is still there means the attempt goes on (stuck)."""
    segs = segments(spans) if spans else []
    result = list(changes)
    for attempt in _attempts(waits, merge_gap):
        index = next(
            (
                i
                for i, c in enumerate(result)
                if c.to_image == attempt.image
                and attempt.start - tolerance <= c.started <= attempt.end + merge_gap
            ),
            None,
        )
        current = _current(segs, attempt.start)
        if index is not None:
            result[index] = _joined(result[index], attempt, spans, tolerance)
        elif current is not None and current[0] == attempt.image:
            continue  # the running version's own pods restarting or being added
        elif key[2] not in _JOB_KINDS or current is not None:
            result.append(_failed(key, attempt, current, segs, horizon, tolerance))
    return sorted(result, key=lambda c: c.started)


def _current(segs: Sequence[Segment], t: float) -> Version | None:
    """The version current at ``t`` (that of the latest segment started by then)."""
    found: Version | None = None
    for seg in segs:
        if seg.start <= t:
            found = seg.version
    return found


def _joined(change: Change, attempt: _Attempt, spans: Sequence[Span], tolerance: float) -> Change:
    """The change to the attempt's version, with how its pods fared."""
    # A pod of the new version may first be scraped a little after the last old one went.
    until = change.settled + tolerance if change.settled is not None else math.inf
    ran = {
        (s.pod, s.pod_uid)
        for s in spans
        if s.image == attempt.image and change.started <= s.first_seen <= until
    }
    pods = attempt.pods | ran
    healthy = ran - attempt.crashing
    cut = change.cut_short
    if cut is not None and not healthy:
        cut = CutShort.FAILED
    return replace(
        change,
        cut_short=cut,
        reasons=attempt.shown(),
        pods=len(pods),
        pods_ran=len(healthy),
        # Pulling the image takes a scrape or two in every rollout: not worth saying.
        waited=round(waited, 3) if (waited := change.started - attempt.start) > tolerance else None,
    )


def _failed(
    key: ContainerKey,
    attempt: _Attempt,
    current: Version | None,
    segs: Sequence[Segment],
    horizon: float,
    tolerance: float,
) -> Change:
    """A change for an attempt whose version never became current."""
    new: Version = (attempt.image, None)
    if current is None:
        kind = ChangeKind.ADDED
    else:
        seen = {seg.version[0] for seg in segs if seg.start <= attempt.start}
        kind = classify(current, new, was_current_before=attempt.image in seen)
    given_up = attempt.end < horizon - tolerance
    cluster, namespace, kind_name, workload, container = key
    return Change(
        cluster=cluster,
        namespace=namespace,
        workload_kind=kind_name,
        workload=workload,
        container=container,
        from_image=current[0] if current else None,
        from_digest=current[1] if current else None,
        to_image=attempt.image,
        to_digest=None,
        kind=kind,
        started=attempt.start,
        finished=None,
        cut_short=CutShort.FAILED if given_up else None,
        ended=attempt.end if given_up else None,
        reasons=attempt.shown(),
        pods=len(attempt.pods),
        pods_ran=0,
    )
