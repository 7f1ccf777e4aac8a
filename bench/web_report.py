"""Writing the web benchmark's results: ``web.json`` (every figure) and ``web.md`` (a table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.0f}" if float(value) >= 100 else f"{float(value):,.1f}"


def _met(flag: bool) -> str:
    return "met" if flag else "**MISSED**"


def _browser_row(label: str, b: dict[str, Any] | None) -> list[str]:
    if not b:
        return []
    if not b.get("measured"):
        return [f"| {label} | not measured: {b.get('why', '?')} | | | |"]
    api = [r["heatmap_api"] for r in b["runs"] if r.get("heatmap_api")]
    api_ms = sorted(a["end_ms"] - a["start_ms"] for a in api)
    mid = _ms(api_ms[len(api_ms) // 2]) if api_ms else "–"
    return [
        f"| {label} | {_ms(b['drawn_ms_median'])} ms (median of "
        f"{b['loads']} cold loads) | {_ms(b.get('dom_content_loaded_ms_median'))} | {mid} | "
        f"{_ms(b.get('drawn_after_api_ms_median'))} |"
    ]


def markdown(report: dict[str, Any]) -> str:
    """The short Markdown summary of ``web.md``."""
    v = report["versions"]
    lines = [
        "# Web benchmark: the heatmap from the ledger, in the browser and under load",
        "",
        f"Generated {report['generated']} by `{report['command']}` in "
        f"{report['total_seconds']:.0f} s ({report['machine']['cpus']} shared CPUs; "
        f"uvicorn {v['uvicorn']}, FastAPI {v['fastapi']}, {v['prometheus']}). "
        "Method in docs/benchmarks.md, every figure in web.json.",
        "",
    ]
    c = report.get("ledger_vs_panel")
    if c:
        lines += [
            f"## Ledger vs. the original panel: {c['containers']:,} containers, {c['days']} days",
            "",
            f"{c['ledger']['spans']:,} spans in the ledger; {c['rounds']} rounds of "
            f"{len(c['mix'])} heatmap requests, interleaved. Times in ms.",
            "",
            "| request | ledger p50 | ledger p99 | panel p50 | panel p99 | panel ÷ ledger (p50) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in c["cases"].items():
            a, p = row["ledger_api"], row["panel"]
            lines.append(
                f"| {name} | {_ms(a.get('p50_ms'))} | {_ms(a.get('p99_ms'))} | "
                f"{_ms(p.get('p50_ms'))} | {_ms(p.get('p99_ms'))} | {row['ratio_p50']}× |"
            )
        a, p = c["ledger_api"], c["panel"]
        lines += [
            f"| **all** | **{_ms(a['p50_ms'])}** | **{_ms(a['p99_ms'])}** | "
            f"**{_ms(p['p50_ms'])}** | **{_ms(p['p99_ms'])}** | **{c['ratio_p50']}×** "
            f"(p99: {c['ratio_p99']}×) |",
            "",
        ]
    m = report.get("month")
    if m:
        h = m["heatmap"]
        lines += [
            f"## A month from the ledger: {m['containers']:,} containers, {m['days']} days",
            "",
            f"{m['ledger']['spans']:,} spans; {m['rounds']} rounds of {len(m['mix'])} "
            "heatmap requests. Times in ms.",
            "",
            "| request | p50 | p95 | p99 |",
            "|---|---:|---:|---:|",
        ]
        for name, row in m["cases"].items():
            lines.append(
                f"| {name} | {_ms(row.get('p50_ms'))} | {_ms(row.get('p95_ms'))} | "
                f"{_ms(row.get('p99_ms'))} |"
            )
        lines += [
            f"| **all** | **{_ms(h['p50_ms'])}** | **{_ms(h['p95_ms'])}** | "
            f"**{_ms(h['p99_ms'])}** |",
            "",
        ]
        load = m.get("load")
        if load:
            lat = load["latency"]
            lines += [
                f"**Load** ({load['clients']} concurrent clients, "
                f"{load['duration_seconds']:.0f} s, mix of /, heatmap, versions, changes, "
                f"workloads): {load['requests']:,} "
                f"requests, {load['requests_per_second']} requests/s, latency p50 "
                f"{_ms(lat.get('p50_ms'))} ms, p99 {_ms(lat.get('p99_ms'))} ms, "
                f"**{load['errors']} errors**.",
                "",
            ]
    browser = [
        *_browser_row(
            f"{c['containers']:,} containers, {c['days']} d" if c else "", (c or {}).get("browser")
        ),
        *_browser_row(
            f"{m['containers']:,} containers, {m['days']} d" if m else "", (m or {}).get("browser")
        ),
    ]
    if browser:
        lines += [
            "## Time to a drawn heatmap in Chromium",
            "",
            "From navigation start; DOMContentLoaded includes loading and running plotly.js; "
            "the last column is the page's own parsing, layout and drawing after the answer.",
            "",
            "| ledger | drawn | DOMContentLoaded | heatmap API | drawn after API |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [*browser, ""]
    lines += ["## Targets", ""]
    for t in report["targets"].values():
        if "ratio_p50" in t:
            lines.append(
                f"- {t['target']}: {t['ratio_p50']}× at p50, {t['ratio_p99']}× at p99 — "
                f"{_met(t['met'])}"
            )
        elif "p99_ms" in t:
            lines.append(f"- {t['target']}: p99 {_ms(t['p99_ms'])} ms — {_met(t['met'])}")
        else:
            lines.append(f"- {t['target']}: {t['errors']} errors — {_met(t['met'])}")
    return "\n".join(lines) + "\n"


def write_results(report: dict[str, Any], results: Path) -> tuple[Path, Path]:
    """Write ``web.json`` and ``web.md`` into ``results`` (created if needed)."""
    results.mkdir(parents=True, exist_ok=True)
    js, md = results / "web.json", results / "web.md"
    js.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    md.write_text(markdown(report))
    return js, md


def print_summary(report: dict[str, Any]) -> None:
    """The Markdown summary on the terminal."""
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(markdown(report)))
