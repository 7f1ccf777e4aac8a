"""Stream a simulated fleet's metrics to disk, one file per UTC day.

``write_openmetrics`` writes what ``promtool tsdb create-blocks-from openmetrics`` backfills
(timestamps in seconds, each series' samples together and oldest first, ``# EOF`` last);
``write_vm_import`` writes the Prometheus text format with millisecond timestamps that
VictoriaMetrics' ``/api/v1/import/prometheus`` takes. Only one day's samples of one series
are ever held in memory: a 2,000-container week is about 100 million samples.
Signals: ``cadvisor``, ``ksm`` and ``impact`` (the app-metric containers' throttling, OOM
kills, HTTP requests and alerts; see :mod:`imagetrail.sim._impact_series`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path

from imagetrail.errors import ConfigError
from imagetrail.sim._impact_series import impact_series
from imagetrail.sim._series import (
    FAMILIES,
    Series,
    _cadvisor,
    _ksm_owners,
    _ksm_pod,
    sample_times,
    values,
)
from imagetrail.sim.types import Fleet

DAY = 86400.0
SIGNALS = ("cadvisor", "ksm", "impact")


def build(fleet: Fleet, signals: tuple[str, ...], step_ms: int) -> dict[str, list[Series]]:
    """Every series of the requested signals, by family sample name."""
    out: dict[str, list[Series]] = {f.name: [] for f in FAMILIES if f.signal in signals}
    end = fleet.end
    if "cadvisor" in signals:
        for pod in fleet.pods:
            _cadvisor(pod, end, step_ms, out)
    if "ksm" in signals:
        for pod in fleet.pods:
            _ksm_pod(pod, end, step_ms, out)
        _ksm_owners(fleet, step_ms, out)
    if "impact" in signals:
        for pod in fleet.pods:
            impact_series(pod, end, step_ms, out)
    return out


def _days(lo: float, hi: float) -> list[tuple[float, float]]:
    first = math.floor(lo / DAY)
    return [
        (max(lo, d * DAY), min(hi, (d + 1) * DAY))
        for d in range(first, math.ceil(hi / DAY))
        if max(lo, d * DAY) < min(hi, (d + 1) * DAY)
    ]


def _write(
    fleet: Fleet,
    out_dir: Path,
    signals: Iterable[str],
    start: float | None,
    end: float | None,
    namespaces: Collection[str] | None,
    *,
    openmetrics: bool,
) -> list[Path]:
    sigs = tuple(signals)
    unknown = set(sigs) - set(SIGNALS)
    if unknown:
        raise ConfigError(
            f"unknown signal(s) {sorted(unknown)}", hint="use 'cadvisor', 'ksm', 'impact'"
        )
    if namespaces is not None:
        # Every series belongs to one pod's namespace, owner series included.
        keep = frozenset(namespaces)
        fleet = dataclasses.replace(fleet, pods=tuple(p for p in fleet.pods if p.namespace in keep))
    lo = fleet.config.start if start is None else max(start, fleet.config.start)
    hi = fleet.end if end is None else min(end, fleet.end)
    step_ms = round(fleet.config.scrape_interval * 1000)
    start_ms = round(fleet.config.start * 1000)
    series = build(fleet, sigs, step_ms)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for d0, d1 in _days(lo, hi):
        day = datetime.fromtimestamp(d0, UTC).strftime("%Y-%m-%d")
        path = out_dir / (f"{day}.om.txt" if openmetrics else f"{day}.prom")
        with path.open("w", encoding="utf-8", newline="\n") as f:
            for fam in FAMILIES:
                if fam.name not in series:
                    continue
                name = fam.family if openmetrics else fam.name
                f.write(f"# HELP {name} {fam.help}\n# TYPE {name} {fam.type}\n")
                for s in series[fam.name]:
                    if s.b <= d0 or s.a >= d1:
                        continue
                    prefix = fam.name + s.labels + " "
                    times = sample_times(s, d0, d1, start_ms, step_ms)
                    if openmetrics:
                        stamps = [f"{t // 1000}.{t % 1000:03d}" for t in times]
                    else:
                        stamps = [str(t) for t in times]
                    vals = values(s, times)
                    f.write(
                        "".join([f"{prefix}{v} {t}\n" for v, t in zip(vals, stamps, strict=True)])
                    )
            if openmetrics:
                f.write("# EOF\n")
        paths.append(path)
    return paths


def write_openmetrics(
    fleet: Fleet,
    out_dir: Path,
    *,
    signals: Iterable[str] = ("cadvisor", "ksm"),
    start: float | None = None,
    end: float | None = None,
    namespaces: Collection[str] | None = None,
) -> list[Path]:
    """Write one OpenMetrics file per UTC day of [start, end) (default: the whole fleet).

    ``signals``: any of ``cadvisor``, ``ksm``, ``impact``; ``namespaces``: only the series
    of pods (and their owners) in these namespaces (default: all).
    """
    return _write(fleet, out_dir, signals, start, end, namespaces, openmetrics=True)


def write_vm_import(
    fleet: Fleet,
    out_dir: Path,
    *,
    signals: Iterable[str] = ("cadvisor", "ksm"),
    start: float | None = None,
    end: float | None = None,
    namespaces: Collection[str] | None = None,
) -> list[Path]:
    """Same samples as :func:`write_openmetrics`, Prometheus text format, ms timestamps."""
    return _write(fleet, out_dir, signals, start, end, namespaces, openmetrics=False)
