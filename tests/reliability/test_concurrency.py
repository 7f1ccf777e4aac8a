"""Writers and readers on one ledger, on SQLite and on PostgreSQL.

- ``serve`` (reading) while ``sync --follow`` writes the same ledger: every request answers
  200, the follower stops cleanly on SIGTERM (exit 0) and the ledger's spans, waits and
  changes equal those of one clean sync to now (the fleet's data ended days ago, so its
  cluster is gone by now: a `cluster-gone` change that a sync ``--until`` the data's end
  does not have). The watermark is "now" of each run, so ``sync_state`` is left out.
- Two ``sync`` processes at once on a fresh ledger: both exit 0, the ledger equals the clean
  run's, watermarks included.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reliability.conftest import Clean, Fleet
from reliability.helpers import (
    BIN,
    Served,
    base_env,
    dump_diff,
    ledger_dump,
    record_row,
    run,
    sync_args,
)
from servers import temporary_database

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
PAIRS = 2
READERS = 4
HOUR = 3600.0


@contextlib.contextmanager
def _ledger(backend: str, tmp: Path, name: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield str(tmp / f"{name}.db")
        return
    with temporary_database(request.getfixturevalue("postgres_url"), prefix=name) as url:
        yield url


def _requests(start: float, end: float) -> list[tuple[str, dict[str, str]]]:
    window = {"from": str(start), "to": str(end)}
    return [
        ("/", {}),
        ("/api/v1/heatmap", window),
        ("/api/v1/changes", window),
        ("/api/v1/versions", {"at": str(end - 60)}),
        ("/api/v1/workloads", window),
        ("/api/v1/spans", window),
        ("/api/v1/status", {}),
        ("/changes", {}),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_while_sync_follows(
    backend: str, fleet: Fleet, clean: Clean, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = base_env(tmp_path, IMAGETRAIL_FOLLOW_INTERVAL="1s")
    row: dict[str, Any] = {"case": f"serve + sync --follow ({backend})"}
    problems: list[str] = []
    with _ledger(backend, tmp_path, "follow", request) as target:
        # The ledger must exist before serve opens it: a first short sync creates it.
        first = run(sync_args(fleet.url, target, fleet.start, fleet.start + 2 * HOUR), env)
        assert first.returncode == 0, first.stderr
        with Served(["--ledger", target], tmp_path, env) as srv:
            stderr_path = tmp_path / "follow.err"
            with stderr_path.open("w") as err:
                follow = subprocess.Popen(
                    [
                        *(BIN, "sync", "--prometheus", fleet.url, "--ledger", target),
                        *("--since", str(fleet.start), "--follow", "--chunk", "6h"),
                        *("--signal", "ksm"),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            statuses: dict[int, int] = {}
            failures: list[str] = []
            done = threading.Event()
            lock = threading.Lock()

            def reader(k: int) -> None:
                mix = _requests(fleet.start, fleet.end)
                with httpx.Client(base_url=srv.url, timeout=60) as client:
                    i = k
                    while not done.is_set():
                        path, params = mix[i % len(mix)]
                        i += 1
                        try:
                            code = client.get(path, params=params).status_code
                        except httpx.HTTPError as exc:
                            code = -1
                            with lock:
                                failures.append(f"{path}: {type(exc).__name__}: {exc}")
                        with lock:
                            statuses[code] = statuses.get(code, 0) + 1
                            if code != 200 and len(failures) < 5:
                                failures.append(f"{path} {params}: {code}")

            threads = [threading.Thread(target=reader, args=(k,)) for k in range(READERS)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            # The first pass and at least one poll after it.
            while time.monotonic() - began < 180 and follow.poll() is None:
                if stderr_path.read_text().count("synced ksm") >= 2:
                    break
                time.sleep(0.5)
            follow.terminate()
            try:
                code = follow.wait(60)
            except subprocess.TimeoutExpired:
                follow.kill()
                code = follow.wait()
            done.set()
            for thread in threads:
                thread.join(90)
            row["seconds"] = round(time.monotonic() - began, 1)
            row["requests"] = sum(statuses.values())
            row["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
            row["follow_exit"] = code
            row["passes"] = stderr_path.read_text().count("synced ksm")
            tracebacks = srv.log_text().count("Traceback")
        row["tracebacks_in_serve_log"] = tracebacks
        if set(statuses) != {200}:
            problems.append(f"answers other than 200: {statuses} e.g. {failures}")
        if code != 0:
            problems.append(f"sync --follow ended with {code}:\n{stderr_path.read_text()[-3000:]}")
        if tracebacks:
            problems.append("tracebacks in the serve log")
        reference = str(tmp_path / "to-now.db")
        to_now = run(
            [
                *(BIN, "sync", "--prometheus", fleet.url, "--ledger", reference),
                *("--since", str(fleet.start), "--chunk", "6h", "--signal", "ksm"),
            ],
            env,
        )
        assert to_now.returncode == 0, to_now.stderr
        got = {k: v for k, v in ledger_dump(target).items() if k != "sync_state"}
        want = {k: v for k, v in ledger_dump(reference).items() if k != "sync_state"}
        diff = dump_diff(got, want)
        row["ledger_equals_clean"] = not diff
        if diff:
            problems.append(f"the ledger differs from the clean run's:\n{diff}")
    record_row("concurrency", "concurrent writers and readers", row, passed=not problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_syncs_end_with_the_clean_ledger(
    backend: str, fleet: Fleet, clean: Clean, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = base_env(tmp_path)
    row: dict[str, Any] = {"case": f"{PAIRS} pairs of concurrent syncs ({backend})"}
    problems: list[str] = []
    exits: list[int] = []
    equal = 0
    began = time.monotonic()
    for pair in range(PAIRS):
        with _ledger(backend, tmp_path, f"pair{pair}", request) as target:
            argv = sync_args(fleet.url, target, fleet.start, fleet.end)
            procs = [
                subprocess.Popen(
                    argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
                for _ in range(2)
            ]
            for proc in procs:
                _, err = proc.communicate(timeout=240)
                exits.append(proc.returncode)
                if proc.returncode != 0:
                    problems.append(f"a sync of pair {pair} exited {proc.returncode}:\n{err}")
            diff = dump_diff(ledger_dump(target), clean.dump)
            equal += not diff
            if diff:
                problems.append(f"pair {pair}: the ledger differs from the clean run's:\n{diff}")
    row["seconds"] = round(time.monotonic() - began, 1)
    row["exits"] = exits
    row["ledgers_equal_to_clean"] = f"{equal}/{PAIRS}"
    record_row("concurrency", "concurrent writers and readers", row, passed=not problems)
    assert not problems, "\n".join(problems)
