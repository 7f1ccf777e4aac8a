"""``serve --workers``: does a second process pay off on this machine?

The same ``imagetrail serve`` over the same demo ledger with 1 and with 2 worker processes,
alternating (1, 2, 1, 2...) so that the shared machine's drift hits both alike; 32
concurrent clients from ApacheBench (``ab``, C: the load generator must not eat the core a
second worker would use, as a Python client does) for a fixed time per URL. Results:
``bench/results/workers.json`` and ``workers.md``; the ratio is what to read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._paths import RESULTS

URLS = ("/api/v1/versions", "/api/v1/changes?since=1d", "/api/v1/workloads")
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")


def _serve(ledger: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    out = log.open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("imagetrail")), "serve", "--ledger", str(ledger),
         "--port", "0", "--workers", str(workers)],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = URL_LINE.search(log.read_text(errors="replace"))
        if found:
            return proc, found.group(1).rstrip("/")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"serve printed no URL: {log.read_text()[-2000:]}")


def _warm(base: str, workers: int) -> None:
    # Every worker builds its span index on its first request: ask often enough that each
    # one has answered before the clock runs.
    for _ in range(10 * workers):
        for url in URLS:
            httpx.get(base + url, timeout=120).raise_for_status()


def _ab(url: str, seconds: float, clients: int) -> dict[str, float]:
    run = subprocess.run(
        ["ab", "-q", "-c", str(clients), "-t", str(seconds), "-n", "10000000", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    text = run.stdout

    def grab(pattern: str) -> float:
        found = re.search(pattern, text, re.MULTILINE)
        if not found:
            raise RuntimeError(f"ab said:\n{text}\n{run.stderr}")
        return float(found.group(1))

    return {
        "requests_per_second": grab(r"^Requests per second:\s+([\d.]+)"),
        "failed": grab(r"^Failed requests:\s+(\d+)"),
        "non_2xx": grab(r"Non-2xx responses:\s+(\d+)") if "Non-2xx" in text else 0.0,
        "p50_ms": grab(r"^\s+50%\s+(\d+)"),
        "p99_ms": grab(r"^\s+99%\s+(\d+)"),
    }


def run(
    *, rounds: int = 2, seconds: float = 15.0, clients: int = 32, command: str
) -> dict[str, Any]:
    """Alternate 1 and 2 workers ``rounds`` times; return (and write) the results."""
    if shutil.which("ab") is None:
        raise RuntimeError("ab (ApacheBench, Debian's apache2-utils) is needed: make test-deps")
    from imagetrail.service.demo import build_demo_ledger

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="imagetrail-workers-") as tmp:
        ledger_path = Path(tmp) / "demo.db"
        ledger, _ = build_demo_ledger(ledger_path, signals=False)
        ledger.close()
        for _ in range(rounds):
            for workers in (1, 2):
                proc, base = _serve(ledger_path, workers, Path(tmp) / f"serve-{workers}.log")
                try:
                    _warm(base, workers)
                    per_url = {url: _ab(base + url, seconds, clients) for url in URLS}
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
                runs.append({"workers": workers, "urls": per_url})
    report = _summarize(runs, seconds=seconds, clients=clients, command=command)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "workers.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "workers.md").write_text(_markdown(report))
    return report


def _summarize(
    runs: list[dict[str, Any]], *, seconds: float, clients: int, command: str
) -> dict[str, Any]:
    by: dict[int, dict[str, list[float]]] = {1: {}, 2: {}}
    for r in runs:
        for url, figures in r["urls"].items():
            by[r["workers"]].setdefault(url, []).append(figures["requests_per_second"])
    ratios = {
        url: round(statistics.median(by[2][url]) / statistics.median(by[1][url]), 2) for url in URLS
    }
    return {
        "command": command,
        "cpus": os.cpu_count(),
        "clients": clients,
        "seconds_per_url": seconds,
        "runs": runs,
        "median_requests_per_second": {
            str(w): {u: statistics.median(v) for u, v in urls.items()} for w, urls in by.items()
        },
        "ratio_2_over_1": ratios,
        "errors": sum(f["failed"] + f["non_2xx"] for r in runs for f in r["urls"].values()),
        "note": "shared machine: compare the ratio, not absolute rates",
    }


def _markdown(report: dict[str, Any]) -> str:
    med = report["median_requests_per_second"]
    lines = [
        "# serve --workers: 1 vs 2 processes",
        "",
        f"`{report['command']}` — {report['cpus']} CPUs, {report['clients']} clients (ab), "
        f"{report['seconds_per_url']:g} s per URL, runs alternating 1, 2, 1, 2.",
        "",
        "| URL | 1 worker (req/s, median) | 2 workers (req/s, median) | ratio |",
        "|---|---|---|---|",
    ]
    for url in URLS:
        lines.append(
            f"| `{url}` | {med['1'][url]:.0f} | {med['2'][url]:.0f} | "
            f"{report['ratio_2_over_1'][url]:.2f}× |"
        )
    lines += ["", f"Failed or non-2xx answers: {report['errors']:.0f}.", ""]
    return "\n".join(lines)


def print_summary(report: dict[str, Any]) -> None:
    print(_markdown(report))
