"""The simulated fleet's signals, answered as Prometheus answers imagetrail's impact queries.

``imagetrail demo`` has no Prometheus, so change impact and capacity read the simulator
instead, through the same reader interface as the Prometheus path (``SignalReader`` in
:mod:`imagetrail.sources.signals`); the statistics that judge the values are the same. The
values are not made up for the purpose: they are computed from the very series the OpenMetrics
writer backfills into Prometheus in the tests (:func:`imagetrail.sim.openmetrics.build`, per pod),
sampled on the same scrape grid and evaluated with Prometheus 2's semantics: a range
selector holds the samples in ``[t - range, t]``, ``increase``/``rate`` extrapolate as
Prometheus' ``extrapolatedRate`` does, an instant selector looks back 5 minutes. So the
simulator gives the values and verdicts a Prometheus holding the same fleet gives
(tests/test_demo_impact.py compares the two). User ``impact_queries`` are PromQL written
for someone's own metrics: the simulator does not evaluate PromQL, so it reads only the
built-in signals.
"""

from __future__ import annotations

import math
import re
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

from imagetrail.sim._impact_series import impact_series
from imagetrail.sim._series import FAMILIES, Series, _cadvisor, _ksm_pod
from imagetrail.sim.fleet import simulate_pods
from imagetrail.sim.types import Fleet, PodRun, SimConfig

LOOKBACK_MS = 300_000  # Prometheus' default lookback delta for instant selectors
BUILTIN = frozenset({"restarts", "oom_kills", "cpu_throttling", "alerts", "cpu", "memory"})
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")

Key = tuple[str, str, str, str, str]  # cluster, namespace, kind, workload, container
Point = tuple[int, float]  # (ms, value)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _parse_labels(text: str) -> dict[str, str]:
    def unescape(m: re.Match[str]) -> str:
        return "\n" if m.group(1) == "n" else m.group(1)

    return {k: _UNESCAPE.sub(unescape, v) for k, v in _LABEL.findall(text)}


class _Merged:
    """One Prometheus series: the simulator's pieces with the same labels (a wait reason's
    periods are one series with gaps)."""

    __slots__ = ("labels", "parts")

    def __init__(self, labels: dict[str, str], parts: list[Series]) -> None:
        self.labels = labels
        self.parts = parts


class SimSignals:
    """Signal values of a simulated fleet's samples in ``[start, end)`` (default: all)."""

    name = "the demo simulator"

    def __init__(self, fleet: Fleet, *, start: float | None = None, end: float | None = None):
        cfg = fleet.config
        self.fleet = fleet
        # As the writer samples: the grid from the simulation's start, clipped to the data.
        self._lo = cfg.start if start is None else max(start, cfg.start)
        self._hi = fleet.end if end is None else min(end, fleet.end)
        self._step = round(cfg.scrape_interval * 1000)
        self._base = round(cfg.start * 1000)
        self._pods: dict[tuple[str, str, str], list[PodRun]] = defaultdict(list)
        for p in fleet.pods:
            self._pods[(p.cluster, p.namespace, p.pod)].append(p)
        self._built: dict[str, dict[str, list[tuple[dict[str, str], Series]]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing to release (the reader protocol's counterpart of closing a client)."""

    # -- series --------------------------------------------------------------------------------
    def _pod_series(self, pod: PodRun) -> dict[str, list[tuple[dict[str, str], Series]]]:
        with self._lock:
            got = self._built.get(pod.uid)
            if got is None:
                out: dict[str, list[Series]] = {f.name: [] for f in FAMILIES}
                _cadvisor(pod, self.fleet.end, self._step, out)
                _ksm_pod(pod, self.fleet.end, self._step, out)
                impact_series(pod, self.fleet.end, self._step, out)
                got = {
                    fam: [(_parse_labels(s.labels), s) for s in series]
                    for fam, series in out.items()
                }
                self._built[pod.uid] = got
            return got

    def _select(
        self, family: str, key: Key, pods: Sequence[str], match: Mapping[str, str]
    ) -> list[_Merged]:
        cluster, namespace = key[0], key[1]
        groups: dict[str, _Merged] = {}
        for name in dict.fromkeys(pods):
            for pod in self._pods.get((cluster, namespace, name), ()):
                for labels, s in self._pod_series(pod)[family]:
                    if all(labels.get(k, "") == v for k, v in match.items()):
                        merged = groups.setdefault(s.labels, _Merged(labels, []))
                        merged.parts.append(s)
        return list(groups.values())

    def _grid(self, s: Series, lo_ms: float, hi_ms: float) -> range:
        """The scrape instants of ``s`` in ``[lo_ms, hi_ms)`` that the data holds (as
        :func:`imagetrail.sim._series.sample_times`, clipped to ``[start, end)``)."""
        lo = max(lo_ms, self._lo * 1000.0, s.a * 1000.0)
        hi = min(hi_ms, self._hi * 1000.0, s.b * 1000.0)
        base = self._base + s.offset_ms
        k0 = max(0, math.ceil((lo - base) / self._step))
        k1 = max(k0, math.ceil((hi - base) / self._step))
        return range(base + k0 * self._step, base + k1 * self._step, self._step)

    def _points(self, series: _Merged, t_ms: int, range_ms: int) -> list[Point]:
        """The samples a range selector ``[range]`` evaluated at ``t_ms`` holds (both ends in)."""
        out: list[Point] = []
        for s in series.parts:
            for t in self._grid(s, t_ms - range_ms, t_ms + 1):
                out.append((t, float(s.value(t / 1000.0))))
        out.sort()
        return out

    def _edges(self, series: _Merged, t_ms: int, range_ms: int) -> tuple[int, Point, Point]:
        """How many samples the range holds, its first and its last (a one-piece series
        that cannot reset needs no more: the writer's counters only grow)."""
        [s] = series.parts
        times = self._grid(s, t_ms - range_ms, t_ms + 1)
        if not times:
            return 0, (0, 0.0), (0, 0.0)
        first, last = times[0], times[-1]
        return (
            len(times),
            (first, float(s.value(first / 1000.0))),
            (last, float(s.value(last / 1000.0))),
        )

    # -- PromQL functions ----------------------------------------------------------------------
    def _increase(
        self, series: _Merged, t_ms: int, range_ms: int, *, rate: bool = False
    ) -> float | None:
        """``increase`` (or ``rate``) of one counter series, as Prometheus 2 extrapolates it."""
        if len(series.parts) == 1 and not series.parts[0].points:
            n, (t0, v0), (t1, v1) = self._edges(series, t_ms, range_ms)
            result = v1 - v0
        else:
            points = self._points(series, t_ms, range_ms)
            n = len(points)
            if n < 2:
                return None
            (t0, v0), (t1, v1) = points[0], points[-1]
            result = v1 - v0
            last = 0.0
            for _, v in points:  # counter resets
                if v < last:
                    result += last
                last = v
        if n < 2:
            return None
        to_start = (t0 - (t_ms - range_ms)) / 1000
        to_end = (t_ms - t1) / 1000
        sampled = (t1 - t0) / 1000
        average = sampled / (n - 1)
        if result > 0 and v0 >= 0:
            to_start = min(to_start, sampled * (v0 / result))
        threshold = average * 1.1
        interval = sampled
        interval += to_start if to_start < threshold else average / 2
        interval += to_end if to_end < threshold else average / 2
        result *= interval / sampled
        return result / (range_ms / 1000) if rate else result

    def _sum_increase(
        self, family: str, key: Key, pods: Sequence[str], t_ms: int, range_ms: int
    ) -> float | None:
        got = [
            v
            for s in self._select(family, key, pods, {"container": key[4]})
            if (v := self._increase(s, t_ms, range_ms)) is not None
        ]
        return math.fsum(got) if got else None

    # -- the reader interface ------------------------------------------------------------------
    def reads(self, signal: _Named) -> bool:
        """The built-in signals only: user templates are PromQL for someone's own metrics."""
        return signal.name in BUILTIN

    def block_values(
        self, signal: _Named, key: Key, pods: Sequence[str], ends: Sequence[float], block: float
    ) -> list[float | None]:
        """One value per block end (None: no value), as the built-in signal's PromQL gives."""
        range_ms = round(block * 1000)
        return [self._block(signal.name, key, pods, round(t * 1000), range_ms) for t in ends]

    def _block(
        self, name: str, key: Key, pods: Sequence[str], t_ms: int, range_ms: int
    ) -> float | None:
        seconds = range_ms / 1000
        if name in ("restarts", "oom_kills"):
            family = (
                "kube_pod_container_status_restarts_total"
                if name == "restarts"
                else "container_oom_events_total"
            )
            total = self._sum_increase(family, key, pods, t_ms, range_ms)
            return None if total is None else total * 3600 / seconds
        if name == "cpu_throttling":
            throttled = self._sum_increase(
                "container_cpu_cfs_throttled_periods_total", key, pods, t_ms, range_ms
            )
            periods = self._sum_increase(
                "container_cpu_cfs_periods_total", key, pods, t_ms, range_ms
            )
            if throttled is None or periods is None:
                return None
            return throttled / periods if periods else math.nan
        if name == "alerts":
            firing = [
                s
                for s in self._select("ALERTS", key, pods, {"alertstate": "firing"})
                if self._points(s, t_ms, range_ms)
            ]
            return float(len(firing)) if firing else None
        if name == "cpu":
            rates = [
                v
                for s in self._select(
                    "container_cpu_usage_seconds_total", key, pods, {"container": key[4]}
                )
                if (v := self._increase(s, t_ms, range_ms, rate=True)) is not None
            ]
            return math.fsum(rates) / len(rates) if rates else None
        if name == "memory":
            means = []
            for s in self._select(
                "container_memory_working_set_bytes", key, pods, {"container": key[4]}
            ):
                points = self._points(s, t_ms, range_ms)
                if points:
                    means.append(math.fsum(v for _, v in points) / len(points))
            return math.fsum(means) / len(means) if means else None
        return None

    def events(
        self, key: Key, pods: Sequence[str], at: float, seconds: float
    ) -> dict[tuple[str, str], int]:
        """Pod containers per (state, reason) in the ``seconds`` before ``at``: waiting with
        a reason, or restarted with a last terminated reason (docs/impact.md, "Events")."""
        t_ms, range_ms = round(at * 1000), max(1, round(seconds)) * 1000
        match = {"container": key[4]}
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for s in self._select("kube_pod_container_status_waiting_reason", key, pods, match):
            if self._points(s, t_ms, range_ms):
                counts[("waiting", s.labels.get("reason", ""))] += 1
        restarted = {
            (s.labels.get("pod", ""), s.labels.get("container", ""))
            for s in self._select("kube_pod_container_status_restarts_total", key, pods, match)
            if (self._increase(s, t_ms, range_ms) or 0.0) > 0
        }
        family = "kube_pod_container_status_last_terminated_reason"
        for s in self._select(family, key, pods, match):
            ident = (s.labels.get("pod", ""), s.labels.get("container", ""))
            if ident in restarted and self._points(s, t_ms, range_ms):
                counts[("terminated", s.labels.get("reason", ""))] += 1
        return dict(counts)

    def usage(
        self,
        key: Key,
        pods: Sequence[str],
        start: float,
        end: float,
        step: float,
        rate_range: float,
    ) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
        """``(pod, time, value)`` of CPU cores (``rate`` over ``rate_range``) and working-set
        bytes at each ``step`` from ``start`` to ``end``, per container series."""
        lo, hi, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        range_ms = round(rate_range * 1000)
        match = {"container": key[4]}
        cpu: list[tuple[str, float, float]] = []
        for s in self._select("container_cpu_usage_seconds_total", key, pods, match):
            for t in self._times(s, lo, hi, step_ms, range_ms):
                v = self._increase(s, t, range_ms, rate=True)
                if v is not None:
                    cpu.append((s.labels.get("pod", ""), t / 1000, v))
        memory: list[tuple[str, float, float]] = []
        for s in self._select("container_memory_working_set_bytes", key, pods, match):
            for t in self._times(s, lo, hi, step_ms, LOOKBACK_MS):
                if len(s.parts) == 1:
                    n, _, (_, value) = self._edges(s, t, LOOKBACK_MS)
                    if n:
                        memory.append((s.labels.get("pod", ""), t / 1000, value))
                elif points := self._points(s, t, LOOKBACK_MS):
                    memory.append((s.labels.get("pod", ""), t / 1000, points[-1][1]))
        return cpu, memory

    @staticmethod
    def _times(s: _Merged, lo: int, hi: int, step_ms: int, reach_ms: int) -> list[int]:
        """The query steps from ``lo`` to ``hi`` whose ``reach_ms`` can see a sample of ``s``."""
        a = min(p.a for p in s.parts) * 1000
        b = max(p.b for p in s.parts) * 1000 + reach_ms
        k0 = max(0, math.ceil((a - lo) / step_ms))
        k1 = min((hi - lo) // step_ms, math.floor((b - lo) / step_ms))
        return [lo + k * step_ms for k in range(k0, k1 + 1)]


_FLEETS: dict[tuple[int, float, float], Fleet] = {}
_FLEETS_LOCK = threading.Lock()


def remember(fleet: Fleet) -> None:
    """Keep ``fleet`` for :func:`demo_signals` (``imagetrail demo`` serves the fleet it just
    simulated: the web app's first impact answer need not simulate it again)."""
    cfg = fleet.config
    with _FLEETS_LOCK:
        _FLEETS.clear()
        _FLEETS[(cfg.seed, cfg.start, cfg.days)] = fleet


def demo_signals(seed: int, start: float, days: float) -> SimSignals:
    """The signals of the demo fleet ``imagetrail demo`` recorded: the same fleet again,
    simulated once per process (about a second)."""
    key = (seed, start, days)
    with _FLEETS_LOCK:
        fleet = _FLEETS.get(key)
        if fleet is None:
            fleet = simulate_pods(SimConfig(seed=seed, start=start, days=days))
            _FLEETS.clear()
            _FLEETS[key] = fleet
    return SimSignals(fleet)
