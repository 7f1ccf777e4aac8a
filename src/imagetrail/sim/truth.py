"""Ground-truth changes, derived from the simulated pods alone.

The definitions (also in docs/simulator.md) are applied per workload container
(cluster, namespace, workload kind, workload, container name), init containers excluded,
with versions = (normalised image display, digest):

* A change A→B happens when a container with version B starts while the current version
  (that of the most recently started container) is A; ``started`` is that start.
* ``finished`` is when the last A container that was running at ``started`` ended, if that
  is before the next change and before the end of the simulation, else ``None``; with no A
  container running at ``started`` (recreate-style), ``finished = started``.
* A change whose A containers (those running at ``started``) still ran when the next change
  of the container started is *cut short*: ``aborted`` when that next change goes back to A,
  else ``superseded`` (a third version, or removal); ``ended`` is that next start.
* kind: ``tag-repush`` (same registry/repo:tag, new digest), else ``rollback`` (B was current
  before and is not newer than A), else ``upgrade``/``downgrade`` by tag order within one
  repository, else ``other``; ``added``/``removed`` when the workload container appears after
  the start / is gone before the end for good (never for Job and CronJob runs).
* Attempts (the pods' waits, as imagetrail's docs/analysis.md defines them): waits of one
  image less than ``MERGE_GAP`` apart are one attempt, unless that image is the current
  version's own. A change to the attempt's image starting from ``TOLERANCE`` before it to
  ``MERGE_GAP`` after it is the attempt's change: it gains the ``reasons``, ``pods`` (waiting
  or running the new image), ``pods_ran`` (of those, ran it without crash-looping) and
  ``waited`` (attempt start to change start, if more than ``TOLERANCE``); cut short with no
  such pod, it ``failed``. Benign reasons (``ContainerCreating``…) are listed only when they
  are all there was. Any other attempt is a change of its own from the version current at its
  start, ``to_digest`` None, ``started`` its first wait: ``failed`` with ``ended`` its last
  wait, or, still waiting at the end, stuck (``finished`` and ``ended`` None).

Expected impacts, CI/CD events and DORA figures are derived from the *script* instead:
the rollouts as applied (:class:`ScriptedRollout`) and the per-version profiles of the
app-metric containers (see docs/simulator.md for the definitions).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from imagetrail import imageref
from imagetrail.model import ChangeKind
from imagetrail.sim.types import (
    AppProfile,
    DeployEvent,
    ExpectedChange,
    ExpectedDora,
    ExpectedImpact,
    Fleet,
    PodRun,
    ScriptedRollout,
    Waiting,
    display_version,
)

_JOB_KINDS = frozenset({"Job", "CronJob"})
#: Attempt rules (imagetrail's analysis defaults): waits of one image this close are one
#: attempt; a change this long after the attempt's end (or TOLERANCE before its start) is
#: its change; waits only for these reasons and shorter than BENIGN_WAIT are no attempt.
MERGE_GAP = 600.0
TOLERANCE = 60.0
BENIGN = frozenset({"ContainerCreating", "PodInitializing"})
BENIGN_WAIT = 300.0
CRASHING = "CrashLoopBackOff"

Version = tuple[str, str | None]
Key = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class _Run:
    start: float
    end: float | None
    version: Version
    repo: str
    tag: str | None
    pod: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class _Wait:
    start: float
    end: float
    image: str
    reason: str
    pod: tuple[str, str]  # name, uid


@dataclass(slots=True)
class _Attempt:
    image: str
    start: float
    end: float
    reasons: dict[str, None]  # in order of first appearance
    pods: set[tuple[str, str]]
    crashing: set[tuple[str, str]]

    def shown(self) -> tuple[str, ...]:
        """The reasons, the benign ones only when they are all there was."""
        return tuple(r for r in self.reasons if r not in BENIGN) or tuple(self.reasons)


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
    groups: dict[Key, list[_Run]] = defaultdict(list)
    waits: dict[Key, list[_Wait]] = defaultdict(list)

    def waited(key: Key, pod: PodRun, image: str, periods: Iterable[Waiting]) -> None:
        for w in periods:
            lo, hi = max(w.start, sim_start), sim_end if w.end is None else min(w.end, sim_end)
            if lo <= hi:
                waits[key].append(_Wait(lo, hi, image, w.reason, (pod.pod, pod.uid)))

    for pod in pods:
        for c in pod.containers:
            if c.init:
                continue
            version = display_version(c)
            repo, tag = split_display(version[0])
            key = (pod.cluster, pod.namespace, pod.workload_kind, pod.workload, c.name)
            groups[key].append(_Run(c.start, c.end, version, repo, tag, pod.pod, pod.uid))
            waited(key, pod, version[0], c.waits)
        for wc in pod.waiting:
            key = (pod.cluster, pod.namespace, pod.workload_kind, pod.workload, wc.name)
            waited(key, pod, imageref.resolve(wc.image, "", wc.image)[0], wc.waits)
    out: list[ExpectedChange] = []
    for key in {**groups, **waits}:
        runs = groups.get(key, [])
        changes = _changes_of(key, runs, sim_start, sim_end) if runs else []
        out.extend(_with_attempts(key, changes, runs, waits.get(key, []), sim_end))
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
        cut: str | None = None
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
            if next_start is not None and any(
                r.end is None or r.end >= next_start for r in running
            ):
                after = raw[i + 1][1]
                cut = (
                    "aborted" if after is not None and after.version == a.version else "superseded"
                )
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
                cut_short=cut,
                ended=next_start if cut else None,
            )
        )
    return out


# -- change impact --------------------------------------------------------------------------

#: The windows an impact analysis compares by default (imagetrail's impact_before/after),
#: and the least data after a rollout it needs (impact_min_blocks 6 x impact_block 5m).
IMPACT_BEFORE = 3600.0
IMPACT_AFTER = 3600.0
IMPACT_MIN_AFTER = 1800.0

WorkloadKey = tuple[str, str, str, str]


def _wkey(x: ScriptedRollout | PodRun | ExpectedChange) -> WorkloadKey:
    return (x.cluster, x.namespace, x.workload_kind, x.workload)


def _worse(a: AppProfile, b: AppProfile) -> bool:
    """``a`` is worse than ``b`` on some signal and better on none."""
    pairs = [
        (float(a.restart_every is not None), float(b.restart_every is not None)),
        (a.cpu, b.cpu),
        (a.memory, b.memory),
        (a.throttled, b.throttled),
        (a.error_ratio, b.error_ratio),
    ]
    return a != b and all(x >= y for x, y in pairs)


def _verdict(before: AppProfile, after: AppProfile) -> str | None:
    if before == after:
        return "no-change"
    if _worse(after, before):
        return "regression"
    if _worse(before, after):
        return "improvement"
    return None  # better on some signals, worse on others: no single right answer


def derive_impacts(
    rollouts: Sequence[ScriptedRollout],
    changes: Sequence[ExpectedChange],
    pods: Iterable[PodRun],
    sim_end: float,
) -> tuple[ExpectedImpact, ...]:
    """The verdicts that are unambiguous by construction, for app-metric containers.

    A scripted rollout's change is listed when the hour before it saw no other rollout of
    the workload, and either the hour after its rollout finished is clean too (verdict from
    the two versions' profiles: equal → ``no-change``, worse → ``regression``, better →
    ``improvement``) or less than 30 minutes of the simulation are left after it
    (``insufficient-data``).
    """
    profiles: dict[tuple[WorkloadKey, str, str], AppProfile] = {}
    for pod in pods:
        for c in pod.containers:
            if c.profile is not None:
                profiles[(_wkey(pod), c.name, c.image)] = c.profile
    by_workload: dict[WorkloadKey, list[ScriptedRollout]] = defaultdict(list)
    for ro in rollouts:
        by_workload[_wkey(ro)].append(ro)
    out = []
    for key, ros in by_workload.items():
        ros.sort(key=lambda r: r.at)
        for i, ro in enumerate(ros):
            prev = ros[i - 1] if i else None
            nxt = ros[i + 1] if i + 1 < len(ros) else None
            for name, old, new in ro.containers:
                before_p = profiles.get((key, name, old))
                after_p = profiles.get((key, name, new))
                change = next(
                    (
                        c
                        for c in changes
                        if _wkey(c) == key
                        and c.container == name
                        and ro.at <= c.started < (sim_end if nxt is None else nxt.at)
                    ),
                    None,
                )
                if before_p is None or after_p is None or change is None or ro.finished is None:
                    continue
                clean_before = prev is None or (
                    prev.finished is not None and prev.finished <= change.started - IMPACT_BEFORE
                )
                if not clean_before or change.from_image is None or change.to_image is None:
                    continue
                verdict: str | None = None
                if nxt is None and sim_end - ro.finished < IMPACT_MIN_AFTER:
                    verdict = "insufficient-data"
                elif (nxt is None or nxt.at >= ro.finished + IMPACT_AFTER) and (
                    ro.finished + IMPACT_AFTER <= sim_end
                ):
                    verdict = _verdict(before_p, after_p)
                if verdict is not None:
                    out.append(
                        ExpectedImpact(
                            *key,
                            container=name,
                            from_image=change.from_image,
                            to_image=change.to_image,
                            started=change.started,
                            verdict=verdict,
                        )
                    )
    out.sort(key=lambda x: (x.started, x.cluster, x.namespace, x.workload, x.container))
    return tuple(out)


# -- CI/CD events ---------------------------------------------------------------------------

#: Namespaces whose rollouts a pipeline reports (``Fleet.deploy_events``).
PIPELINE_NAMESPACES = frozenset({"orders"})


def _pipeline(ro: ScriptedRollout, seed: int) -> tuple[str, float, float, str]:
    """(commit, commit time, deployed at, pipeline url) of a rollout a pipeline made."""
    ident = f"{seed}:cicd:{ro.cluster}:{ro.namespace}:{ro.workload}:{ro.at:.3f}"
    rng = random.Random(ident)
    deployed = round(ro.at - rng.uniform(10.0, 60.0), 3)
    # A rollback ships a revert made in a hurry; other commits wait a while for review.
    lag = rng.uniform(1200.0, 2400.0) if ro.kind == "rollback" else rng.uniform(1200.0, 6 * 3600.0)
    commit = hashlib.sha256(ident.encode()).hexdigest()[:40]
    number = 4000 + int(commit[:6], 16) % 50000
    url = f"https://ci.acme.example/acme/{ro.workload}/-/pipelines/{number}"
    return commit, round(deployed - lag, 3), deployed, url


def deploy_events(rollouts: Iterable[ScriptedRollout], seed: int) -> tuple[DeployEvent, ...]:
    """One event per changed container of each rollout in a pipeline namespace."""
    out = []
    for ro in rollouts:
        if ro.namespace not in PIPELINE_NAMESPACES:
            continue
        commit, commit_time, deployed, url = _pipeline(ro, seed)
        for name, _, image in ro.containers:
            out.append(
                DeployEvent(
                    cluster=ro.cluster,
                    namespace=ro.namespace,
                    workload=ro.workload,
                    container=name,
                    image=image,
                    commit=commit,
                    commit_time=commit_time,
                    deployed_at=deployed,
                    pipeline_url=url,
                )
            )
    out.sort(key=lambda e: (e.deployed_at, e.cluster, e.namespace, e.workload, e.container))
    return tuple(out)


# -- DORA -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Deployment:
    at: float
    finished: float | None
    kinds: frozenset[str]
    before: frozenset[tuple[str, str]]  # (container, image) it replaced
    after: frozenset[tuple[str, str]]
    rollouts: tuple[ScriptedRollout, ...]

    @property
    def never_ran(self) -> bool:
        return any(r.never_ran for r in self.rollouts)


def _deployments(rollouts: Iterable[ScriptedRollout]) -> dict[WorkloadKey, list[_Deployment]]:
    """Rollouts of one workload scripted for the same instant are one deployment."""
    grouped: dict[WorkloadKey, dict[float, list[ScriptedRollout]]] = defaultdict(dict)
    for ro in rollouts:
        if ro.containers:
            grouped[_wkey(ro)].setdefault(ro.at, []).append(ro)
    out: dict[WorkloadKey, list[_Deployment]] = {}
    for key, by_at in grouped.items():
        deps = []
        for at in sorted(by_at):
            ros = by_at[at]
            ends = [r.finished for r in ros]
            deps.append(
                _Deployment(
                    at=at,
                    finished=None if None in ends else max(e for e in ends if e is not None),
                    kinds=frozenset(r.kind for r in ros),
                    before=frozenset((n, a) for r in ros for n, a, _ in r.containers),
                    after=frozenset((n, b) for r in ros for n, _, b in r.containers),
                    rollouts=tuple(ros),
                )
            )
        out[key] = deps
    return out


def expected_dora(fleet: Fleet, start: float, end: float) -> list[ExpectedDora]:
    """DORA ground truth per workload with at least one deployment starting in [start, end).

    A deployment is one scripted rollout (rollouts of a workload at one instant count
    once). It fails when it is a bad or failed rollout (a failed one's pods never ran, only
    crash-looped, or still wait at the end), or when the next deployment of the workload is
    a rollback to the images it replaced. Restore time: from a failed deployment's start
    until that rollback finished (if it did within the simulation): the last pod of the
    failed version gone, the workload running one version again. Undoing a rollout whose
    pods never ran changes no running version: that undo is no deployment of its own, it
    only restores the failed one. Lead time (workloads whose pipeline posts events):
    rollout finished minus commit time.
    """
    seed = fleet.config.seed
    out = []
    for key, deps in sorted(_deployments(fleet.rollouts).items()):
        failures, restores, leads = 0, [], []
        count = 0
        for i, d in enumerate(deps):
            if not start <= d.at < end or (i and "rollback" in d.kinds and deps[i - 1].never_ran):
                continue
            count += 1
            nxt = deps[i + 1] if i + 1 < len(deps) else None
            undone = nxt is not None and "rollback" in nxt.kinds and nxt.after == d.before
            if undone or d.kinds & {"bad", "failed"}:
                failures += 1
                if undone and nxt is not None and nxt.finished is not None:
                    restores.append(round(nxt.finished - d.at, 3))
            if d.finished is not None and key[1] in PIPELINE_NAMESPACES:
                commit_time = min(_pipeline(r, seed)[1] for r in d.rollouts)
                leads.append(round(d.finished - commit_time, 3))
        if count:
            out.append(ExpectedDora(*key, count, failures, tuple(restores), tuple(leads)))
    return out


# -- attempts (waits) -----------------------------------------------------------------------


def _attempts(waits: list[_Wait]) -> list[_Attempt]:
    """Waits of one image less than MERGE_GAP apart, as attempts (benign blips dropped)."""
    out: list[_Attempt] = []
    for image in sorted({w.image for w in waits}):
        current: _Attempt | None = None
        for w in sorted((w for w in waits if w.image == image), key=lambda w: (w.start, w.end)):
            if current is None or w.start > current.end + MERGE_GAP:
                current = _Attempt(image, w.start, w.end, {}, set(), set())
                out.append(current)
            current.end = max(current.end, w.end)
            current.reasons.setdefault(w.reason)
            current.pods.add(w.pod)
            if w.reason == CRASHING:
                current.crashing.add(w.pod)
    return [a for a in out if set(a.reasons) - BENIGN or a.end - a.start >= BENIGN_WAIT]


def _with_attempts(
    key: Key, changes: list[ExpectedChange], runs: list[_Run], waits: list[_Wait], sim_end: float
) -> list[ExpectedChange]:
    """The container's changes with its attempts joined in (see the module docstring)."""
    out = list(changes)
    ordered = sorted(runs, key=lambda r: (r.start, r.pod))
    for a in _attempts(waits):
        index = next(
            (
                i
                for i, c in enumerate(out)
                if c.to_image == a.image and a.start - TOLERANCE <= c.started <= a.end + MERGE_GAP
            ),
            None,
        )
        before = [r for r in ordered if r.start <= a.start]
        current = before[-1] if before else None
        if index is not None:
            out[index] = _joined(out[index], a, runs)
        elif current is not None and current.version[0] == a.image:
            continue  # the running version's own pods waiting
        elif key[2] not in _JOB_KINDS or current is not None:
            out.append(_failed(key, a, current, {r.version[0] for r in before}, sim_end))
    return out


def _joined(c: ExpectedChange, a: _Attempt, runs: list[_Run]) -> ExpectedChange:
    settled = c.finished if c.finished is not None else c.ended
    until = float("inf") if settled is None else settled
    ran = {
        (r.pod, r.uid) for r in runs if r.version[0] == a.image and c.started <= r.start <= until
    }
    healthy = ran - a.crashing
    return replace(
        c,
        cut_short="failed" if c.cut_short is not None and not healthy else c.cut_short,
        reasons=a.shown(),
        pods=len(a.pods | ran),
        pods_ran=len(healthy),
        # (the usual pull of a scrape or two is not worth saying)
        # To the millisecond, like every time the ledger keeps.
        waited=round(c.started - a.start, 3) if c.started - a.start > TOLERANCE else None,
    )


def _failed(
    key: Key, a: _Attempt, current: _Run | None, seen: set[str], sim_end: float
) -> ExpectedChange:
    repo, tag = split_display(a.image)
    new = _Run(a.start, None, (a.image, None), repo, tag, "")
    kind = ChangeKind.ADDED if current is None else classify(current, new, a.image in seen)
    given_up = a.end < sim_end - TOLERANCE
    return ExpectedChange(
        *key,
        from_image=current.version[0] if current else None,
        from_digest=current.version[1] if current else None,
        to_image=a.image,
        to_digest=None,
        kind=kind.value,
        started=a.start,
        finished=None,
        cut_short="failed" if given_up else None,
        ended=a.end if given_up else None,
        reasons=a.shown(),
        pods=len(a.pods),
        pods_ran=0,
    )
