"""Do two methods give the same answer? A benchmark comparing different answers is worthless.

Spans agree when they have the same identity (:meth:`Span.key` plus the workload kind) and
both edges within a tolerance (one scrape interval). Both sides are checked against the
simulator's ground truth as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from imagetrail.model import Span
from imagetrail.sim import Fleet

SpanKey = tuple[object, ...]


def span_key(span: Span) -> SpanKey:
    """Identity of a span for comparisons: what the ledger merges on, and the workload kind."""
    return (*span.key(), span.workload_kind)


def merged(spans: Iterable[Span]) -> dict[SpanKey, Span]:
    """Spans by key; pieces of one span are joined (earliest first, latest last)."""
    out: dict[SpanKey, Span] = {}
    for span in spans:
        key = span_key(span)
        old = out.get(key)
        out[key] = (
            span
            if old is None
            else replace(
                old,
                first_seen=min(old.first_seen, span.first_seen),
                last_seen=max(old.last_seen, span.last_seen),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Agreement:
    """How two sets of spans compare."""

    left: int
    right: int
    common: int
    only_left: int
    only_right: int
    max_first_diff: float  # seconds, over common keys
    max_last_diff: float
    edges_beyond_tolerance: int
    tolerance: float
    examples: tuple[str, ...]  # a few differences, for the report

    @property
    def same(self) -> bool:
        """Same keys, and every edge within the tolerance."""
        return self.only_left == 0 and self.only_right == 0 and self.edges_beyond_tolerance == 0


def agree(left: Iterable[Span], right: Iterable[Span], *, tolerance: float) -> Agreement:
    """Compare two methods' spans (see the module docstring)."""
    a, b = merged(left), merged(right)
    common = a.keys() & b.keys()
    examples: list[str] = []
    for name, only in (("only left", a.keys() - b.keys()), ("only right", b.keys() - a.keys())):
        examples += [f"{name}: {k}" for k in sorted(only, key=repr)[:3]]
    first_diff = last_diff = 0.0
    beyond = 0
    for key in sorted(common, key=repr):
        df = abs(a[key].first_seen - b[key].first_seen)
        dl = abs(a[key].last_seen - b[key].last_seen)
        first_diff, last_diff = max(first_diff, df), max(last_diff, dl)
        if df > tolerance or dl > tolerance:
            beyond += 1
            if len(examples) < 9:
                examples.append(f"edges differ by {df:.0f}s/{dl:.0f}s: {key}")
    return Agreement(
        left=len(a),
        right=len(b),
        common=len(common),
        only_left=len(a.keys() - b.keys()),
        only_right=len(b.keys() - a.keys()),
        max_first_diff=first_diff,
        max_last_diff=last_diff,
        edges_beyond_tolerance=beyond,
        tolerance=tolerance,
        examples=tuple(examples),
    )


@dataclass(frozen=True, slots=True)
class TruthCheck:
    """How many of the simulator's checkable spans a method found, edges within tolerance."""

    checkable: int
    found: int
    exact: int  # found, with the right image, workload and both edges within tolerance

    @property
    def ok(self) -> bool:
        return self.checkable > 0 and self.exact == self.checkable


def against_truth(
    spans: Iterable[Span], fleet: Fleet, start: float, end: float, *, tolerance: float
) -> TruthCheck:
    """Compare with ground truth: spans inside the window, at least one scrape long.

    A container cut by the window's borders has no true edge there, and one shorter than a
    scrape may fall between two scrapes. A crash-looping container may run only seconds at a
    time: its first restart is then the earliest evidence that it started.
    """
    found = {(s.cluster, s.namespace, s.pod, s.pod_uid, s.container): s for s in spans}
    first_restart = {
        (pod.uid, c.name): c.restarts[0] for pod in fleet.pods for c in pod.containers if c.restarts
    }
    checkable = hits = exact = 0
    for t in fleet.spans():
        if not (
            t.first_seen >= start + tolerance
            and t.last_seen <= end - tolerance
            and t.last_seen - t.first_seen >= tolerance
        ):
            continue
        checkable += 1
        got = found.get((t.cluster, t.namespace, t.pod, t.pod_uid, t.container))
        if got is None:
            continue
        hits += 1
        restart = first_restart.get((t.pod_uid, t.container))
        slack = tolerance + (restart - t.first_seen if restart is not None else 0.0)
        if (
            (got.image, got.digest, got.workload_kind, got.workload)
            == (t.image, t.digest, t.workload_kind, t.workload)
            and abs(got.first_seen - t.first_seen) <= slack
            and abs(got.last_seen - t.last_seen) <= tolerance
        ):
            exact += 1
    return TruthCheck(checkable, hits, exact)
