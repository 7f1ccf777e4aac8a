"""The web benchmark: the heatmap from the ledger vs. the original panel, latency, browser, load.

1. **Ledger vs. panel** (1,000 containers, 7 days): ``/api/v1/heatmap`` through HTTP from a
   real ``imagetrail`` web server (its own process, :mod:`bench.web_child`) over a ledger the
   simulator filled, side by side with the same heatmap computed live from a real
   Prometheus the panel's way (``QueryContext.panel_heatmap``: ``count(rate(
   container_cpu_usage_seconds_total{image!=""}[…])) by (image)``, same range, step and
   filters) on the same fleet's cAdvisor series. Requests interleaved, order alternating.
2. **A month of a big fleet** (2,000 containers, 30 days, no Prometheus): heatmap latency.
3. **Chromium**: time from navigation start to a drawn fleet heatmap, both ledgers.
4. **Load**: 32 concurrent clients for 30 s on the big ledger's server.

Results: ``bench/results/web.json`` (every figure) and ``web.md`` (the table).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from bench._paths import REPO, RESULTS  # also puts tests/ on sys.path
from bench.measure import report_header
from bench.sync_bench import PROMETHEUS_ARGS, prometheus_version, snapshot_source
from bench.tsdb import bench_config, build_tsdb
from bench.web_mix import HeatmapCase, heatmap_mix, load_mix
from bench.web_report import write_results
from bench.web_stats import column_totals, ratio, request_histograms, since, summarize
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.service.sync import rederive_changes
from imagetrail.sim import Fleet, simulate
from servers import Server, launch, start_prometheus

Log = Callable[[str], None]
TARGET_RATIO = 20.0  # the panel's time ÷ the ledger's, at p50 and at p99
TARGET_P99_MS = 100.0  # a month of 2,000 containers
PANEL_SIGNALS = ("cadvisor",)  # the panel reads cAdvisor only
SYNC_KEY = "bench|simulator|"
HEATMAP_ROUTE = "/api/v1/heatmap"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What the web benchmark runs (the issue's sizes by default)."""

    compare_containers: int = 1000
    compare_days: int = 7
    big_containers: int = 2000
    big_days: int = 30
    rounds: int = 5  # repetitions of the heatmap mix, ledger vs. panel
    big_rounds: int = 10  # repetitions of the heatmap mix on the month
    browser_loads: int = 5
    load_clients: int = 32
    load_seconds: float = 30.0
    browser: bool = True
    transport_check: bool = True


def web_config_from(
    *, rounds: int | None = None, load_seconds: float | None = None, browser: bool = True
) -> WebConfig:
    """The config of ``python -m bench``'s flags: ``rounds`` for the comparison, twice as
    many on the month (its requests are fewer and cheaper)."""
    cfg = WebConfig(browser=browser)
    if rounds is not None:
        cfg = replace(cfg, rounds=rounds, big_rounds=2 * rounds)
    if load_seconds is not None:
        cfg = replace(cfg, load_seconds=load_seconds)
    return cfg


# -- building ----------------------------------------------------------------------------------


def fill_ledger(fleet: Fleet, path: Path) -> dict[str, Any]:
    """Record the simulator's ground truth in a new ledger at ``path`` (as the demo does)."""
    began = time.perf_counter()
    spans = fleet.spans()
    with Ledger.open(path) as ledger:
        ledger.merge_spans(
            spans, sync_key=SYNC_KEY, synced_from=fleet.config.start, synced_until=fleet.end
        )
        changes = rederive_changes(ledger, tolerance=2 * fleet.config.scrape_interval)
    return {
        "spans": len(spans),
        "changes": changes,
        "pods": len(fleet.pods),
        "distinct_images": len({s.image for s in spans}),
        "ledger_bytes": sum(
            p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()
        ),
        "fill_seconds": round(time.perf_counter() - began, 1),
    }


def fleet_facts(fleet: Fleet) -> dict[str, Any]:
    """Clusters, namespaces and a workload to filter by (what the request mix needs)."""
    pods = fleet.pods
    deployments = sorted({p.workload for p in pods if p.workload_kind == "Deployment"})
    return {
        "clusters": sorted({p.cluster for p in pods}),
        "namespaces": sorted({p.namespace for p in pods}),
        "workload": deployments[0] if deployments else None,
    }


# -- servers -----------------------------------------------------------------------------------


def start_web(
    ledger: Path, *, source: Path | None, tcp_proto: bool = False, timeout: float = 60.0
) -> Server:
    """``imagetrail``'s web server over ``ledger`` on a free loopback port, ready at /healthz.

    ``tcp_proto``: the experiment of :mod:`bench.web_child` (listener made with IPPROTO_TCP).
    """
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-web-bench-"))
    child = REPO / "bench" / "web_child.py"

    def argv(port: int) -> list[str]:
        out = [sys.executable, str(child), str(ledger), "--port", str(port)]
        out += ["--source", str(source)] if source is not None else []
        return out + (["--tcp-proto"] if tcp_proto else [])

    def ready(server: Server) -> bool:
        return httpx.get(f"{server.url}/healthz", timeout=2.0).status_code == 200

    return launch(
        "imagetrail-web",
        workdir,
        argv,
        lambda port: f"http://127.0.0.1:{port}",
        ready,
        timeout=timeout,
    )


def server_process(client: httpx.Client) -> dict[str, float]:
    """The server's own resident memory and CPU seconds, from its ``/metrics``."""
    text = client.get("/metrics").text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            out["rss_mib"] = round(float(line.split()[1]) / 2**20, 1)
        elif line.startswith("process_cpu_seconds_total "):
            out["cpu_seconds"] = round(float(line.split()[1]), 2)
    return out


def app_durations(client: httpx.Client) -> dict[str, Any]:
    """The app's request-duration histograms (by route), as parsed from ``/metrics``."""
    return request_histograms(client.get("/metrics").text)


# -- measuring -----------------------------------------------------------------------------


def get_heatmap(client: httpx.Client, case: HeatmapCase) -> tuple[float, dict[str, Any]]:
    """One ``/api/v1/heatmap`` request: seconds until the whole body arrived, and the answer."""
    began = time.perf_counter()
    response = client.get(HEATMAP_ROUTE, params=list(case.params()))
    body = response.content
    seconds = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{case.name}: HTTP {response.status_code}: {body[:300]!r}")
    answer: dict[str, Any] = json.loads(body)
    return seconds, answer


def panel_context(prometheus_url: str, workdir: Path) -> QueryContext:
    """The app's query context pointed at ``prometheus_url``, settings from no environment."""
    resolved = settings_mod.load(
        {"prometheus_url": prometheus_url, "ledger": str(workdir / "unused.db")},
        environ={},
        config_path=_empty_config(workdir),
    )
    return QueryContext(resolved)


def _empty_config(workdir: Path) -> Path:
    path = workdir / "imagetrail.yaml"
    path.write_text("")
    return path


def picture(times: int, counts: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Rows, columns and the median column total of a heatmap (a sanity check, not a test)."""
    totals = column_totals(counts, times)
    return {
        "rows": len(counts),
        "columns": times,
        "median_column_total": statistics.median(totals) if totals else 0,
    }


def _mix_record(case: HeatmapCase, step: float | None) -> dict[str, Any]:
    return {
        "name": case.name,
        "params": dict(case.params()),
        "step_seconds": step,
        "panel_comparable": case.panel_comparable,
    }


def compare_phase(
    cfg: WebConfig, *, source: Path, workdir: Path, log: Log, tsdb_cache: Path | None = None
) -> dict[str, Any]:
    """Ledger (HTTP) vs. panel (live Prometheus) on the same fleet, interleaved."""
    config = bench_config(cfg.compare_containers, cfg.compare_days)
    log(f"ledger vs. panel: {cfg.compare_containers} containers, {cfg.compare_days} days")
    t0 = time.perf_counter()
    cache = {} if tsdb_cache is None else {"cache_root": tsdb_cache}
    bf = build_tsdb(config, signals=PANEL_SIGNALS, log=log, **cache)
    log(
        f"  cAdvisor TSDB ready in {time.perf_counter() - t0:.0f}s "
        f"({'built' if bf.build_seconds else 'cached'})"
    )
    ledger_path = workdir / f"ledger-{cfg.compare_containers}.db"
    ledger_info = fill_ledger(bf.fleet, ledger_path)
    log(f"  ledger filled: {ledger_info['spans']} spans in {ledger_info['fill_seconds']}s")
    facts = fleet_facts(bf.fleet)
    cases = heatmap_mix(
        bf.start, bf.end, clusters=facts["clusters"], namespaces=facts["namespaces"]
    )
    record: dict[str, Any] = {
        "containers": cfg.compare_containers,
        "days": cfg.compare_days,
        "window": {"start": bf.start, "end": bf.end},
        "ledger": ledger_info,
        "tsdb": bf.build_info,
        "tsdb_built_this_run": bf.build_seconds is not None,
        "rounds": cfg.rounds,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    web = start_web(ledger_path, source=source)
    prom = start_prometheus(bf.tsdb, extra_args=PROMETHEUS_ARGS)
    try:
        qc = panel_context(prom.url, workdir)
        with httpx.Client(base_url=web.url, timeout=300.0) as client:
            # Warm-up, not measured: page cache, imports, connections; the API's step is
            # the one the panel is asked for.
            steps: dict[str, float] = {}
            pictures: dict[str, Any] = {}
            for case in cases:
                _, answer = get_heatmap(client, case)
                steps[case.name] = float(answer["step"])
                panel = qc.panel_heatmap(case.panel_query(steps[case.name]))
                if case is cases[0]:
                    pictures = {
                        "ledger": picture(len(answer["times"]), answer["counts"]),
                        "panel": picture(len(panel.times), panel.counts),
                    }
            before = app_durations(client)
            api_s: dict[str, list[float]] = {c.name: [] for c in cases}
            panel_s: dict[str, list[float]] = {c.name: [] for c in cases}
            for r in range(cfg.rounds):
                order = cases if r % 2 == 0 else cases[::-1]
                for i, case in enumerate(order):
                    sides = ("api", "panel") if (r + i) % 2 == 0 else ("panel", "api")
                    for side in sides:
                        if side == "api":
                            api_s[case.name].append(get_heatmap(client, case)[0])
                        else:
                            query = case.panel_query(steps[case.name])
                            began = time.perf_counter()
                            qc.panel_heatmap(query)
                            panel_s[case.name].append(time.perf_counter() - began)
                log(
                    f"  round {r + 1}/{cfg.rounds}: ledger p50 "
                    f"{summarize(_flat(api_s))['p50_ms']} ms, panel p50 "
                    f"{summarize(_flat(panel_s))['p50_ms']} ms"
                )
            app = since(app_durations(client), before).get(HEATMAP_ROUTE)
            record["server_process"] = server_process(client)
        if cfg.browser:
            log(f"  Chromium: time to a drawn heatmap of {cfg.compare_days} days")
            record["browser"] = browse(web.url, bf.start, bf.end, cfg.browser_loads, log)
    finally:
        prom.stop()
        web.stop()
    all_api = _flat(api_s)
    all_panel = _flat(panel_s)
    api, pan = summarize(all_api), summarize(all_panel)
    record["mix"] = [_mix_record(c, steps[c.name]) for c in cases]
    record["cases"] = {
        c.name: {
            "ledger_api": summarize(api_s[c.name]),
            "panel": summarize(panel_s[c.name]),
            "ratio_p50": ratio(_p(panel_s[c.name], "p50_ms"), _p(api_s[c.name], "p50_ms")),
        }
        for c in cases
    }
    record["ledger_api"] = api
    record["ledger_api_app_measured"] = app.summary() if app is not None else None
    record["panel"] = pan
    record["panel_query_example"] = _panel_query_text(qc, cases[0], steps[cases[0].name])
    record["ratio_p50"] = ratio(pan["p50_ms"], api["p50_ms"])
    record["ratio_p99"] = ratio(pan["p99_ms"], api["p99_ms"])
    record["pictures_full_range"] = pictures
    record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    log(
        f"  ledger p50/p99 {api['p50_ms']}/{api['p99_ms']} ms, panel "
        f"{pan['p50_ms']}/{pan['p99_ms']} ms: {record['ratio_p50']}× at p50, "
        f"{record['ratio_p99']}× at p99"
    )
    return record


def _flat(by_case: dict[str, list[float]]) -> list[float]:
    return [x for xs in by_case.values() for x in xs]


def _p(seconds: list[float], key: str) -> float | None:
    value = summarize(seconds).get(key)
    return None if value is None else float(value)


def _panel_query_text(qc: QueryContext, case: HeatmapCase, step: float) -> str:
    with qc.prometheus_source(case.panel_query(step), include_sandbox=True) as source:
        return source.panel_query(step)


def big_phase(cfg: WebConfig, *, source: Path, workdir: Path, log: Log) -> dict[str, Any]:
    """A month of a big fleet from the ledger alone: latency, browser, load, profile."""
    config = bench_config(cfg.big_containers, cfg.big_days)
    log(f"a month from the ledger: {cfg.big_containers} containers, {cfg.big_days} days")
    fleet = simulate(config)
    ledger_path = workdir / f"ledger-{cfg.big_containers}.db"
    ledger_info = fill_ledger(fleet, ledger_path)
    log(f"  ledger filled: {ledger_info['spans']} spans in {ledger_info['fill_seconds']}s")
    facts = fleet_facts(fleet)
    start, end = config.start, fleet.end
    cases = heatmap_mix(
        start,
        end,
        clusters=facts["clusters"],
        namespaces=facts["namespaces"],
        workload=facts["workload"],
    )
    record: dict[str, Any] = {
        "containers": cfg.big_containers,
        "days": cfg.big_days,
        "window": {"start": start, "end": end},
        "ledger": ledger_info,
        "rounds": cfg.big_rounds,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    web = start_web(ledger_path, source=source)
    try:
        with httpx.Client(base_url=web.url, timeout=300.0) as client:
            steps = {c.name: float(get_heatmap(client, c)[1]["step"]) for c in cases}  # warm-up
            before = app_durations(client)
            times: dict[str, list[float]] = {c.name: [] for c in cases}
            for r in range(cfg.big_rounds):
                for case in cases if r % 2 == 0 else cases[::-1]:
                    times[case.name].append(get_heatmap(client, case)[0])
            app = since(app_durations(client), before).get(HEATMAP_ROUTE)
            record["server_process_after_latency"] = server_process(client)
            everything = _flat(times)
            record["mix"] = [_mix_record(c, steps[c.name]) for c in cases]
            record["cases"] = {name: summarize(ts) for name, ts in times.items()}
            record["heatmap"] = summarize(everything)
            record["heatmap_app_measured"] = app.summary() if app is not None else None
            h = record["heatmap"]
            log(
                f"  heatmap p50/p95/p99 {h['p50_ms']}/{h['p95_ms']}/{h['p99_ms']} ms "
                f"over {h['n']} requests"
            )
            if cfg.browser:
                log(f"  Chromium: time to a drawn heatmap of {cfg.big_days} days")
                record["browser"] = browse(web.url, start, end, cfg.browser_loads, log)
            log(f"  load: {cfg.load_clients} clients for {cfg.load_seconds:.0f}s")
            from bench.web_load import run_load

            mix = load_mix(start, end, clusters=facts["clusters"], namespaces=facts["namespaces"])
            before = app_durations(client)
            load = run_load(web.url, mix, clients=cfg.load_clients, seconds=cfg.load_seconds)
            summary = load.summary()
            summary["mix"] = [
                {"kind": m.kind, "path": m.path, "params": dict(m.params)} for m in mix
            ]
            summary["app_measured_by_route"] = {
                route: h.summary() for route, h in since(app_durations(client), before).items()
            }
            summary["server_process_after"] = server_process(client)
            record["load"] = summary
            log(
                f"  load: {summary['requests']} requests, {summary['requests_per_second']}/s, "
                f"p50 {summary['latency'].get('p50_ms')} ms, p99 "
                f"{summary['latency'].get('p99_ms')} ms, {summary['errors']} errors"
            )
    finally:
        web.stop()
    if cfg.transport_check:
        log("  the listening socket as shipped vs. made with IPPROTO_TCP (TCP_NODELAY)")
        record["transport_check"] = transport_check(
            ledger_path, [cases[0], cases[-2]], source=source, repeat=5, log=log
        )
    record["profile_full_range"] = profile_heatmap(ledger_path, cases[0], workdir)
    record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return record


def transport_check(
    ledger_path: Path, cases: Sequence[HeatmapCase], *, source: Path, repeat: int, log: Log
) -> dict[str, Any]:
    """The same requests from the server as shipped and from one whose listening socket is
    made with ``IPPROTO_TCP`` (so asyncio sets ``TCP_NODELAY``; see :mod:`bench.web_child`).

    The smallest answer (``/healthz``) shows the fixed cost per keep-alive request; the
    heatmap cases how much of their time it is.
    """
    out: dict[str, Any] = {"cases": [c.name for c in cases], "repeat": repeat}
    for variant, tcp_proto in (("as_shipped", False), ("ipproto_tcp_listener", True)):
        web = start_web(ledger_path, source=source, tcp_proto=tcp_proto)
        try:
            with httpx.Client(base_url=web.url, timeout=300.0) as client:
                for case in cases:
                    get_heatmap(client, case)  # warm-up
                small: list[float] = []
                for _ in range(5 * repeat):
                    began = time.perf_counter()
                    client.get("/healthz").raise_for_status()
                    small.append(time.perf_counter() - began)
                heat = [get_heatmap(client, c)[0] for _ in range(repeat) for c in cases]
        finally:
            web.stop()
        out[variant] = {"healthz": summarize(small), "heatmap": summarize(heat)}
        log(
            f"  {variant}: /healthz p50 {out[variant]['healthz']['p50_ms']} ms, "
            f"heatmap p50 {out[variant]['heatmap']['p50_ms']} ms"
        )
    return out


def browse(url: str, start: float, end: float, loads: int, log: Log) -> dict[str, Any]:
    """Time to a drawn heatmap of ``[start, end]`` (or why it was not measured)."""
    from bench.web_browser import available, time_to_heatmap

    if not available():
        return {"measured": False, "why": "no /usr/bin/chromium or no playwright package"}
    page = f"{url}/?from={int(start)}&to={int(end)}"
    return {"measured": True, **time_to_heatmap(page, loads=loads, log=log)}


def profile_heatmap(ledger_path: Path, case: HeatmapCase, workdir: Path) -> dict[str, Any]:
    """Where the time of one heatmap answer goes: cProfile in this process, over the app's own
    state (:class:`imagetrail.web.state.AppState`, whatever caches it keeps) on the same
    ledger, after one unprofiled answer."""
    from imagetrail.web.state import AppState

    resolved = settings_mod.load(
        {"ledger": str(ledger_path)}, environ={}, config_path=_empty_config(workdir)
    )
    params = dict(case.params())
    with Ledger.open(ledger_path, create=False) as ledger:
        app_state = AppState(resolved, ledger, sync=False)
        query = Query(window=Window(start=case.start, end=case.end))
        points = max(10, case.width // 6)  # as the API turns a width into columns
        began = time.perf_counter()
        app_state.context.heatmap_answer(query, points=points, sandbox=False)
        first = time.perf_counter() - began
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        app_state.context.heatmap_answer(query, points=points, sandbox=False)
        profiler.disable()
        total = time.perf_counter() - began
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short_path(filename)}:{line}({func})",
                "calls": ncalls,
                "own_ms": round(1000 * tottime, 1),
                "cumulative_ms": round(1000 * cumtime, 1),
            }
        )
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return {
        "request": params,
        "first_answer_seconds": round(first, 3),
        "seconds_under_profiler": round(total, 3),
        "top_cumulative": rows[:25],
        "top_own": sorted(rows, key=lambda r: r["own_ms"], reverse=True)[:12],
    }


def _short_path(filename: str) -> str:
    for marker in ("/src/imagetrail/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- the run -----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of what the measured path runs on."""
    out = {"python": platform.python_version(), "prometheus": prometheus_version()}
    for name in (
        "imagetrail",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "sqlalchemy",
        "prometheus-client",
        "plotly",
        "playwright",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def targets(compare: dict[str, Any] | None, big: dict[str, Any] | None) -> dict[str, Any]:
    """Each target of the issue with its measured value and met/missed."""
    out: dict[str, Any] = {}
    if compare is not None:
        lo = min(
            (x for x in (compare["ratio_p50"], compare["ratio_p99"]) if x is not None),
            default=None,
        )
        out["ledger_vs_panel"] = {
            "target": f"the ledger's heatmap at least {TARGET_RATIO:.0f}× faster than the "
            "panel's live query (p50 and p99)",
            "ratio_min": TARGET_RATIO,
            "ratio_p50": compare["ratio_p50"],
            "ratio_p99": compare["ratio_p99"],
            "met": lo is not None and lo >= TARGET_RATIO,
        }
    if big is not None:
        p99 = big["heatmap"]["p99_ms"]
        out["month_p99"] = {
            "target": f"/api/v1/heatmap p99 ≤ {TARGET_P99_MS:.0f} ms on "
            f"{big['days']} days of {big['containers']:,} containers",
            "p99_ms_max": TARGET_P99_MS,
            "p99_ms": p99,
            "met": p99 <= TARGET_P99_MS,
        }
        if "load" in big:
            out["load_errors"] = {
                "target": "no errors under load",
                "errors": big["load"]["errors"],
                "met": big["load"]["errors"] == 0,
            }
    return out


def run(
    cfg: WebConfig = WebConfig(),
    *,
    phases: Sequence[str] = ("compare", "big"),
    results: Path = RESULTS,
    command: str = "python -m bench --only web",
    log: Log = print,
    tsdb_cache: Path | None = None,
) -> dict[str, Any]:
    """The whole web benchmark; writes ``web.json`` and ``web.md`` into ``results``."""
    began = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    snapshot = Path(tempfile.mkdtemp(prefix="imagetrail-webbench-src-"))
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-webbench-"))
    compare = big = None
    try:
        code = snapshot_source(snapshot)
        log(f"imagetrail at {code['git_head'][:12]} (+{len(code['uncommitted_in_src'])} changed)")
        if "compare" in phases:
            compare = compare_phase(
                cfg, source=snapshot, workdir=workdir, log=log, tsdb_cache=tsdb_cache
            )
        if "big" in phases:
            big = big_phase(cfg, source=snapshot, workdir=workdir, log=log)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        **report_header(
            "web",
            command,
            began,
            code,
            {"note": "shared machine: compare ratios, not absolute times"},
        ),
        "versions": versions(),
        "config": asdict(cfg),
        "setup": {
            "server": "imagetrail.web.server.serve (uvicorn, one process) over a SQLite ledger "
            "filled from the simulator (fleet.spans() + merge_spans + rederive_changes), "
            "on 127.0.0.1; client httpx on the same machine, keep-alive",
            "server_time": "wall time of the HTTP request on loopback until the whole body "
            "arrived (gzip as served); the app's own request-duration histogram is in "
            "*_app_measured (bucket-exact estimates)",
            "panel": "QueryContext.panel_heatmap (the app's code path: a new PromClient, "
            "query_range of the panel's query, the Heatmap built) against Prometheus on the "
            "same fleet's cAdvisor series only; prometheus args " + " ".join(PROMETHEUS_ARGS),
            "warm_up": "every request of the mix once, unmeasured, before measuring",
        },
        "targets": targets(compare, big),
        "ledger_vs_panel": compare,
        "month": big,
    }
    write_results(report, results)
    return report
