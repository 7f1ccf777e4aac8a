"""Hardening (issue 11): each defect an independent probe found, against real servers.

- filters that match nothing are an empty answer, live (CLI, API) and in ``sync``;
- JSON bodies past the depth or number-size limits are a 400, never a 500;
- a PostgreSQL ledger without psycopg is one line naming ``imagetrail[postgres]``;
- errors while choosing the signal are kept as ``last_error`` (ledger, ``serve``);
- ``sync --follow`` stops cleanly on SIGTERM and SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from clirun import assert_one_error, invoke
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.web import create_app
from imagetrail.web.deploy_api import MAX_BODY, MAX_DEPTH, MAX_NUMBER
from servers import Server

BIN = Path(sys.executable).with_name("imagetrail")
TOKEN = "hardening-token"


def _app_request(
    path: Path, method: str, url: str, *, flags: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    """One request to the app over the ledger at ``path``, in-process."""
    settings = settings_mod.load({"ledger": str(path), **(flags or {})}, environ={})
    with Ledger.open(path) as ledger:
        app = create_app(settings, ledger)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(call())


def _error(response: httpx.Response, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "hint"}, body
    for needle in needles:
        assert needle in body["error"], (needle, body)
    return str(body["error"])


# -- JSON bodies: limits, never a 500 ----------------------------------------------------------
def _post(tmp_path: Path, content: bytes) -> httpx.Response:
    return _app_request(
        tmp_path / "l.db",
        "POST",
        "/api/v1/deployments",
        flags={"api_token": TOKEN},
        content=content,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b"[" * 30000 + b"]" * 30000, 400, f"deeper than {MAX_DEPTH}"),
        (b'{"workload": ' + b"[" * 20000 + b"]" * 20000 + b"}", 400, "deeper"),
        (b'{"workload": "shop/web", "image": "nginx", "deployed_at": ' + b"1" * 5001 + b"}",
         400, f"at most {MAX_NUMBER}"),
        (b'{"workload": "shop/web", "image": "nginx", "deployed_at": 1' + b"0" * 5000 + b".5}",
         400, "5003 characters"),
        (b'{"workload": "shop/web", "image": "nginx", "deployed_at": 1e999}', 400, "out of range"),
        (b"[" * (MAX_BODY + 1), 413, str(MAX_BODY)),
    ],
)  # fmt: skip
def test_hostile_json_bodies_are_refused_not_crashed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, status: int, needle: str
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = _post(tmp_path, content)
    _error(response, status, needle)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert ledger.deployments() == []


def test_nesting_and_numbers_within_the_limits_are_events(tmp_path: Path) -> None:
    # Brackets and long digit runs inside strings are text, not structure.
    body = b'{"workload": "shop/web", "image": "nginx", "id": "a1", "deployed_at": 1700000000.25'
    body += b', "pipeline_url": "https://ci.example/' + b"[" * 100 + b"1" * 100 + b'"}'
    response = _post(tmp_path, body)
    assert response.status_code == 201, response.text
    assert response.json()["deployed_at"].startswith("2023-11-14T22:13:20.25")


# -- a PostgreSQL ledger without its driver ----------------------------------------------------
# The real CLI in a Python where psycopg cannot be imported (as without the extra).
NO_PSYCOPG = """
import sys
sys.modules["psycopg"] = None
from imagetrail.cli import main
sys.argv = ["imagetrail", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", [["changes"], ["versions"], ["sync", "--since", "1h"]])
def test_postgres_ledger_without_psycopg_is_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    url = "postgresql://imagetrail:pw-secret@127.0.0.1:9/history"
    run = subprocess.run(
        [sys.executable, "-c", NO_PSYCOPG, *command, "--ledger", url,
         "--prometheus", "http://127.0.0.1:9"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith("error: ")
    assert "imagetrail[postgres]" in lines[0]
    assert lines[1] == "hint: pip install 'imagetrail[postgres]'"
    assert "Traceback" not in run.stderr
    assert "pw-secret" not in run.stderr


# -- filters that match nothing: an empty answer -----------------------------------------------
def test_live_filters_matching_nothing_answer_empty(
    sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    url, start, end = sim_prometheus
    at = str(end - 3600)
    live = ["--source", "prometheus", "--prometheus", url, "--ledger", str(tmp_path / "l.db")]
    found = invoke(["versions", *live, "--at", at, "--format", "json"]).json()
    assert found, "the fixture holds versions at that time"
    for flags in (["--cluster", "nope"], ["--namespace", "no-such-ns"]):
        run = invoke(["versions", *live, "--at", at, *flags])
        assert run.code == 0, run.err
        assert "nothing found" in run.out
        assert invoke(["versions", *live, "--at", at, *flags, "--format", "json"]).json() == []
        changes = invoke(
            ["changes", *live, "--from", str(start), "--to", str(end), *flags, "--format", "json"]
        )
        assert changes.json() == []

    Ledger.open(tmp_path / "l.db").close()
    for params in ({"cluster": "nope"}, {"namespace": "no-such-ns"}):
        response = _app_request(
            tmp_path / "l.db",
            "GET",
            "/api/v1/versions",
            flags={"prometheus_url": url},
            params={"source": "prometheus", "at": at, **params},
        )
        assert response.status_code == 200, response.text
        assert response.json() == []


def test_a_live_range_without_data_answers_empty(
    sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    """The server holds the signals, just not in the asked range (the reliability fuzzer's
    random ranges answered 502 "holds neither")."""
    url, start, _ = sim_prometheus
    live = ["--source", "prometheus", "--prometheus", url, "--ledger", str(tmp_path / "l.db")]
    before = ["--from", str(start - 3 * 86400), "--to", str(start - 2 * 86400)]
    run = invoke(["changes", *live, *before])
    assert run.code == 0, run.err
    assert "nothing found" in run.out
    assert invoke(["changes", *live, *before, "--format", "json"]).json() == []
    versions = invoke(["versions", *live, "--at", str(start - 86400), "--format", "json"])
    assert versions.code == 0, versions.err
    assert versions.json() == []


def test_a_server_holding_neither_signal_is_still_an_error(
    prometheus_empty: Server, tmp_path: Path
) -> None:
    live = ["--source", "prometheus", "--prometheus", prometheus_empty.url]
    for flags in ([], ["--cluster", "nope"]):
        run = invoke(["versions", *live, "--ledger", str(tmp_path / "l.db"), *flags])
        assert_one_error(run, 3, "holds neither")
    Ledger.open(tmp_path / "l.db").close()
    response = _app_request(
        tmp_path / "l.db",
        "GET",
        "/api/v1/versions",
        flags={"prometheus_url": prometheus_empty.url},
        params={"source": "prometheus", "cluster": "nope"},
    )
    _error(response, 502, "holds neither")


def test_sync_whose_filters_match_nothing_succeeds_empty(
    sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    url, _start, end = sim_prometheus
    ledger = tmp_path / "l.db"
    base = ["sync", "--prometheus", url, "--ledger", str(ledger), "--cluster", "nope"]
    # Without --since: nothing to read at all (no watermark, so data that appears later is
    # read from its start).
    run = invoke(base)
    assert run.code == 0, run.err
    assert "nothing on the server matches" in run.err
    with Ledger.open(ledger, create=False) as led:
        assert led.spans() == []
        assert led.synced_until() is None
    # With a range: read, nothing found.
    run = invoke([*base, "--since", str(end - 86400), "--until", str(end), "--chunk", "1d"])
    assert run.code == 0, run.err
    assert "0 spans written" in run.err
    with Ledger.open(ledger, create=False) as led:
        assert led.spans() == []


# -- errors while choosing the signal are kept -------------------------------------------------
def test_signal_detection_errors_are_recorded_in_the_ledger(
    prometheus_empty: Server, sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    run = invoke(["sync", "--prometheus", prometheus_empty.url, "--ledger", str(ledger)])
    assert_one_error(run, 3, "holds neither")
    with Ledger.open(ledger, create=False) as led:
        state = led.sync_state(f"auto|{prometheus_empty.url}|")
        assert state is not None
        assert state.last_error is not None
        assert "holds neither" in state.last_error
        assert led.synced_until() is None
    # The next pass that chooses a signal clears it.
    url, _start, _end = sim_prometheus
    other = tmp_path / "other.db"
    first = invoke(["sync", "--prometheus", url, "--ledger", str(other), "--cluster", "nope"])
    assert first.code == 0, first.err
    with Ledger.open(other) as led:
        led.record_sync_error(f"auto|{url}|", "an old failure")
    again = invoke(["sync", "--prometheus", url, "--ledger", str(other), "--cluster", "nope"])
    assert again.code == 0, again.err
    with Ledger.open(other, create=False) as led:
        state = led.sync_state(f"auto|{url}|")
        assert state is not None
        assert state.last_error is None


def test_status_shows_the_detection_error(prometheus_empty: Server, tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    settings = settings_mod.load(
        {"ledger": str(path), "prometheus_url": prometheus_empty.url, "follow_interval": "1s"},
        environ={},
    )

    async def run() -> dict[str, Any]:
        with Ledger.open(path) as ledger:
            app = create_app(settings, ledger, sync=True)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        status: dict[str, Any] = (await c.get("/api/v1/status")).json()
                        if status["sync"]["passes"] >= 2:
                            return status
                        await asyncio.sleep(0.2)
        pytest.fail("the background sync made fewer than two passes")

    status = asyncio.run(run())
    # The loop goes on after a failed pass, and each failure is shown.
    assert status["sync"]["failures"] == status["sync"]["passes"]
    assert "holds neither" in status["sync"]["last_error"]
    assert status["ready"] is False


# -- sync --follow and SIGTERM -----------------------------------------------------------------
class _Follow:
    """A real ``imagetrail sync --follow`` process; its stderr collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, check: Any, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            assert self.proc.poll() is None, (what, self.lines)
            time.sleep(0.01)
        pytest.fail(f"timed out waiting for {what}: {self.lines}")

    def stop(self, sig: int) -> tuple[int, float]:
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - sent
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code, took


def _synced_until(path: Path) -> float | None:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT max(synced_until) FROM sync_state").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None or row[0] is None else float(row[0])


@pytest.fixture
def follow_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "IMAGETRAIL_CONCURRENCY": "1",
        "IMAGETRAIL_FOLLOW_INTERVAL": "1h",
    }


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_follow_stops_cleanly_mid_backfill_and_resumes(
    sim_prometheus: tuple[str, float, float],
    tmp_path: Path,
    follow_env: dict[str, str],
    sig: int,
) -> None:
    url, start, end = sim_prometheus
    until = end + 3600

    def args(ledger: Path, *extra: str) -> list[str]:
        return ["sync", "--prometheus", url, "--ledger", str(ledger), "--chunk", "6h", *extra]

    stopped = tmp_path / "stopped.db"
    follow = _Follow(args(stopped, "--since", str(start), "--follow"), follow_env, tmp_path)
    follow.wait_for(lambda: _synced_until(stopped) is not None, "the first chunk")
    code, took = follow.stop(sig)
    assert code == 0, follow.lines
    assert took < 10, took
    mark = _synced_until(stopped)
    assert mark is not None
    assert start < mark < end - 6 * 3600, "stopped mid-backfill"
    assert any(line.startswith("stopped") for line in follow.lines), follow.lines
    assert not any("Traceback" in line for line in follow.lines), follow.lines

    # Resumed up to a fixed end, the ledger equals one clean run to the same end.
    clean = tmp_path / "clean.db"
    for path, extra in ((clean, ["--since", str(start)]), (stopped, [])):
        done = subprocess.run(
            [str(BIN), *args(path, *extra, "--until", str(until))],
            capture_output=True, text=True, env=follow_env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    with Ledger.open(clean, create=False) as a, Ledger.open(stopped, create=False) as b:
        clean_spans, resumed_spans = sorted(a.spans(), key=repr), sorted(b.spans(), key=repr)
        assert len(clean_spans) > 500
        assert resumed_spans == clean_spans
        assert b.changes(start=0) == a.changes(start=0)


@pytest.mark.slow
def test_follow_stops_at_once_while_it_sleeps(
    sim_prometheus: tuple[str, float, float], tmp_path: Path, follow_env: dict[str, str]
) -> None:
    url, _start, end = sim_prometheus
    ledger = tmp_path / "l.db"
    args = ["sync", "--prometheus", url, "--ledger", str(ledger), "--chunk", "1d"]
    follow = _Follow([*args, "--since", str(end - 86400), "--follow"], follow_env, tmp_path)
    follow.wait_for(lambda: any("synced ksm" in line for line in follow.lines), "the first pass")
    time.sleep(0.5)  # asleep until the next poll, an hour away
    code, took = follow.stop(signal.SIGTERM)
    assert code == 0, follow.lines
    assert took < 5, took
    assert follow.lines[-1].startswith("stopped"), follow.lines
