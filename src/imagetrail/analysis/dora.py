"""DORA figures from detected changes: deployment frequency, change failure rate, time to
restore, lead time for changes. Pure; definitions in plain words in docs/impact.md.

- A **deployment** is a rollout of one workload: its version changes (not ``added`` or
  ``removed``) grouped when they start within ``group_within`` of each other on different
  containers (a pod template changing two images rolls both out at once). A rollback is a
  deployment too.
- A deployment **failed** when it was undone, or when the impact analysis judged one of its
  changes a ``regression``. Undone means either of two views of the same event: one of its
  rollouts was *aborted* (cut short by the workload going back to the version it started
  from, see docs/analysis.md) or the workload's next deployment is a rollback. A failure is
  counted once per deployment, however many of these hold. A rollout *superseded* by another
  version is not a failure by itself. A rollout that **failed** (its new pods never ran, or
  only crash-looped, and it was given up: docs/analysis.md, "Attempts") is a failed
  deployment, and so is one **stuck** at the end of the data (an open failure).
- **Time to restore** a failed deployment: from its start until the next deployment's rollout
  settled (finished, or was itself cut short by a later version; for a rollback: the last pod
  of the failed version stopped running). Failures not restored by the end of the data, or
  whose next deployment was aborted back to the failed version, count as open. A failed
  rollout that no next deployment overtook (an attempt whose version never became current:
  the old version ran throughout) is restored when its failing pods went away, its ``ended``:
  only then does the workload run one version again; one the next deployment overtook (a
  rollback, a fixed version) is restored when that settled, as above.
- **Lead time**: from commit to the rollout finished, for deployments a CI/CD event with a
  commit time was matched to (an aborted or superseded rollout never finished: it has none).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from imagetrail.model import Change, ChangeKind, CutShort

GROUP_WITHIN = 600.0
_NOT_DEPLOYMENTS = (ChangeKind.ADDED, ChangeKind.REMOVED)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One rollout of one workload (one or more container changes)."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    changes: tuple[Change, ...]

    @property
    def started(self) -> float:
        return min(c.started for c in self.changes)

    @property
    def finished(self) -> float | None:
        ends = [c.finished for c in self.changes]
        return None if any(e is None for e in ends) else max(e for e in ends if e is not None)

    @property
    def settled(self) -> float | None:
        """When every rollout of it stopped moving (finished or cut short); None while one runs."""
        ends = [c.settled for c in self.changes]
        return None if any(e is None for e in ends) else max(e for e in ends if e is not None)

    @property
    def aborted(self) -> bool:
        """One of its rollouts was given up for the version it started from."""
        return any(c.cut_short == CutShort.ABORTED for c in self.changes)

    @property
    def failed_rollout(self) -> bool:
        """One of its rollouts failed (its new pods never ran) or is stuck."""
        return any(c.cut_short == CutShort.FAILED or c.state == "stuck" for c in self.changes)

    @property
    def stuck(self) -> bool:
        return any(c.state == "stuck" for c in self.changes)

    @property
    def is_rollback(self) -> bool:
        return any(c.kind == ChangeKind.ROLLBACK for c in self.changes)


@dataclass(frozen=True, slots=True)
class DoraFigures:
    """The four figures for one workload (``by="workload"``) or namespace."""

    cluster: str
    namespace: str
    workload_kind: str | None  # None when grouped by namespace
    workload: str | None
    days: float
    deployments: int
    deployments_per_day: float
    failures: int
    change_failure_rate: float | None  # None without deployments
    restore_seconds: tuple[float, ...]  # one per restored failure, in time order
    open_failures: int
    lead_seconds: tuple[float, ...]  # one per deployment with a known commit time

    @property
    def time_to_restore_median(self) -> float | None:
        return statistics.median(self.restore_seconds) if self.restore_seconds else None

    @property
    def lead_time_median(self) -> float | None:
        return statistics.median(self.lead_seconds) if self.lead_seconds else None


def deployments(changes: Sequence[Change], group_within: float = GROUP_WITHIN) -> list[Deployment]:
    """Version changes grouped into deployments, per workload, in time order."""
    by_workload: dict[tuple[str, str, str, str], list[Change]] = defaultdict(list)
    for c in changes:
        if c.kind not in _NOT_DEPLOYMENTS:
            by_workload[(c.cluster, c.namespace, c.workload_kind, c.workload)].append(c)
    out: list[Deployment] = []
    for key, found in by_workload.items():
        group: list[Change] = []
        for c in sorted(found, key=lambda c: (c.started, c.container)):
            if group and (
                c.started - group[0].started > group_within
                or any(g.container == c.container for g in group)
            ):
                out.append(Deployment(*key, tuple(group)))
                group = []
            group.append(c)
        if group:
            out.append(Deployment(*key, tuple(group)))
    return sorted(out, key=lambda d: (d.cluster, d.namespace, d.workload, d.started))


def dora(
    changes: Sequence[Change],
    *,
    start: float,
    end: float,
    by: str = "workload",
    regressions: Collection[Change] = (),
    lead_times: Mapping[Change, float] | None = None,
) -> list[DoraFigures]:
    """Figures for deployments starting in [start, end). ``changes`` should run past ``end``
    (to the end of the data) so that failures near the end can find their restore."""
    if by not in ("workload", "namespace"):
        raise ValueError(f"by must be workload or namespace, not {by!r}")
    regressed = set(regressions)
    leads = lead_times or {}
    per_workload: dict[tuple[str, str, str, str], list[Deployment]] = defaultdict(list)
    for d in deployments(changes):
        per_workload[(d.cluster, d.namespace, d.workload_kind, d.workload)].append(d)

    acc: dict[tuple[str, str, str | None, str | None], _Acc] = {}
    for key, deps in per_workload.items():
        scope = key if by == "workload" else (key[0], key[1], None, None)
        for i, d in enumerate(deps):
            if not start <= d.started < end:
                continue
            a = acc.setdefault(scope, _Acc())
            a.deployments += 1
            nxt = deps[i + 1] if i + 1 < len(deps) else None
            lead = [leads[c] for c in d.changes if c in leads]
            if lead:
                a.leads.append((d.started, max(lead)))
            failed = (
                d.aborted
                or (nxt is not None and nxt.is_rollback)
                or d.failed_rollout
                or any(c in regressed for c in d.changes)
            )
            if not failed:
                continue
            a.failures += 1
            restored: float | None
            if d.stuck:
                restored = None  # still failing at the end of the data
            elif (
                d.failed_rollout
                and d.settled is not None
                and (nxt is None or nxt.started > d.settled)
            ):
                # Given up without a next deployment overtaking it (its version never became
                # current): one version runs again once its failing pods went away.
                restored = d.settled
            else:
                # A next deployment aborted back to the failed version restored nothing.
                restored = nxt.settled if nxt is not None and not nxt.aborted else None
            if restored is None:
                a.open += 1
            else:
                a.restores.append((d.started, restored - d.started))
    days = (end - start) / 86400.0
    return [
        DoraFigures(
            cluster=scope[0],
            namespace=scope[1],
            workload_kind=scope[2],
            workload=scope[3],
            days=days,
            deployments=a.deployments,
            deployments_per_day=a.deployments / days if days > 0 else 0.0,
            failures=a.failures,
            change_failure_rate=a.failures / a.deployments if a.deployments else None,
            restore_seconds=tuple(s for _, s in sorted(a.restores)),
            open_failures=a.open,
            lead_seconds=tuple(s for _, s in sorted(a.leads)),
        )
        for scope, a in sorted(acc.items(), key=lambda kv: tuple(x or "" for x in kv[0]))
    ]


class _Acc:
    __slots__ = ("deployments", "failures", "leads", "open", "restores")

    def __init__(self) -> None:
        self.deployments = 0
        self.failures = 0
        self.open = 0
        self.restores: list[tuple[float, float]] = []
        self.leads: list[tuple[float, float]] = []
