"""The "current version" of one workload container over time.

Definition (shared with the simulator's ground truth): the current version at time ``t`` is
the version of the span with the latest ``first_seen`` among spans with ``first_seen <= t``.
When several spans start at the same instant and one of them has the current version, the
current version stays (a tie is no change). When none of them has it, the smallest version
in :func:`~imagetrail.analysis._common.version_order` wins, so the answer does not depend on
the order the spans came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imagetrail.analysis._common import Version, span_order, version_order
from imagetrail.model import Span


@dataclass(frozen=True, slots=True)
class Segment:
    """A maximal run of time during which one version is current.

    ``spans`` are the spans of that version that started inside the segment; ``end`` is the
    start of the next segment (None for the last one).
    """

    start: float
    end: float | None
    image: str
    digest: str | None
    spans: tuple[Span, ...]

    @property
    def version(self) -> Version:
        """``(image, digest)`` of the segment."""
        return (self.image, self.digest)


def segments(spans: Sequence[Span], *, presorted: bool = False) -> list[Segment]:
    """Version segments of the spans of ONE workload container, oldest first.

    A span that starts in a tie with a span of the current version belongs to no segment:
    it never became current. ``presorted``: the spans are already in ``span_order``.
    """
    ordered = spans if presorted else sorted(spans, key=span_order)
    starts: list[float] = []
    versions: list[Version] = []
    members: list[list[Span]] = []
    i, n = 0, len(ordered)
    while i < n:
        head = ordered[i]
        t = head.first_seen
        j = i + 1
        while j < n and ordered[j].first_seen == t:
            j += 1
        if j == i + 1:  # the common case, no tie: spare the set
            version = head.version
            if not versions or versions[-1] != version:
                starts.append(t)
                versions.append(version)
                members.append([])
            members[-1].append(head)
        else:
            group = ordered[i:j]
            group_versions = {span.version for span in group}
            if not versions or versions[-1] not in group_versions:
                starts.append(t)
                versions.append(min(group_versions, key=version_order))
                members.append([])
            current = versions[-1]
            members[-1].extend(span for span in group if span.version == current)
        i = j
    return [
        Segment(
            start=starts[k],
            end=starts[k + 1] if k + 1 < len(starts) else None,
            image=versions[k][0],
            digest=versions[k][1],
            spans=tuple(members[k]),
        )
        for k in range(len(starts))
    ]


def current_version(spans: Sequence[Span], t: float) -> Version | None:
    """The current version of one workload container at ``t`` (None before its first span)."""
    result: Version | None = None
    for segment in segments(spans):
        if segment.start > t:
            break
        result = segment.version
    return result
