"""`imagetrail sync` and `imagetrail serve` through a fault-injecting proxy (tests/faultproxy.py).

At 3 %, 30 % and 100 % of requests faulted (500, 503, 429 + Retry-After, hangs past the
client's timeout, bodies cut mid-way, truncated and invalid JSON, Thanos-style partial
answers), a sync either completes with the clean run's ledger or fails cleanly: non-zero exit,
one ``error:`` line (maybe a ``hint:``), no traceback, and nothing wrong in the ledger — a
resume without faults ends with the clean ledger. A serve whose source fails keeps answering
from its ledger and says why in ``/api/v1/status``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from faultproxy import FaultProxy
from reliability.conftest import Clean, Fleet
from reliability.helpers import (
    Served,
    base_env,
    dump_diff,
    error_lines_ok,
    ledger_dump,
    record_row,
    run,
    sync_args,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
# Small retry settings so that a run with many faults takes seconds, not minutes.
FAST_RETRIES = {
    "IMAGETRAIL_RETRY_BACKOFF": "10ms",
    "IMAGETRAIL_RETRY_BUDGET": "3s",
    "IMAGETRAIL_TIMEOUT": "2s",
    "IMAGETRAIL_RETRIES": "3",
}
CASES = [(0.03, 1), (0.03, 2), (0.30, 1), (0.30, 2), (1.0, 1)]
# At 3 % a request fails only if all 1 + 3 attempts fail (about one in a million): the
# retries promised by the `retries` setting must carry such a sync to its end.
MUST_COMPLETE_UP_TO = 0.03
# Answers that read the source itself (impact, capacity and DORA compare Prometheus metrics
# around changes): a failing source may make them 502/503/504, never 500.
READS_SOURCE = ("/api/v1/impact", "/api/v1/capacity", "/api/v1/dora")
PAGES = ("/", "/versions", "/workload", "/changes", "/capacity", "/docs", "/healthz")
API = (
    "/api/v1/versions",
    "/api/v1/heatmap",
    "/api/v1/changes",
    "/api/v1/impact",
    "/api/v1/capacity",
    "/api/v1/dora",
    "/api/v1/workloads",
    "/api/v1/history",
    "/api/v1/audit",
    "/api/v1/spans",
    "/api/v1/waits",
    "/api/v1/deployments",
    "/api/v1/status",
)


@pytest.mark.parametrize(("rate", "seed"), CASES)
def test_sync_through_faults_completes_or_fails_cleanly(
    rate: float, seed: int, fleet: Fleet, clean: Clean, tmp_path: Path
) -> None:
    env = base_env(tmp_path, **FAST_RETRIES)
    ledger = str(tmp_path / "faulty.db")
    row: dict[str, Any] = {"case": f"{rate:.0%} seed {seed}", "rate": rate, "seed": seed}
    problems: list[str] = []
    with FaultProxy(fleet.url, seed=seed, rate=rate, hang=3.0) as proxy:
        began = time.monotonic()
        done = run(sync_args(proxy.url, ledger, fleet.start, fleet.end), env, timeout=240)
        row["seconds"] = round(time.monotonic() - began, 1)
        row.update(proxy.counts())
        if done.returncode == 0:
            row["outcome"] = "completed"
            diff = dump_diff(ledger_dump(ledger), clean.dump)
            row["ledger_equals_clean"] = not diff
            if diff:
                problems.append(f"completed with a different ledger:\n{diff}")
        else:
            row["outcome"] = f"failed (exit {done.returncode})"
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
            row["error"] = errors[0][:160] if errors else done.stderr.strip()[-160:]
            row["one_clean_error_line"] = error_lines_ok(done.stderr)
            if not row["one_clean_error_line"]:
                problems.append(f"not one clean error line:\n{done.stderr[-3000:]}")
            if rate <= MUST_COMPLETE_UP_TO:
                problems.append(f"failed at {rate:.0%} despite retries: {row['error']}")
            proxy.rate = 0.0
            resumed = run(sync_args(proxy.url, ledger, fleet.start, fleet.end), env)
            if resumed.returncode != 0:
                problems.append(f"the resume without faults failed:\n{resumed.stderr}")
            diff = dump_diff(ledger_dump(ledger), clean.dump)
            row["resumed_equals_clean"] = not diff
            if diff:
                problems.append(f"the resumed ledger differs from the clean one:\n{diff}")
        if proxy.errors:
            problems.append(f"proxy errors: {proxy.errors[:3]}")
    record_row("faults", "sync through the fault proxy", row, passed=not problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rate", [0.30, 1.0])
def test_serve_answers_from_the_ledger_while_the_source_fails(
    rate: float, fleet: Fleet, clean: Clean, clean_copy: Path, tmp_path: Path
) -> None:
    env = base_env(tmp_path, IMAGETRAIL_FOLLOW_INTERVAL="1s", **FAST_RETRIES)
    some = dict(clean.dump["spans"][0])
    window = {
        "from": str(fleet.start),
        "to": str(fleet.end),
        "workload": f"{some['namespace']}/{some['workload']}",
    }
    row: dict[str, Any] = {"case": f"serve at {rate:.0%}", "rate": rate}
    problems: list[str] = []
    with (
        FaultProxy(fleet.url, seed=7, rate=rate, hang=3.0) as proxy,
        Served(["--prometheus", proxy.url, "--ledger", str(clean_copy)], tmp_path, env) as srv,
    ):
        began = time.monotonic()
        last_error = None
        statuses: dict[str, int] = {}
        source_errors: dict[str, int] = {}
        rounds = 0
        # Keep asking while the background sync fails (at 100 %: every pass fails).
        while time.monotonic() - began < 20 and (rounds < 3 or last_error is None):
            rounds += 1
            for path in (*PAGES, *API):
                try:
                    code = srv.get(path, timeout=30, **window).status_code
                except httpx.HTTPError as exc:
                    code = -1
                    problems.append(f"{path}: {type(exc).__name__}")
                if code != 200 and not (path in READS_SOURCE and code in (502, 503, 504)):
                    statuses[path] = code
                elif code != 200:
                    source_errors[path] = code
            status = srv.get("/api/v1/status", timeout=30).json()
            last_error = status["sync"].get("last_error")
        row.update(proxy.counts())
        row["request_rounds"] = rounds
        row["non_200"] = statuses or "none"
        row["source_reading_answers_failed"] = source_errors or "none"
        row["sync_last_error"] = (last_error or "")[:160] or None
        if statuses:
            problems.append(f"answers other than 200: {statuses}")
        if rate == 1.0 and not last_error:
            problems.append("/api/v1/status never reported the failing sync (sync.last_error)")
        log = srv.log_text()
    row["tracebacks_in_log"] = log.count("Traceback")
    if row["tracebacks_in_log"]:
        problems.append(f"tracebacks in the server log:\n{log[-3000:]}")
    record_row("faults_serve", "serve through the fault proxy", row, passed=not problems)
    assert not problems, "\n".join(problems)
