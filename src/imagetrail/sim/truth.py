"""Ground-truth changes, derived from the simulated pods alone.

The definitions (also in docs/simulator.md) are applied per workload container
(cluster, namespace, workload kind, workload, container name), init containers excluded,
with versions = (normalised image display, digest):

* A change A→B happens when a container with version B starts while the current version
  (that of the most recently started container) is A; ``started`` is that start.
* ``finished`` is when the last A container that was running at ``started`` ended, if that
  is before the next change and before the end of the simulation, else ``None``; with no A
  container running at ``started`` (recreate-style), ``finished = started``.
* kind: ``tag-repush`` (same registry/repo:tag, new digest), else ``rollback`` (B was current
  before and is not newer than A), else ``upgrade``/``downgrade`` by tag order within one
  repository, else ``other``; ``added``/``removed`` when the workload container appears after
  the start / is gone before the end for good (never for Job and CronJob runs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from imagetrail import imageref
from imagetrail.model import ChangeKind
from imagetrail.sim._images import display_version
from imagetrail.sim.types import ExpectedChange, PodRun

_JOB_KINDS = frozenset({"Job", "CronJob"})

Version = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class _Run:
    start: float
    end: float | None
    version: Version
    repo: str
    tag: str | None
    pod: str


def split_display(display: str) -> tuple[str, str | None]:
    """(registry/repository, tag or None) of a normalised display; itself if not a reference."""
    ref = imageref.classify(display).ref
    return (display, None) if ref is None else (ref.name, ref.tag)


def classify(a: _Run, b: _Run, was_current: bool) -> ChangeKind:
    """The kind of the change from ``a``'s version to ``b``'s (see the module docstring)."""
    if (a.repo, a.tag) == (b.repo, b.tag):
        return ChangeKind.TAG_REPUSH
    order = None
    if a.repo == b.repo and a.tag is not None and b.tag is not None:
        order = imageref.compare_tags(a.tag, b.tag)
    if was_current and order != -1:
        return ChangeKind.ROLLBACK
    if order == -1:
        return ChangeKind.UPGRADE
    if order == 1:
        return ChangeKind.DOWNGRADE
    return ChangeKind.OTHER


def derive_changes(
    pods: Iterable[PodRun], sim_start: float, sim_end: float
) -> tuple[ExpectedChange, ...]:
    """Every change the pods imply, sorted by (started, workload container)."""
    groups: dict[tuple[str, str, str, str, str], list[_Run]] = defaultdict(list)
    for pod in pods:
        for c in pod.containers:
            if c.init:
                continue
            version = display_version(c)
            repo, tag = split_display(version[0])
            key = (pod.cluster, pod.namespace, pod.workload_kind, pod.workload, c.name)
            groups[key].append(_Run(c.start, c.end, version, repo, tag, pod.pod))
    out: list[ExpectedChange] = []
    for key, runs in groups.items():
        out.extend(_changes_of(key, runs, sim_start, sim_end))
    out.sort(key=lambda c: (c.started, c.cluster, c.namespace, c.workload, c.container))
    return tuple(out)


def _changes_of(
    key: tuple[str, str, str, str, str], runs: list[_Run], sim_start: float, sim_end: float
) -> list[ExpectedChange]:
    cluster, namespace, kind, workload, container = key
    is_job = kind in _JOB_KINDS
    runs.sort(key=lambda r: (r.start, r.pod))
    # (from run, to run or None, started, kind)
    raw: list[tuple[_Run | None, _Run | None, float, ChangeKind]] = []
    current: _Run | None = None
    seen: set[Version] = set()
    for r in runs:
        if current is None:
            if r.start > sim_start and not is_job:
                raw.append((None, r, r.start, ChangeKind.ADDED))
        elif r.version != current.version:
            raw.append((current, r, r.start, classify(current, r, r.version in seen)))
        current = r
        seen.add(r.version)
    last_end = max((r.end for r in runs if r.end is not None), default=None)
    if (
        not is_job
        and current is not None
        and all(r.end is not None for r in runs)
        and last_end is not None
        and last_end < sim_end
    ):
        raw.append((current, None, last_end, ChangeKind.REMOVED))

    out = []
    for i, (a, b, started, ckind) in enumerate(raw):
        next_start = raw[i + 1][2] if i + 1 < len(raw) else None
        finished: float | None
        if a is None or b is None:
            finished = started
        else:
            running = [
                r
                for r in runs
                if r.version == a.version
                and r.start <= started
                and (r.end is None or r.end > started)
            ]
            if not running:
                finished = started
            elif any(r.end is None for r in running):
                finished = None
            else:
                finished = max(r.end for r in running if r.end is not None)
                if finished >= sim_end or (next_start is not None and finished >= next_start):
                    finished = None
        out.append(
            ExpectedChange(
                cluster=cluster,
                namespace=namespace,
                workload_kind=kind,
                workload=workload,
                container=container,
                from_image=a.version[0] if a else None,
                from_digest=a.version[1] if a else None,
                to_image=b.version[0] if b else None,
                to_digest=b.version[1] if b else None,
                kind=ckind.value,
                started=started,
                finished=finished,
            )
        )
    return out
