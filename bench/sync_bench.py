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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._paths import REPO, RESULTS  # also puts tests/ on sys.path
from bench.agree import against_truth, agree
from bench.naive import DEFAULT_CHUNK
from bench.runner import SCRAPE_INTERVAL, span_from_json
from bench.tsdb import BenchFleet, bench_config, build_tsdb
from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.sources.promapi import PromClient, PromConfig
from servers import Server, start_prometheus

DAY = 86400.0
MB = 1_000_000
DEFAULT_SIZES = (250, 1000, 2000)
TARGET_AT = 1000
TARGET_TIME_RATIO = 10.0
TARGET_BYTES_RATIO = 20.0
CHILD_TIMEOUT = 1200.0  # seconds: a method that takes longer is broken, not slow
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
    peak_rss_mb: float
    requests: int | None
    bytes_received: int | None
    spans: list[Span] = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


class ChildFailed(RuntimeError):
    """A measured process exited non-zero or ran past its time limit."""


def measure(argv: Sequence[str], *, timeout: float = CHILD_TIMEOUT) -> tuple[float, float]:
    """Run ``argv`` from the repo root; (wall seconds, peak RSS MB) of that process alone.

    ``os.wait4`` returns the rusage of exactly the reaped child, where
    ``getrusage(RUSAGE_CHILDREN)`` would give the maximum over every child so far.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    began = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    deadline = began + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise ChildFailed(f"{argv[:4]} ran past {timeout:.0f}s and was killed")
        time.sleep(0.02)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise ChildFailed(f"{argv[:4]} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def run_method(method: str, url: str, start: float, end: float, workdir: Path) -> Run:
    """One method in a child process (:mod:`bench.runner`)."""
    out = workdir / f"{method}.json"
    argv = [sys.executable, "-m", "bench.runner", method, url, repr(start), repr(end), str(out)]
    wall, rss = measure(argv)
    data = json.loads(out.read_text())
    out.unlink()
    spans = [span_from_json(s) for s in data.pop("spans")]
    return Run(
        method, wall, rss, data.pop("requests"), data.pop("bytes_received"), spans, extra=data
    )


def run_cli(url: str, start: float, workdir: Path) -> Run:
    """``imagetrail sync --prometheus URL --since START --ledger FILE``, as a user runs it.

    The CLI has no ``--until``: it reads up to now, so past the simulated week it also reads
    the empty days up to today (two cheap queries each).
    """
    ledger_path = workdir / "cli-ledger.db"
    binary = Path(sys.executable).with_name("imagetrail")
    argv = [
        str(binary),
        "sync",
        "--prometheus",
        url,
        "--since",
        str(int(start)),
        "--signal",
        "ksm",
        "--ledger",
        str(ledger_path),
    ]
    wall, rss = measure(argv)
    with Ledger.open(ledger_path) as ledger:
        spans = ledger.spans()
    ledger_path.unlink()
    return Run("cli", wall, rss, None, None, spans, extra={"until": "now"})


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
        "peak_rss_mb": round(max(r.peak_rss_mb for r in runs), 1),
        "requests": last.requests,
        "bytes_received": last.bytes_received,
        "spans": len(last.spans),
        **{k: v for k, v in last.extra.items() if k not in ("method",)},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def bench_size(
    containers: int,
    *,
    days: int,
    repeat: int,
    flip: bool,
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
    runs: dict[str, list[Run]] = {"imagetrail": [], "naive": []}
    server: Server = start_prometheus(bf.tsdb, extra_args=PROMETHEUS_ARGS)
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-bench-"))
    try:
        record["warm_up_seconds"] = round(warm_up(server.url, bf.start, bf.end), 1)
        log(f"  warmed the page cache in {record['warm_up_seconds']}s")
        order = ["imagetrail", "naive"]
        for k in range(repeat):
            for method in order[::-1] if (k % 2 == 1) ^ flip else order:
                run = run_method(method, server.url, bf.start, bf.end, workdir)
                runs[method].append(run)
                log(
                    f"  {method:<10} {run.wall_seconds:7.1f}s "
                    f"{(run.bytes_received or 0) / MB:9.2f} MB {run.requests:6} queries "
                    f"{run.peak_rss_mb:7.0f} MB RSS {len(run.spans):6} spans"
                )
        if with_cli:
            cli = run_cli(server.url, bf.start, workdir)
            log(f"  {'cli':<10} {cli.wall_seconds:7.1f}s {cli.peak_rss_mb:7.0f} MB RSS")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    it, nv = runs["imagetrail"][-1], runs["naive"][-1]
    methods = {name: _summary(rs) for name, rs in runs.items()}
    if with_cli:
        methods["cli"] = _summary([cli])
    record["methods"] = methods
    record["ratios_naive_over_imagetrail"] = {
        "wall_time": _ratio(
            methods["naive"]["wall_seconds"], methods["imagetrail"]["wall_seconds"]
        ),
        "bytes": _ratio(nv.bytes_received, it.bytes_received),
        "queries": _ratio(nv.requests, it.requests),
        "peak_rss": _ratio(methods["naive"]["peak_rss_mb"], methods["imagetrail"]["peak_rss_mb"]),
    }
    agreement = agree(it.spans, nv.spans, tolerance=SCRAPE_INTERVAL)
    record["agreement"] = {**asdict(agreement), "same": agreement.same}
    if with_cli:
        cli_agreement = agree(it.spans, cli.spans, tolerance=SCRAPE_INTERVAL)
        record["agreement_cli"] = {**asdict(cli_agreement), "same": cli_agreement.same}
    record["ground_truth"] = {
        name: asdict(against_truth(r.spans, bf.fleet, bf.start, bf.end, tolerance=SCRAPE_INTERVAL))
        for name, r in (("imagetrail", it), ("naive", nv))
    }
    log(
        f"  agreement: {'same spans' if agreement.same else 'DIFFERENT'} "
        f"({agreement.common} common, {agreement.only_left} only imagetrail, "
        f"{agreement.only_right} only naive, {agreement.edges_beyond_tolerance} edges > 30 s)"
    )
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
    records = [
        bench_size(n, days=days, repeat=repeat, flip=i % 2 == 1, with_cli=with_cli, log=log)
        for i, n in enumerate(sizes)
    ]
    report: dict[str, Any] = {
        "benchmark": "sync",
        "command": command,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - began, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "prometheus": prometheus_version(),
        },
        "setup": {
            "signal": "ksm",
            "days": days,
            "scrape_interval_seconds": SCRAPE_INTERVAL,
            "imagetrail": "sync_once into a fresh SQLite ledger: chunk 1 d, concurrency 2, "
            "1 h presence buckets, refine at the edges",
            "naive": f"dense query_range at step {SCRAPE_INTERVAL:.0f} s of the started and "
            f"not-terminated sample times, chunks of {DEFAULT_CHUNK / 3600:.0f} h, "
            "2 concurrent; images and owners by the same instant queries as imagetrail",
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
    }
    if at is None:
        out["measured"] = False
        return out
    ratios = at["ratios_naive_over_imagetrail"]
    out |= {
        "measured": True,
        "wall_time_ratio": ratios["wall_time"],
        "bytes_ratio": ratios["bytes"],
        "wall_time_met": (ratios["wall_time"] or 0) >= TARGET_TIME_RATIO,
        "bytes_met": (ratios["bytes"] or 0) >= TARGET_BYTES_RATIO,
    }
    return out


def _fmt_bytes(n: int | None) -> str:
    return "–" if n is None else f"{n / MB:,.2f}"


def rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows: one per size and method, then the naive/imagetrail ratios."""
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
                    f"{m['peak_rss_mb']:,.0f}",
                    f"{m['spans']:,}",
                ]
            )
        r = rec["ratios_naive_over_imagetrail"]
        ag = rec["agreement"]
        out.append(
            [
                f"{rec['containers']:,}",
                "naive ÷ imagetrail",
                f"{r['wall_time']}×",
                f"{r['bytes']}×",
                f"{r['queries']}×",
                f"{r['peak_rss']}×",
                "same" if ag["same"] else "DIFFERENT",
            ]
        )
    return out


HEADER = ["containers", "method", "wall s", "MB received", "queries", "peak RSS MB", "spans"]


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
    t = report["targets"]
    if t["measured"]:
        lines += [
            "",
            f"Targets at {t['at_containers']:,} containers: ≥ {t['wall_time_ratio_min']:.0f}× "
            f"less time — measured {t['wall_time_ratio']}× "
            f"({'met' if t['wall_time_met'] else 'MISSED'}); ≥ {t['bytes_ratio_min']:.0f}× "
            f"fewer bytes — measured {t['bytes_ratio']}× "
            f"({'met' if t['bytes_met'] else 'MISSED'}).",
        ]
    lines += [
        "",
        "Agreement: same span keys and both edges within 30 s between the two methods; "
        "ground truth (simulator) spans found exactly:",
        "",
    ]
    for rec in report["sizes"]:
        ag, gt = rec["agreement"], rec["ground_truth"]
        lines.append(
            f"- {rec['containers']:,} containers: {ag['common']:,} common spans, "
            f"{ag['only_left']} only imagetrail, {ag['only_right']} only naive, "
            f"max edge difference {max(ag['max_first_diff'], ag['max_last_diff']):.0f} s; "
            f"truth {gt['imagetrail']['exact']}/{gt['imagetrail']['checkable']} (imagetrail), "
            f"{gt['naive']['exact']}/{gt['naive']['checkable']} (naive)"
        )
    return "\n".join(lines) + "\n"


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
    t = report["targets"]
    if t["measured"]:
        console.print(
            f"targets at {t['at_containers']:,} containers: time {t['wall_time_ratio']}× "
            f"({'met' if t['wall_time_met'] else 'MISSED'}), bytes {t['bytes_ratio']}× "
            f"({'met' if t['bytes_met'] else 'MISSED'})"
        )
