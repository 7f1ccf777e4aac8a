"""kill -9 of `imagetrail sync` at random moments, on SQLite and on PostgreSQL, then resume.

Each round starts from an empty ledger and kills the real CLI process (SIGKILL) at
``KILLS_PER_ROUND`` moments drawn at random (seeded), each time starting the sync again on the
same ledger; a plain sync then resumes. A kill moment is drawn over what is left of the sync:
the first over a clean sync's duration, later ones over the remaining part (a resumed sync
only reads the chunks after its watermark; a run that ends before its kill shortens the
horizon to what it took). The ledger must then
equal a clean run's, row for row (spans, waits, changes, watermarks; docs/ledger.md).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.conftest import Clean, Fleet
from reliability.helpers import BIN, base_env, dump_diff, ledger_dump, record, run, sync_args
from servers import temporary_database

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(420)]
KILLS = 50
KILLS_PER_ROUND = 25


@contextlib.contextmanager
def _ledger(backend: str, tmp: Path, name: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield str(tmp / f"{name}.db")
        return
    with temporary_database(request.getfixturevalue("postgres_url"), prefix=name) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_syncs_resume_to_the_clean_ledger(
    backend: str,
    fleet: Fleet,
    clean: Clean,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = base_env(tmp_path)
    rng = random.Random(f"kill-{backend}")
    began = time.monotonic()

    with _ledger(backend, tmp_path, "clean", request) as target:
        t0 = time.monotonic()
        done = run(sync_args(fleet.url, target, fleet.start, fleet.end), env)
        clean_seconds = time.monotonic() - t0
        assert done.returncode == 0, done.stderr
        reference = ledger_dump(target)
    same_as_sqlite = reference == clean.dump
    # The time a run needs before it reads anything (imports, settings, opening the ledger).
    t0 = time.monotonic()
    assert run([BIN, "sync", "--help"], env).returncode == 0
    startup = time.monotonic() - t0

    kills = finished_first = 0
    rounds: list[str] = []
    while kills < KILLS:
        with _ledger(backend, tmp_path, f"killed{len(rounds)}", request) as target:
            in_round = 0
            horizon = clean_seconds
            while in_round < KILLS_PER_ROUND and kills < KILLS:
                at = rng.uniform(0.0, horizon)
                t0 = time.monotonic()
                proc = subprocess.Popen(
                    sync_args(fleet.url, target, fleet.start, fleet.end),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    code = proc.wait(at)
                    assert code == 0, f"an unkilled sync failed with {code}"
                    finished_first += 1
                    horizon = max(startup, time.monotonic() - t0)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    in_round += 1
                    horizon = max(startup, horizon - max(0.0, at - startup))
            resumed = run(sync_args(fleet.url, target, fleet.start, fleet.end), env)
            assert resumed.returncode == 0, resumed.stderr
            rounds.append(dump_diff(ledger_dump(target), reference))

    equal = sum(1 for diff in rounds if not diff)
    figures = {
        "backend": backend,
        "kills": kills,
        "finished_before_kill": finished_first,
        "rounds": len(rounds),
        "rounds_equal_to_clean": equal,
        "clean_sync_seconds": round(clean_seconds, 2),
        "startup_seconds": round(startup, 2),
        "clean_spans": len(reference["spans"]),
        "clean_changes": len(reference["changes"]),
        "clean_equals_sqlite_clean": same_as_sqlite,
        "seconds": round(time.monotonic() - began, 1),
    }
    record(
        f"kill_{backend}",
        f"kill -9 of sync, then resume ({backend})",
        figures,
        passed=equal == len(rounds),
    )
    assert equal == len(rounds), "\n".join(d for d in rounds if d)
