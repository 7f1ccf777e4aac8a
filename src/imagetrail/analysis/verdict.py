"""Did a change cause trouble? Before/after windows, a rank test with an effect size, a verdict.

Pure functions: the caller fetches one value per *block* (default 5 minutes) of each signal
in the window before a change and the window after its rollout, and this module decides.
The method, in plain words, is in docs/impact.md:

- Per signal, the blocks before and after are compared with the two-sided Mann-Whitney U
  test (no normality assumed; counts full of zeros are fine). Averaging samples into blocks
  first tames the autocorrelation of scrape-by-scrape values, which would otherwise make
  any wiggle look significant.
- The effect size is Cliff's delta (the probability that an after-block is higher than a
  before-block, minus the reverse): -1..1, independent of units.
- p-values are Holm-adjusted across the signals that decide, so testing six signals does not
  make a false alarm six times as likely.
- A signal moved when adjusted p < alpha AND |delta| >= min_effect AND the mean moved by at
  least min_change (relative); for every built-in signal higher is worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import mannwhitneyu

from imagetrail.model import Change, ChangeKind, CutShort, Impact, SignalResult, Verdict
from imagetrail.timeutil import format_time


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a difference counts (the ``impact_*`` settings)."""

    min_blocks: int = 6
    alpha: float = 0.05
    min_effect: float = 0.474
    min_change: float = 0.1


@dataclass(frozen=True, slots=True)
class SignalData:
    """One signal's block values on both sides of a change."""

    name: str
    unit: str
    before: tuple[float, ...]
    after: tuple[float, ...]
    decides: bool = True


@dataclass(frozen=True, slots=True)
class Windows:
    """The instants compared: ``before`` ends where the change starts; ``after`` starts
    where its rollout finished (rollout time excluded). ``after`` is None while rolling out."""

    before: tuple[float, float]
    after: tuple[float, float] | None


def windows(
    change: Change,
    *,
    before: float,
    after: float,
    previous_settled: float | None,
    next_started: float | None,
    data_end: float,
) -> Windows:
    """The before/after windows of ``change``, kept clear of the neighbouring changes of the
    same workload container (so two changes never share evidence) and of the end of data.

    ``previous_settled``: when the previous change's rollout stopped moving (finished, or cut
    short: then it is this change's start and the before-window is empty, since the rollout
    given up ran right up to it). A change cut short has no after-window: its rollout never
    finished."""
    b0 = change.started - before
    if previous_settled is not None:
        b0 = max(b0, min(previous_settled, change.started))
    if change.finished is None:
        return Windows((b0, change.started), None)
    a1 = change.finished + after
    if next_started is not None and next_started > change.finished:
        a1 = min(a1, next_started)
    a1 = min(a1, data_end)
    return Windows((b0, change.started), (change.finished, max(change.finished, a1)))


def cliffs_delta(u_after: float, n_after: int, n_before: int) -> float:
    """Cliff's delta of after vs before from the Mann-Whitney U statistic of ``after``."""
    return 2.0 * u_after / (n_after * n_before) - 1.0


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _relative(before: float, after: float) -> float:
    if before == 0.0:
        return math.inf if after != 0.0 else 0.0
    return (after - before) / abs(before)


def assess(
    change: Change,
    span: Windows,
    signals: Sequence[SignalData],
    thresholds: Thresholds = Thresholds(),
) -> Impact:
    """The verdict on one change from its signals' block values."""
    if change.kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
        reason = "nothing ran before it" if change.kind == ChangeKind.ADDED else "nothing after"
        return _undecided(change, span, signals, f"{change.kind.value}: {reason}")
    if change.cut_short is not None:
        return _undecided(change, span, signals, cut_short_reason(change))
    if change.state == "stuck":
        return _undecided(
            change, span, signals, f"the new version is not running yet: {_reasons(change)}"
        )
    if span.after is None:
        return _undecided(change, span, signals, "the rollout has not finished")

    enough = [
        s
        for s in signals
        if len(s.before) >= thresholds.min_blocks and len(s.after) >= thresholds.min_blocks
    ]
    raw: dict[str, tuple[float, float]] = {}  # name -> (p, delta)
    for s in enough:
        u, p = mannwhitneyu(s.after, s.before, alternative="two-sided")
        p = 1.0 if math.isnan(p) else float(p)
        raw[s.name] = (p, cliffs_delta(float(u), len(s.after), len(s.before)))
    deciding = [s.name for s in enough if s.decides]
    adjusted = dict(zip(deciding, holm([raw[n][0] for n in deciding]), strict=True))

    results: list[SignalResult] = []
    for s in signals:
        mb, ma = _mean(s.before), _mean(s.after)
        if s.name not in raw or mb is None or ma is None:
            results.append(_result(s, mb, ma, None, None, "insufficient-data"))
            continue
        p = adjusted.get(s.name, raw[s.name][0])
        delta = raw[s.name][1]
        moved = (
            p < thresholds.alpha
            and abs(delta) >= thresholds.min_effect
            and abs(_relative(mb, ma)) >= thresholds.min_change
        )
        verdict: Verdict = (
            "no-change" if not moved else "regression" if delta > 0 else "improvement"
        )
        results.append(_result(s, mb, ma, p, delta, verdict))

    decided = [r for r in results if r.decides]
    if any(r.verdict == "regression" for r in decided):
        worse = ", ".join(r.name for r in decided if r.verdict == "regression")
        return Impact(change, "regression", f"worse after: {worse}", span.before, span.after,
                      tuple(results))  # fmt: skip
    if any(r.verdict == "improvement" for r in decided):
        better = ", ".join(r.name for r in decided if r.verdict == "improvement")
        return Impact(change, "improvement", f"better after: {better}", span.before, span.after,
                      tuple(results))  # fmt: skip
    if not decided or all(r.verdict == "insufficient-data" for r in decided):
        return Impact(
            change,
            "insufficient-data",
            _short_reason(span, thresholds),
            span.before,
            span.after,
            tuple(results),
        )
    return Impact(change, "no-change", "no signal moved", span.before, span.after, tuple(results))


def cut_short_reason(change: Change) -> str:
    """Why a rollout given up before it finished has no verdict (a final one)."""
    assert change.cut_short is not None
    when = "" if change.ended is None else f" at {format_time(change.ended)}"
    if change.cut_short == CutShort.FAILED:
        return f"the new version never ran: {_reasons(change)}; the rollout failed{when}"
    return f"the rollout was {change.cut_short.value}{when} before it finished"


def _reasons(change: Change) -> str:
    return ", ".join(change.reasons) or "its pods did not run"


def _short_reason(span: Windows, thresholds: Thresholds) -> str:
    return (
        f"fewer than {thresholds.min_blocks} blocks of data on a side "
        f"(before {_minutes(span.before)} min, after "
        f"{_minutes(span.after) if span.after else 0} min)"
    )


def _minutes(window: tuple[float, float]) -> int:
    return round((window[1] - window[0]) / 60.0)


def _result(
    s: SignalData,
    before: float | None,
    after: float | None,
    p: float | None,
    delta: float | None,
    verdict: Verdict,
) -> SignalResult:
    return SignalResult(
        name=s.name,
        unit=s.unit,
        before=before,
        after=after,
        p_value=p,
        effect=delta,
        blocks_before=len(s.before),
        blocks_after=len(s.after),
        verdict=verdict,
        decides=s.decides,
        before_values=s.before,
        after_values=s.after,
    )


def _undecided(change: Change, span: Windows, signals: Sequence[SignalData], reason: str) -> Impact:
    results = tuple(
        _result(s, _mean(s.before), _mean(s.after), None, None, "insufficient-data")
        for s in signals
    )
    return Impact(change, "insufficient-data", reason, span.before, span.after, results)
