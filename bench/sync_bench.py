"""The sync benchmark: ``imagetrail sync`` against the naive dense reading, side by side.

For each fleet size, a generated week of kube-state-metrics series in a real Prometheus
(cached TSDB, see :mod:`bench.tsdb`); each method runs in its own process
(:mod:`bench.runner`) so wall time and peak RSS are its own; requests and wire bytes come
from the child's :class:`PromClient` counters. Both methods must find the same spans (same
keys, edges within one scrape interval), and both are checked against the simulator's
ground truth. Prometheus' page cache is warmed before the first method, and the order of
the methods alternates from one size (and repeat) to the next.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._paths import REPO, RESULTS  # also puts tests/ on sys.path
from bench.agree import against_truth, agree
from bench.measure import measure, report_header
from bench.naive import DEFAULT_CHUNK
from bench.runner import SCRAPE_INTERVAL, span_from_json
from bench.tsdb import BenchFleet, bench_config, build_tsdb
from imagetrail.model import Span
from imagetrail.sources.promapi import PromClient, PromConfig
from servers import Server, start_prometheus

DAY = 86400.0
MB = 1_000_000
DEFAULT_SIZES = (250, 1000, 2000)
TARGET_AT = 1000
TARGET_TIME_RATIO = 10.0
TARGET_BYTES_RATIO = 20.0
METHODS = ("imagetrail", "naive", "naive-grid")
NAIVE_METHODS = ("naive", "naive-grid")
# Compaction of the backfilled blocks would run in the background while a method is
# measured; with a single block range Prometheus plans none.
PROMETHEUS_ARGS = (
    "--storage.tsdb.min-block-duration=2h",
    "--storage.tsdb.max-block-duration=2h",
)
WARM_METRICS = (
    "kube_pod_container_info",
    "kube_pod_container_status_running",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_terminated",
    "kube_pod_owner",
    "kube_replicaset_owner",
    "kube_job_owner",
)

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run of one method."""

    method: str
    wall_seconds: float
    peak_rss_mib: float
    requests: int | None
    bytes_received: int | None
    spans: list[Span] = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


def snapshot_source(dest: Path) -> dict[str, Any]:
    """Copy ``src/imagetrail`` to ``dest/imagetrail``; what was copied (commit, changes, hash).

    The children import imagetrail from the copy, so that every method of one run measures
    the same code even while the working tree changes under the benchmark.
    """
    src = REPO / "src" / "imagetrail"
    shutil.copytree(src, dest / "imagetrail", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted((dest / "imagetrail").rglob("*.py")):
        digest.update(str(path.relative_to(dest)).encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {
        "git_head": git("rev-parse", "HEAD"),
        "uncommitted_in_src": git("status", "--porcelain", "--", "src").splitlines(),
        "sha256_of_src": digest.hexdigest()[:16],
    }


def run_method(
    method: str,
    url: str,
    start: float,
    end: float,
    workdir: Path,
    *,
    source: Path | None = None,
) -> Run:
    """One method in a child process (:mod:`bench.runner`), imagetrail from ``source``."""
    out = workdir / f"{method}.json"
    argv = [sys.executable, "-m", "bench.runner", method, url, repr(start), repr(end), str(out)]
    env = None
    if source is not None:
        env = {"PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")])}
    wall = measure(argv, cwd=REPO, env=env)
    data = json.loads(out.read_text())
    out.unlink()
    spans = [span_from_json(s) for s in data.pop("spans")]
    return Run(
        method,
        wall,
        data.pop("peak_rss_mib"),
        data.pop("requests", None),
        data.pop("bytes_received", None),
        spans,
        extra=data,
    )


def warm_up(url: str, start: float, end: float) -> float:
    """Read every sample both methods read once, so the page cache favours neither."""
    began = time.perf_counter()
    with PromClient(PromConfig(url=url, timeout=300.0)) as client:
        t = start
        while t < end:
            b = min(end, t + DAY)
            for metric in WARM_METRICS:
                client.query(f"count(count_over_time({metric}[{int(b - t)}s]))", time=b)
            t = b
    return time.perf_counter() - began


def _summary(runs: list[Run]) -> dict[str, Any]:
    walls = [r.wall_seconds for r in runs]
    last = runs[-1]
    return {
        "wall_seconds": round(statistics.median(walls), 3),
        "wall_seconds_all": [round(w, 3) for w in walls],
        "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1),
        "requests": last.requests,
        "bytes_received": last.bytes_received,
        "spans": len(last.spans),
        **{k: v for k, v in last.extra.items() if k not in ("method",)},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def _ratios(base: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    return {
        "wall_time": _ratio(other["wall_seconds"], base["wall_seconds"]),
        "bytes": _ratio(other["bytes_received"], base["bytes_received"]),
        "queries": _ratio(other["requests"], base["requests"]),
        "peak_rss": _ratio(other["peak_rss_mib"], base["peak_rss_mib"]),
    }


def bench_size(
    containers: int,
    *,
    source: Path,
    days: int,
    repeat: int,
    rotate: int,
    with_cli: bool,
    log: Log,
) -> dict[str, Any]:
    """Every method on one fleet size; the result record of that size."""
    log(f"fleet of {containers} containers: preparing the TSDB (cached after the first run)")
    t0 = time.perf_counter()
    bf: BenchFleet = build_tsdb(bench_config(containers, days), log=log)
    prepared = time.perf_counter() - t0
    log(f"  TSDB ready in {prepared:.0f}s ({'built' if bf.build_seconds else 'cached'})")
    truth = bf.fleet.spans()
    record: dict[str, Any] = {
        "containers": containers,
        "pods": len(bf.fleet.pods),
        "distinct_images": len({s.version for s in truth}),
        "ground_truth_spans": len(truth),
        "window": {"start": bf.start, "end": bf.end, "days": days},
        "tsdb": bf.build_info,
        "tsdb_built_this_run": bf.build_seconds is not None,
    }
    runs: dict[str, list[Run]] = {m: [] for m in METHODS}
    # Other work on the machine slows every method; the load average shows how much there was.
    record["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    server: Server = start_prometheus(bf.tsdb, extra_args=PROMETHEUS_ARGS)
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-bench-"))
    try:
        record["warm_up_seconds"] = round(warm_up(server.url, bf.start, bf.end), 1)
        log(f"  warmed the page cache in {record['warm_up_seconds']}s")
        for k in range(repeat):
            # Rotate who goes first from one size and repeat to the next.
            shift = (rotate + k) % len(METHODS)
            for method in (*METHODS[shift:], *METHODS[:shift]):
                run = run_method(method, server.url, bf.start, bf.end, workdir, source=source)
                runs[method].append(run)
                log(
                    f"  {method:<10} {run.wall_seconds:7.1f}s "
                    f"{(run.bytes_received or 0) / MB:9.2f} MB {run.requests:6} queries "
                    f"{run.peak_rss_mib:7.0f} MiB RSS {len(run.spans):6} spans"
                )
        if with_cli:
            cli = run_method("cli", server.url, bf.start, bf.end, workdir, source=source)
            runs["cli"] = [cli]
            log(f"  {'cli':<10} {cli.wall_seconds:7.1f}s {cli.peak_rss_mib:7.0f} MiB RSS")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    methods = {name: _summary(rs) for name, rs in runs.items()}
    record["methods"] = methods
    record["ratios_over_imagetrail"] = {
        name: _ratios(methods["imagetrail"], methods[name]) for name in NAIVE_METHODS
    }
    last = {name: rs[-1] for name, rs in runs.items()}
    it = last["imagetrail"]
    record["agreement"] = {}
    for name in (*NAIVE_METHODS, "cli"):
        if name in last:
            ag = agree(it.spans, last[name].spans, tolerance=SCRAPE_INTERVAL)
            record["agreement"][name] = {**asdict(ag), "same": ag.same}
            log(
                f"  imagetrail vs {name}: {'same spans' if ag.same else 'DIFFERENT'} "
                f"({ag.common} common, {ag.only_left} only imagetrail, {ag.only_right} only "
                f"{name}, max edge difference "
                f"{max(ag.max_first_diff, ag.max_last_diff):.0f} s)"
            )
    record["ground_truth"] = {
        name: asdict(
            against_truth(last[name].spans, bf.fleet, bf.start, bf.end, tolerance=tolerance)
        )
        for name, tolerance in (
            ("imagetrail", SCRAPE_INTERVAL),
            ("naive", SCRAPE_INTERVAL),
            # step times: up to one step after the sample, which is up to one after the truth
            ("naive-grid", 2 * SCRAPE_INTERVAL),
        )
    }
    return record


def prometheus_version() -> str:
    """The version line of the Prometheus binary the benchmark runs."""
    binary = shutil.which("prometheus") or "prometheus"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    days: int = 7,
    repeat: int = 1,
    with_cli: bool = True,
    results: Path = RESULTS,
    command: str = "python -m bench",
    log: Log = print,
) -> dict[str, Any]:
    """The whole benchmark; writes ``sync.json`` and ``sync.md`` into ``results``."""
    began = time.perf_counter()
    # Stop cleanly on SIGTERM too: the finally blocks stop Prometheus by its pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    snapshot = Path(tempfile.mkdtemp(prefix="imagetrail-bench-src-"))
    try:
        code = snapshot_source(snapshot)
        log(f"imagetrail at {code['git_head'][:12]} (+{len(code['uncommitted_in_src'])} changed)")
        records = [
            bench_size(
                n,
                source=snapshot,
                days=days,
                repeat=repeat,
                rotate=i,
                with_cli=with_cli,
                log=log,
            )
            for i, n in enumerate(sizes)
        ]
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    report: dict[str, Any] = {
        **report_header(
            "sync",
            command,
            began,
            code,
            {"python": platform.python_version(), "prometheus": prometheus_version()},
        ),
        "setup": {
            "signal": "ksm",
            "days": days,
            "scrape_interval_seconds": SCRAPE_INTERVAL,
            "imagetrail": "sync_once into a new SQLite ledger: default 7 d chunks, concurrency 2, "
            "1 h presence buckets, refine at the edges",
            "naive": f"dense query_range at step {SCRAPE_INTERVAL:.0f} s of the started and "
            f"not-terminated sample times (timestamp()), chunks of {DEFAULT_CHUNK / 3600:.0f} h, "
            "2 concurrent; images and owners by the same instant queries as imagetrail",
            "naive-grid": "as naive, but last_over_time(x[30s]) filters and the step times as "
            "edges (cheaper for Prometheus, edges up to one step late)",
            "prometheus_args": list(PROMETHEUS_ARGS),
            "repeat": repeat,
        },
        "targets": _targets(records),
        "sizes": records,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "sync.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / "sync.md").write_text(markdown(report))
    return report


def _targets(records: list[dict[str, Any]]) -> dict[str, Any]:
    at = next((r for r in records if r["containers"] == TARGET_AT), None)
    out: dict[str, Any] = {
        "at_containers": TARGET_AT,
        "wall_time_ratio_min": TARGET_TIME_RATIO,
        "bytes_ratio_min": TARGET_BYTES_RATIO,
        "measured": at is not None,
    }
    if at is None:
        return out
    for name in NAIVE_METHODS:
        ratios = at["ratios_over_imagetrail"][name]
        out[name] = {
            "wall_time_ratio": ratios["wall_time"],
            "bytes_ratio": ratios["bytes"],
            "wall_time_met": (ratios["wall_time"] or 0) >= TARGET_TIME_RATIO,
            "bytes_met": (ratios["bytes"] or 0) >= TARGET_BYTES_RATIO,
        }
    return out


def _fmt_bytes(n: int | None) -> str:
    return "–" if n is None else f"{n / MB:,.2f}"


def rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows: one per size and method, then each naive way ÷ imagetrail."""
    out: list[list[str]] = []
    for rec in report["sizes"]:
        for name, m in rec["methods"].items():
            out.append(
                [
                    f"{rec['containers']:,}",
                    name,
                    f"{m['wall_seconds']:,.1f}",
                    _fmt_bytes(m["bytes_received"]),
                    "–" if m["requests"] is None else f"{m['requests']:,}",
                    f"{m['peak_rss_mib']:,.0f}",
                    f"{m['spans']:,}",
                ]
            )
        for name, r in rec["ratios_over_imagetrail"].items():
            same = rec["agreement"][name]["same"]
            out.append(
                [
                    f"{rec['containers']:,}",
                    f"{name} ÷ imagetrail",
                    f"{r['wall_time']}×",
                    f"{r['bytes']}×",
                    f"{r['queries']}×",
                    f"{r['peak_rss']}×",
                    "same" if same else "DIFFERENT",
                ]
            )
    return out


HEADER = ["containers", "method", "wall s", "MB received", "queries", "peak RSS MiB", "spans"]


def markdown(report: dict[str, Any]) -> str:
    """The short Markdown table of ``sync.md``."""
    lines = [
        "# Sync benchmark: `imagetrail sync` vs. the naive dense reading",
        "",
        f"Generated {report['generated']} by `{report['command']}` "
        f"({report['machine']['cpus']} CPUs, {report['machine']['prometheus']}). "
        f"{report['setup']['days']} days at {report['setup']['scrape_interval_seconds']:.0f} s "
        "scrape; details and method in docs/benchmarks.md, every number in sync.json.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---:" if i != 1 else "---" for i in range(len(HEADER))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(report)]
    lines += ["", *_target_lines(report["targets"])]
    lines += [
        "",
        "Agreement with imagetrail (same span keys, both edges within 30 s) and with the "
        "simulator's ground truth (spans found exactly / checkable):",
        "",
    ]
    for rec in report["sizes"]:
        gt = rec["ground_truth"]
        parts = []
        for name, ag in rec["agreement"].items():
            parts.append(
                f"{name} {'same' if ag['same'] else 'DIFFERENT'} "
                f"({ag['only_left']}/{ag['only_right']} unmatched, max edge difference "
                f"{max(ag['max_first_diff'], ag['max_last_diff']):.0f} s)"
            )
        truth = ", ".join(f"{n} {g['exact']}/{g['checkable']}" for n, g in gt.items())
        lines.append(f"- {rec['containers']:,} containers: {'; '.join(parts)}. Truth: {truth}.")
    return "\n".join(lines) + "\n"


def _target_lines(t: dict[str, Any]) -> list[str]:
    if not t["measured"]:
        return [f"Targets are set at {t['at_containers']:,} containers: not measured in this run."]
    out = [
        f"Targets at {t['at_containers']:,} containers: ≥ {t['wall_time_ratio_min']:.0f}× less "
        f"time and ≥ {t['bytes_ratio_min']:.0f}× fewer bytes than naive."
    ]
    for name in NAIVE_METHODS:
        m = t[name]
        out.append(
            f"- vs {name}: time {m['wall_time_ratio']}× "
            f"({'met' if m['wall_time_met'] else 'MISSED'}), bytes {m['bytes_ratio']}× "
            f"({'met' if m['bytes_met'] else 'MISSED'})"
        )
    return out


def print_table(report: dict[str, Any]) -> None:
    """The results as a rich table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="imagetrail sync vs. naive dense reading")
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i == 1 else "right")
    for row in rows(report):
        table.add_row(*row, style="bold" if "÷" in row[1] else None)
    console = Console()
    console.print(table)
    for line in _target_lines(report["targets"]):
        console.print(line)
