"""Processes that open one fresh SQLite ledger at the same time all succeed.

The switch to WAL in ``Ledger.open`` (``PRAGMA journal_mode=WAL``) used to fail at once with
"database is locked" when another process held a write lock on the file: SQLite upgrades a
read transaction to a write one for it, and does not call the busy handler for that.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sqlite3
import threading
import time
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from imagetrail.ledger import Ledger
from imagetrail.ledger.engine import enable_wal, make_engine
from imagetrail.ledger.target import resolve

ROUNDS = 60
PROCESSES = 4


def test_wal_switch_waits_for_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    setup.close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a write lock, as another process's Ledger.open holds
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    engine = make_engine(resolve(path))
    try:
        began = time.monotonic()
        enable_wal(engine)  # failed in well under a millisecond before the fix
        assert time.monotonic() - began >= 0.2
    finally:
        release.join()
        other.close()
        engine.dispose()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    check.close()


def _open_and_write(path: Path, barrier: Barrier, seed: int, out: Queue[str | None]) -> None:
    try:
        barrier.wait()
        time.sleep(random.Random(seed).uniform(0, 0.004))
        with Ledger.open(path) as ledger:
            ledger.set_meta_value(f"k{seed}", "v")
            ledger.rederive_changes(lambda spans, waits, until: [])
            ledger.stats()
        out.put(None)
    except BaseException:
        out.put(traceback.format_exc())


def test_concurrent_opens_of_a_fresh_ledger(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    failures: list[str] = []
    for round_ in range(ROUNDS):
        barrier = ctx.Barrier(PROCESSES)
        out: Queue[str | None] = ctx.Queue()
        path = tmp_path / f"fresh{round_}.db"
        procs = [
            ctx.Process(target=_open_and_write, args=(path, barrier, round_ * PROCESSES + i, out))
            for i in range(PROCESSES)
        ]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        failures += [r for r in results if r is not None]
    assert not failures, f"{len(failures)} of {ROUNDS * PROCESSES} opens failed:\n{failures[0]}"
