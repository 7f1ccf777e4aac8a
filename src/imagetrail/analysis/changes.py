"""Change detection: when did each workload container move from one version to another.

The definitions are written out in docs/analysis.md; the simulator computes its ground truth
from the same definitions independently, so any change here must be made in both places.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from imagetrail.analysis._common import (
    ContainerKey,
    Version,
    check_window,
    container_key,
    group_by_container,
)
from imagetrail.analysis.attempts import join_attempts
from imagetrail.analysis.kinds import classify
from imagetrail.analysis.silence import Silence, data_ends
from imagetrail.analysis.timeline import Segment, segments
from imagetrail.errors import InputError
from imagetrail.model import Change, ChangeKind, CutShort, Span, Wait

# Jobs start and finish by design: a run appearing or the last run ending is neither the
# workload being added nor removed (and bare Jobs, one workload per run, would flood the log).
_JOB_KINDS = frozenset({"Job", "CronJob"})


class _VersionIndex:
    """Per version of one key: spans by start, with a running max of their ends.

    "The last A span running at t" is then a bisect: among A spans with first_seen <= t the
    largest last_seen is the answer if it is >= t (spans that ended before t cannot raise it).
    """

    def __init__(self, spans: Sequence[Span]) -> None:
        by_version: dict[Version, list[Span]] = {}
        for span in spans:
            by_version.setdefault(span.version, []).append(span)
        self._starts: dict[Version, list[float]] = {}
        self._max_end: dict[Version, list[float]] = {}
        for version, group in by_version.items():
            group.sort(key=lambda s: s.first_seen)
            running = -math.inf
            ends: list[float] = []
            for span in group:
                running = max(running, span.last_seen)
                ends.append(running)
            self._starts[version] = [s.first_seen for s in group]
            self._max_end[version] = ends

    def last_end_running_at(self, version: Version, t: float) -> float | None:
        """Latest last_seen of the spans of ``version`` running at ``t``; None if none runs."""
        starts = self._starts.get(version)
        if not starts:
            return None
        i = bisect_right(starts, t)
        if i == 0:
            return None
        end = self._max_end[version][i - 1]
        return end if end >= t else None


def _key_changes(
    key: ContainerKey,
    spans: Sequence[Span],
    *,
    since: float,
    until: float,
    tolerance: float,
    removed_after: float,
    horizon: float,
) -> list[Change]:
    """``horizon``: where the key's cluster's data ends (``until`` unless it went silent)."""
    segs: list[Segment] = segments(spans, presorted=True)
    index = _VersionIndex(spans)
    cluster, namespace, kind, workload, container = key
    out: list[Change] = []

    def change(
        old: Version | None,
        new: Version | None,
        kind_: ChangeKind,
        started: float,
        fin: float | None,
        cut: tuple[CutShort, float] | None = None,
    ) -> Change:
        return Change(
            cluster=cluster,
            namespace=namespace,
            workload_kind=kind,
            workload=workload,
            container=container,
            from_image=old[0] if old else None,
            from_digest=old[1] if old else None,
            to_image=new[0] if new else None,
            to_digest=new[1] if new else None,
            kind=kind_,
            started=started,
            finished=fin,
            cut_short=cut[0] if cut else None,
            ended=cut[1] if cut else None,
        )

    first = segs[0]
    if first.start > since + tolerance and kind not in _JOB_KINDS:
        out.append(change(None, first.version, ChangeKind.ADDED, first.start, first.start))

    last_end = max(span.last_seen for span in spans)
    # Judged against the cluster's own end of data: a silent cluster's workloads are not gone.
    removed = last_end < horizon - removed_after and kind not in _JOB_KINDS
    # The old version must be gone before the next change, and removal is a change too.
    after_last = last_end if removed else math.inf
    seen: set[Version] = {first.version}
    for k in range(1, len(segs)):
        old, new = segs[k - 1].version, segs[k].version
        started = segs[k].start
        last_old = index.last_end_running_at(old, started)
        finished: float | None = None
        cut: tuple[CutShort, float] | None = None
        if last_old is None:
            finished = started  # recreate: nothing of the old version was running any more
        else:
            next_start = segs[k + 1].start if k + 1 < len(segs) else after_last
            if last_old >= next_start:
                # The next change came while the old version still ran: this rollout never
                # finished and never will; it was given up when the next one started.
                back = k + 1 < len(segs) and segs[k + 1].version == old
                cut = (CutShort.ABORTED if back else CutShort.SUPERSEDED, next_start)
            elif last_old < horizon - tolerance:
                finished = last_old
        kind_ = classify(old, new, was_current_before=new in seen)
        out.append(change(old, new, kind_, started, finished, cut))
        seen.add(new)

    if removed:
        out.append(change(segs[-1].version, None, ChangeKind.REMOVED, last_end, last_end))
    return [c for c in out if since <= c.started <= until]


def detect_changes(
    spans: Iterable[Span],
    *,
    since: float,
    until: float,
    tolerance: float = 60.0,
    removed_after: float = 3600.0,
    forget_after: float = 7 * 86400.0,
    ends: Mapping[str, float] | None = None,
    waits: Iterable[Wait] = (),
) -> list[Change]:
    """Every version change of every workload container that started in ``[since, until]``.

    ``tolerance`` (seconds) keeps containers already running when the history starts from
    looking "added", and rollouts still in progress near their cluster's end of data from
    looking finished. A workload counts as removed once all its containers have been gone
    for ``removed_after`` seconds before its *cluster's* end of data (``ends``, default: the
    newest sample of each cluster among ``spans``), so a cluster whose data stops is silent,
    not emptied. A cluster silent for ``forget_after`` before ``until`` gives one
    ``cluster-gone`` change instead. Jobs and CronJobs are never added or removed. A rollout
    overtaken by the next change of its container before it finished is cut short
    (``aborted`` back to where it came from, else ``superseded``). ``waits`` (periods pods
    were listed but not running) add failed and stuck rollouts and why (see
    :mod:`imagetrail.analysis.attempts`).
    Ordered by ``started``, then workload container.
    """
    check_window(since, until, what="change window")
    if min(tolerance, removed_after, forget_after) < 0:
        raise InputError("tolerance, removed_after and the silence limits must not be negative")
    groups = group_by_container(spans)
    waiting: dict[ContainerKey, list[Wait]] = defaultdict(list)
    for w in waits:
        waiting[container_key(w.span)].append(w)
    cluster_end = (
        dict(ends)
        if ends is not None
        else data_ends(
            itertools.chain(
                itertools.chain.from_iterable(groups.values()),
                (w.span for ws in waiting.values() for w in ws),
            )
        )
    )
    # One rule for detection and the answers (analysis.silence): every container is judged
    # against its cluster's own end of data, so a cluster that goes quiet changes nothing
    # (whether it is already called "silent" only matters to the answers' stale marks).
    silence = Silence(cluster_end, until, forget_after=forget_after)
    result: list[tuple[float, ContainerKey, int, Change]] = []
    for key in sorted(groups.keys() | waiting.keys()):
        group = groups.get(key, [])
        horizon = silence.end(key[0])
        found = (
            _key_changes(
                key,
                group,
                since=since,
                until=until,
                tolerance=tolerance,
                removed_after=removed_after,
                horizon=horizon,
            )
            if group
            else []
        )
        if key in waiting:
            found = join_attempts(
                key, found, group, waiting[key], horizon=horizon, tolerance=tolerance
            )
            found = [c for c in found if since <= c.started <= until]
        result.extend((c.started, key, i, c) for i, c in enumerate(found))
    for cluster, end in sorted(cluster_end.items()):
        if silence.gone(cluster) and since <= end <= until:
            gone = Change(cluster, "", "", "", "", None, None, None, None,
                          ChangeKind.CLUSTER_GONE, end, end)  # fmt: skip
            result.append((end, (cluster, "", "", "", ""), 0, gone))
    result.sort(key=lambda item: item[:3])
    return [item[3] for item in result]
