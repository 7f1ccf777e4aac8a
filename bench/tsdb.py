"""Generated fleets backfilled into a Prometheus TSDB, built once and cached.

A 2,000-container week of kube-state-metrics series is about 240 million samples, some
50 GB of OpenMetrics text. promtool holds a whole file in memory (150–200 MB per million
samples), so the history is written a few hours at a time — one file per UTC day for small
fleets, a divisor of a day for big ones — and each file is backfilled and deleted before the
next one is written. That is also why this module does not use ``servers.cached_tsdb``,
which writes every file before it backfills any; it keeps the same cache layout and the
same build-then-rename, so a killed build never leaves a half-made cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench._paths import SIM_DIR
from imagetrail.sim import Fleet, SimConfig, simulate, write_openmetrics
from servers import DEFAULT_TSDB_CACHE, backfill_prometheus_tsdb

DAY = 86400.0
HOUR = 3600.0
SIGNALS = ("ksm",)
BUILD_INFO = "bench-build.json"
# Measured on the bench fleet: about 6 kube-state-metrics series per running container (info,
# running, terminated, restarts, plus pod_info/pod_owner shared by a pod's containers).
SERIES_PER_CONTAINER = 6.0
# At most this many samples per promtool run: about 2 GB of promtool memory.
MAX_SAMPLES_PER_FILE = 12_000_000


@dataclass(frozen=True, slots=True)
class BenchFleet:
    """A simulated fleet, its backfilled TSDB and the window the benchmark reads."""

    fleet: Fleet
    tsdb: Path
    start: float
    end: float
    build_seconds: float | None  # None when the TSDB came from the cache
    build_info: dict[str, object]


def bench_config(containers: int, days: int = 7, scrape_interval: float = 30.0) -> SimConfig:
    """The simulator config of one benchmark size (the issue's: 7 days, 30 s scrape)."""
    return SimConfig(
        scale="bench", containers=containers, days=days, scrape_interval=scrape_interval
    )


def sim_code_hash(sim_dir: Path = SIM_DIR) -> str:
    """Hash of the simulator's sources: a changed simulator must rebuild the cache."""
    digest = hashlib.sha256()
    for path in sorted(sim_dir.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def file_hours(config: SimConfig) -> int:
    """Hours of history per OpenMetrics file: a divisor of 24 keeping promtool's memory bounded."""
    per_hour = config.containers * SERIES_PER_CONTAINER * HOUR / config.scrape_interval
    for hours in (24, 12, 8, 6, 4, 3, 2, 1):
        if per_hour * hours <= MAX_SAMPLES_PER_FILE:
            return hours
    return 1


def windows(start: float, end: float, hours: int) -> list[tuple[float, float]]:
    """``[a, b)`` pieces of ``[start, end)`` cut at multiples of ``hours`` (UTC)."""
    size = hours * HOUR
    out: list[tuple[float, float]] = []
    a = start
    while a < end:
        b = min(end, (a // size + 1) * size)
        out.append((a, b))
        a = b
    return out


def cache_key(config: SimConfig, signals: tuple[str, ...] = SIGNALS) -> str:
    """Cache directory name: the sim config, the signals, the file layout and the sim code.

    The default ``signals`` give the same key as before they were a parameter, so the sync
    benchmark keeps finding its cache.
    """
    material = repr((config, signals, file_hours(config), sim_code_hash()))
    return f"bench-{config.containers}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def build_tsdb(
    config: SimConfig,
    *,
    cache_root: Path = DEFAULT_TSDB_CACHE,
    log: Callable[[str], None] = print,
    signals: tuple[str, ...] = SIGNALS,
) -> BenchFleet:
    """The fleet of ``config`` and a TSDB holding its series of ``signals`` (default: ``ksm``),
    built unless cached."""
    fleet = simulate(config)
    start, end = config.start, fleet.end
    final = cache_root / cache_key(config, signals)
    if (final / BUILD_INFO).is_file():
        cached = json.loads((final / BUILD_INFO).read_text())
        return BenchFleet(fleet, final, start, end, None, cached)
    cache_root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=cache_root))
    began = time.perf_counter()
    hours = file_hours(config)
    pieces = windows(start, end, hours)
    write_s = backfill_s = 0.0
    text_bytes = 0
    try:
        tsdb = build / "tsdb"
        for i, (a, b) in enumerate(pieces, 1):
            t0 = time.perf_counter()
            files = write_openmetrics(fleet, build / f"om-{i}", signals=signals, start=a, end=b)
            t1 = time.perf_counter()
            text_bytes += sum(f.stat().st_size for f in files)
            backfill_prometheus_tsdb(files, tsdb)
            t2 = time.perf_counter()
            shutil.rmtree(build / f"om-{i}")
            write_s += t1 - t0
            backfill_s += t2 - t1
            log(
                f"  tsdb {final.name}: file {i}/{len(pieces)} "
                f"written {t1 - t0:.0f}s, backfilled {t2 - t1:.0f}s"
            )
        seconds = time.perf_counter() - began
        info: dict[str, object] = {
            "containers": config.containers,
            "days": config.days,
            "scrape_interval": config.scrape_interval,
            "signals": list(signals),
            "hours_per_file": hours,
            "files": len(pieces),
            "openmetrics_bytes": text_bytes,
            "write_seconds": round(write_s, 1),
            "backfill_seconds": round(backfill_s, 1),
            "build_seconds": round(seconds, 1),
            "tsdb_bytes": sum(p.stat().st_size for p in tsdb.rglob("*") if p.is_file()),
            "sim_code_hash": sim_code_hash(),
        }
        (tsdb / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
        try:
            tsdb.rename(final)
        except OSError:
            # Another process finished the same key first; its result is as good as ours.
            if not (final / BUILD_INFO).is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return BenchFleet(fleet, final, start, end, seconds, info)
