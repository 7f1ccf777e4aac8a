"""The impact benchmark: judging changes from Prometheus, and answering from recorded verdicts.

A real Prometheus holds the simulator's ``orders`` namespace (``simdata.impact_sim_data``: a
bad rollout and its rollback, routine upgrades, one rollout too late to judge); a ledger is
synced from it once. Each round, on a fresh copy of that ledger:

- **cold**: ``impacts_for`` over every change (12 range queries per finished change; then
  the final verdicts are recorded in the ledger);
- **recorded**: ``impacts_for`` again (final verdicts read back from the ledger; only the
  change whose after-window is not over is asked of Prometheus again).

Cold and recorded alternate within each round on the same machine, so their ratio holds
even when the shared machine's absolute speed drifts.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._paths import RESULTS  # also puts tests/ on sys.path
from bench.measure import report_header
from bench.sync_bench import prometheus_version, snapshot_source
from imagetrail import settings as settings_mod
from imagetrail.model import Verdict
from imagetrail.service.impact import impacts_for
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.timeutil import format_time
from servers import start_prometheus
from simdata import impact_sim_data, sim_tsdb

Log = Callable[[str], None]


def _context(ledger: Path, prometheus: str) -> QueryContext:
    return QueryContext(
        settings_mod.load({"ledger": str(ledger), "prometheus_url": prometheus}, environ={})
    )


def _timed(qc: QueryContext, query: Query, counter: list[int]) -> tuple[float, list[Verdict]]:
    changes = qc.changes(query)
    counter[0] = 0

    def tick(done: int, total: int) -> None:
        counter[0] = done

    began = time.perf_counter()
    verdicts = [i.verdict for i in impacts_for(qc, changes, progress=tick)]
    return time.perf_counter() - began, verdicts


def run(
    rounds: int = 5,
    *,
    results: Path = RESULTS,
    command: str = "python -m bench --only impact",
    log: Log = print,
) -> dict[str, Any]:
    """Measure, write ``impact.json`` and ``impact.md`` into ``results``, return the report."""
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-impact-bench-"))
    try:
        code = snapshot_source(workdir / "snapshot")
        data = impact_sim_data()
        server = start_prometheus(sim_tsdb(data))
        try:
            synced = workdir / "synced.db"
            qc = _context(synced, server.url)
            with (
                qc.open_ledger() as ledger,
                qc.prometheus_source(Query()) as source,
            ):
                qc.sync(ledger, source, since=data.start, until=data.end)
            query = Query(window=Window(start=data.start, end=data.end))
            changes = len(qc.changes(query))
            cold: list[float] = []
            recorded: list[float] = []
            queries = {"cold": [0], "recorded": [0]}
            verdicts: list[Verdict] = []
            for n in range(rounds):
                copy = workdir / f"round-{n}.db"
                shutil.copyfile(synced, copy)
                round_qc = _context(copy, server.url)
                seconds, verdicts = _timed(round_qc, query, queries["cold"])
                cold.append(seconds)
                again, same = _timed(round_qc, query, queries["recorded"])
                recorded.append(again)
                if same != verdicts:
                    raise RuntimeError(f"recorded verdicts differ: {same} != {verdicts}")
                log(f"round {n + 1}/{rounds}: cold {seconds:.3f}s, recorded {again:.3f}s")
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cold_p50, recorded_p50 = statistics.median(cold), statistics.median(recorded)
    report: dict[str, Any] = {
        **report_header(
            "impact",
            command,
            began,
            code,
            {"note": "shared machine: compare the ratio, not absolute times"},
        ),
        "prometheus": prometheus_version(),
        "setup": {
            "data": "simulator, cluster prod-eu, namespace orders, "
            f"{format_time(data.start)} to {format_time(data.end)}",
            "method": "imagetrail.service.impact.impacts_for in-process, default impact settings, "
            "concurrency 2; cold on a fresh copy of the synced ledger, then recorded on it",
        },
        "changes": changes,
        "verdicts": verdicts,
        "rounds": rounds,
        "cold": {
            "seconds": [round(s, 4) for s in cold],
            "p50": round(cold_p50, 4),
            "per_change_ms": round(1000 * cold_p50 / changes, 1),
            "prometheus_queries": queries["cold"][0],
        },
        "recorded": {
            "seconds": [round(s, 4) for s in recorded],
            "p50": round(recorded_p50, 4),
            "prometheus_queries": queries["recorded"][0],
        },
        "ratio_cold_over_recorded_p50": round(cold_p50 / recorded_p50, 1),
    }
    write_results(report, results)
    return report


def write_results(report: dict[str, Any], results: Path) -> tuple[Path, Path]:
    """``impact.json`` (every figure) and ``impact.md`` (a table) in ``results``."""
    results.mkdir(parents=True, exist_ok=True)
    js, md = results / "impact.json", results / "impact.md"
    js.write_text(json.dumps(report, indent=2) + "\n")
    c, r = report["cold"], report["recorded"]
    md.write_text(
        "# Impact benchmark\n\n"
        f"`{report['command']}`, {report['generated']}, {report['rounds']} rounds, "
        f"{report['changes']} changes ({report['setup']['data']}).\n\n"
        "| | p50 | Prometheus queries |\n|---|---|---|\n"
        f"| cold (judged from Prometheus) | {c['p50'] * 1000:.0f} ms "
        f"({c['per_change_ms']} ms per change) | {c['prometheus_queries']} |\n"
        f"| recorded (verdicts from the ledger) | {r['p50'] * 1000:.0f} ms "
        f"| {r['prometheus_queries']} |\n\n"
        f"Ratio cold / recorded (p50): **{report['ratio_cold_over_recorded_p50']}×**\n"
    )
    return js, md


def print_summary(report: dict[str, Any]) -> None:
    """The figures on stdout."""
    c, r = report["cold"], report["recorded"]
    print(
        f"impact: {report['changes']} changes; cold p50 {c['p50'] * 1000:.0f} ms "
        f"({c['prometheus_queries']} queries), recorded p50 {r['p50'] * 1000:.0f} ms "
        f"({r['prometheus_queries']} queries), ratio {report['ratio_cold_over_recorded_p50']}x"
    )
