"""``imagetrail serve --workers N``: several processes on one socket and one ledger.

A real serve process over a demo ledger: every worker answers, a worker killed is started
again while the others go on answering, SIGTERM ends them all with exit 0, and a worker that
cannot start (its ledger gone) stops serve with one clear line instead of restarting for ever.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagetrail.service.demo import build_demo_ledger
from test_web_serve import Served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "demo.db"
    ledger, _ = build_demo_ledger(path, days=2, signals=False)
    ledger.close()
    return path


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(t) for t in text)
    return found


def _wait_children(pid: int, count: int, timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _children(pid)
        if len(found) == count:
            return found
        time.sleep(0.2)
    pytest.fail(f"serve has {_children(pid)} worker processes, not {count}")


@pytest.fixture
def served(ledger_path: Path, tmp_path: Path) -> Iterator[Served]:
    run = Served(["serve", "--workers", "2", "--ledger", str(ledger_path), "--port", "0"], tmp_path)
    try:
        yield run
    finally:
        run.stop()


def _all_answer(served: Served, requests: int = 40) -> None:
    # New connections each time: the kernel spreads them over the workers.
    for _ in range(requests):
        response = httpx.get(served.url + "api/v1/versions", timeout=30)
        assert response.status_code == 200, response.text


def test_two_workers_answer_and_stop_together(served: Served) -> None:
    workers = _wait_children(served.proc.pid, 2)
    served.wait("/readyz")
    _all_answer(served)
    began = time.monotonic()
    assert served.stop() == 0, served.log.read_text()
    assert time.monotonic() - began < 10
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
    log = served.log.read_text()
    assert "Traceback" not in log, log


def test_a_killed_worker_is_started_again(served: Served) -> None:
    first = _wait_children(served.proc.pid, 2)
    served.wait("/readyz")
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while victim in _children(served.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # gone: a request it had accepted would be reset, as on any server
    _all_answer(served, 10)  # the other worker answers meanwhile
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _children(served.proc.pid)
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no new worker: {_children(served.proc.pid)}\n{served.log.read_text()}")
    _all_answer(served)
    assert "worker" in served.log.read_text()
    assert "starting it again" in served.log.read_text()
    assert served.stop() == 0


def test_a_worker_that_cannot_start_stops_serve(ledger_path: Path, tmp_path: Path) -> None:
    """The ledger is checked before the fork; one removed between the check and a worker's
    start is that worker's error, and serve ends with one line instead of a restart loop."""
    copy = tmp_path / "gone.db"
    copy.write_bytes(ledger_path.read_bytes())
    run = Served(["serve", "--workers", "2", "--ledger", str(copy), "--port", "0"], tmp_path)
    try:
        workers = _wait_children(run.proc.pid, 2)
        run.wait("/readyz")
        copy.unlink()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        code = run.proc.wait(30)
    finally:
        run.stop()
    log = run.log.read_text()
    assert code == 1, log
    assert "ended before it served" in log, log
    assert "Traceback" not in log, log


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "gone"
