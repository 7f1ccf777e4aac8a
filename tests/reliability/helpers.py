"""What the reliability parts share: running the real CLI, dumping a ledger, recording figures.

Every part writes its figures with :func:`record` into ``bench/results/reliability.json``
(merged by part, so running one part updates only its own entry) and re-renders
``bench/results/reliability.md`` from it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from imagetrail.ledger import schema as S

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
RESULTS_JSON = RESULTS / "reliability.json"
RESULTS_MD = RESULTS / "reliability.md"
BIN = str(Path(sys.executable).with_name("imagetrail"))
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")
CHUNK = "1h"

# Columns that differ between two correct runs: row ids, clocks, the source URL's port.
_VOLATILE = {
    "spans": {"id"},
    "waits": {"id"},
    "changes": {"id"},
    "sync_state": {"key_hash", "last_success", "last_error"},
    "deployments": {"received_at"},
    "impacts": {"computed_at"},
}
_VOLATILE_META = {"created_at"}
_SOURCE_IN_KEY = re.compile(r"\|[a-z]+://[^|]*\|")


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: none of the developer's IMAGETRAIL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "COLUMNS": "200"})
    env.update(extra)
    return env


def sync_args(url: str, ledger: str, start: float, end: float, *more: str) -> list[str]:
    """``imagetrail sync`` over the whole window, in small chunks (many commit points)."""
    return [
        BIN,
        "sync",
        "--prometheus",
        url,
        "--ledger",
        ledger,
        "--since",
        str(start),
        "--until",
        str(end),
        "--chunk",
        CHUNK,
        "--signal",
        "ksm",
        *more,
    ]


def run(
    argv: Sequence[str], env: Mapping[str, str], timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def ledger_url(target: str) -> str:
    return target if "://" in target else f"sqlite:///{target}"


def ledger_dump(target: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, minus volatile columns, sorted: equal dumps mean
    equal ledgers (spans, waits, changes, watermarks, meta)."""
    engine = create_engine(ledger_url(target))
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for name in S.TABLES:
                table = S.metadata.tables[name]
                keep = [c for c in table.columns if c.name not in _VOLATILE.get(name, set())]
                rows = []
                for row in conn.execute(select(*keep)):
                    values: dict[str, Any] = dict(zip([c.name for c in keep], row, strict=True))
                    if name == "meta" and values["key"] in _VOLATILE_META:
                        continue
                    if name == "meta" and values["key"] == S.CHANGES_STALE:
                        values["value"] = "<token>"
                    if name == "sync_state":
                        values["key"] = _SOURCE_IN_KEY.sub("|<source>|", values["key"])
                    rows.append(tuple(sorted(values.items())))
                out[name] = sorted(rows, key=repr)
    finally:
        engine.dispose()
    return out


def dump_diff(got: Mapping[str, list[Any]], want: Mapping[str, list[Any]]) -> str:
    """A short description of how two dumps differ ('' when equal)."""
    lines = []
    for name in want:
        a, b = set(got.get(name, [])), set(want[name])
        if a != b:
            extra, missing = sorted(a - b, key=repr)[:2], sorted(b - a, key=repr)[:2]
            lines.append(
                f"{name}: {len(got.get(name, []))} rows vs {len(want[name])}; "
                f"{len(a - b)} unexpected (e.g. {extra}), {len(b - a)} missing (e.g. {missing})"
            )
    return "\n".join(lines)


def error_lines_ok(stderr: str) -> bool:
    """One ``error:`` line, maybe one ``hint:`` line, no traceback (progress lines allowed
    before them)."""
    if "Traceback" in stderr:
        return False
    lines = [line for line in stderr.rstrip("\n").split("\n") if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if len(errors) != 1:
        return False
    tail = lines[errors[0] + 1 :]
    return len(tail) == 0 or (len(tail) == 1 and tail[0].startswith("hint: "))


class Served:
    """A running ``imagetrail serve`` process (port 0) and the URL it printed."""

    def __init__(self, args: Sequence[str], workdir: Path, env: Mapping[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"serve-{time.monotonic_ns()}.log"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--port", "0", *args],
            cwd=workdir,
            env=dict(env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = URL_LINE.search(self.log.read_text())
            if found:
                self.url = found.group(1).rstrip("/")
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"imagetrail serve printed no URL:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, timeout: float = 60.0, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"serve never got ready:\n{self.log_text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def record(part: str, title: str, figures: Mapping[str, Any], *, passed: bool) -> None:
    """Store one part's figures (merged into the JSON by part) and re-render the Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(RESULTS_JSON.read_text())
    except (OSError, ValueError):
        everything = {}
    parts = everything.setdefault("parts", {})
    parts[part] = {
        "title": title,
        "passed": passed,
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": os.environ.get(
            "RELIABILITY_COMMAND", "python -m pytest " + " ".join(sys.argv[1:])
        ),
        "figures": dict(figures),
    }
    everything["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    RESULTS_JSON.write_text(json.dumps(everything, indent=2, sort_keys=True, default=str) + "\n")
    RESULTS_MD.write_text(render(everything))


def record_row(part: str, title: str, row: Mapping[str, Any], *, passed: bool) -> None:
    """Add (or replace, by its ``case``) one row of a part whose cases run as separate tests;
    the part passes when every row does."""
    try:
        everything = json.loads(RESULTS_JSON.read_text())
    except (OSError, ValueError):
        everything = {}
    old = everything.get("parts", {}).get(part, {}).get("figures", {}).get("rows", [])
    rows = [r for r in old if r.get("case") != row["case"]]
    rows.append({**row, "passed": passed})
    rows.sort(key=lambda r: str(r["case"]))
    record(part, title, {"rows": rows}, passed=all(r["passed"] for r in rows))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    if isinstance(value, Mapping | list | tuple):
        return "`" + json.dumps(value, default=str).replace("|", "\\|") + "`"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(everything: Mapping[str, Any]) -> str:
    """The Markdown report: one table per part, in a fixed order."""
    order = ["kill_sqlite", "kill_postgresql", "faults", "faults_serve", "concurrency"]
    order += ["fuzz", "hostile", "load"]
    order += ["runaway", "secrets"]
    parts: Mapping[str, Any] = everything.get("parts", {})
    names = [p for p in order if p in parts] + sorted(set(parts) - set(order))
    out = [
        "# Reliability suite",
        "",
        "Produced by `make reliability` (tests/reliability, marker `reliability`); every part "
        "runs the real `imagetrail` processes against real servers (Prometheus 2.42, "
        "PostgreSQL 15) on 127.0.0.1. Figures of the last run of each part; the raw numbers "
        "are in `reliability.json` beside this file.",
        "",
        f"Machine: {everything.get('machine', {})}",
        "",
    ]
    for name in names:
        part = parts[name]
        verdict = "pass" if part["passed"] else "**FAIL**"
        out += [
            f"## {part['title']} ({verdict})",
            "",
            f"Run {part['when']} by `{part['command']}`.",
            "",
        ]
        figures: Mapping[str, Any] = part["figures"]
        rows = figures.get("rows")
        if isinstance(rows, list) and rows and isinstance(rows[0], Mapping):
            columns = list(dict.fromkeys(c for row in rows for c in row))
            out.append("| " + " | ".join(columns) + " |")
            out.append("|" + "---|" * len(columns))
            for row in rows:
                out.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
            out.append("")
        scalars = {k: v for k, v in figures.items() if k != "rows"}
        if scalars:
            out.append("| figure | value |")
            out.append("|---|---|")
            for key, value in scalars.items():
                out.append(f"| {key} | {_cell(value)} |")
            out.append("")
    return "\n".join(out)
