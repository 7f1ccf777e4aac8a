"""The real ``imagetrail serve`` and ``imagetrail demo`` processes.

One serve syncs from a real Prometheus holding the simulated fleet in the background while
it serves; its API must then show the simulator's ground truth. Others check what a user
sees when Prometheus is down, when the port is taken, and that SIGTERM ends it cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagetrail.model import Change, ChangeKind, CutShort
from servers import Server, free_port, start_prometheus
from simdata import SimData, expected_window_changes, found_window_changes, sim_data, sim_tsdb

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).with_name("imagetrail"))
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")


class Served:
    """A running imagetrail process and the URL it printed."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        *,
        wait_url: float = 180.0,
        env: dict[str, str] | None = None,
    ) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
        env = {**clean, "XDG_CACHE_HOME": str(cwd / "cache"), **(env or {})}
        self.log = cwd / "serve.log"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [BIN, *args],
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = self._wait_for_url(wait_url)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = URL_LINE.search(self.log.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"imagetrail printed no URL:\n{self.log.read_text()[-3000:]}")

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url.rstrip("/") + path, params=params, timeout=30)

    def wait(self, path: str, status: int = 200, timeout: float = 240.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            try:
                last = self.get(path)
                if last.status_code == status:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        seen = None if last is None else (last.status_code, last.text)
        pytest.fail(f"{path} never answered {status} (last: {seen}):\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def data() -> SimData:
    return sim_data()


@pytest.fixture(scope="module")
def prometheus(data: SimData) -> Iterator[Server]:
    server = start_prometheus(sim_tsdb(data))
    try:
        yield server
    finally:
        server.stop()


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _change(row: dict[str, Any]) -> Change:
    fields = {k: v for k, v in row.items() if k != "state"}  # derived from the others
    return Change(
        **{
            **fields,
            "kind": ChangeKind(row["kind"]),
            "started": _unix(row["started"]),
            "finished": None if row["finished"] is None else _unix(row["finished"]),
            "cut_short": None if row["cut_short"] is None else CutShort(row["cut_short"]),
            "ended": None if row["ended"] is None else _unix(row["ended"]),
            "reasons": tuple(row["reasons"]),
        }
    )


def test_serve_syncs_in_the_background_and_answers(
    prometheus: Server, data: SimData, tmp_path: Path
) -> None:
    served = Served(
        ["serve", "--prometheus", prometheus.url, "--ledger", "l.db", "--port", "0"], tmp_path
    )
    try:
        # Serving starts at once; ready only once the first sync pass has completed.
        assert served.get("/healthz").status_code == 200
        ready = served.wait("/readyz", 200)
        assert ready.text.strip() == "synced"
        status = served.get("/api/v1/status").json()
        assert status["sync"]["enabled"] is True
        assert status["sync"]["last_success"] is not None
        assert status["sync"]["last_error"] is None
        assert status["clusters"] == sorted(data.fleet.config.clusters)
        window = {"from": str(data.start), "to": str(data.end)}
        rows = served.get("/api/v1/changes", **window).json()
        found = found_window_changes([_change(r) for r in rows], data)
        expected = expected_window_changes(data)
        assert set(found) == set(expected)
        interval = data.fleet.config.scrape_interval
        for key, (started, _) in expected.items():
            assert abs(found[key][0] - started) <= interval, key
        page = served.get("/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        metrics = served.get("/metrics").text
        assert 'route="/api/v1/changes"' in metrics
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.log.read_text()
    assert "Traceback" not in served.log.read_text()


def test_serve_with_prometheus_down_serves_and_reports_it(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    served = Served(
        ["serve", "--prometheus", dead, "--ledger", "l.db", "--port", "0"],
        tmp_path,
    )
    try:
        assert served.get("/healthz").status_code == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = served.get("/api/v1/status").json()
            if status["sync"]["last_error"]:
                break
            time.sleep(0.5)
        assert dead in status["sync"]["last_error"]
        assert status["ready"] is False
        not_ready = served.get("/readyz")
        assert not_ready.status_code == 503
        assert dead in not_ready.text
        assert served.get("/").status_code == 200  # the page itself still loads
    finally:
        code = served.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in served.log.read_text()


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        subprocess.run(
            [BIN, "demo", "--no-serve", "--ledger", str(tmp_path / "d.db")],
            capture_output=True,
            check=True,
            cwd=tmp_path,
        )
        done = subprocess.run(
            [BIN, "serve", "--ledger", str(tmp_path / "d.db"), "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: the port is in use")
    assert "hint: pick another with --port" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_without_a_ledger_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [BIN, "serve", "--ledger", str(tmp_path / "missing.db"), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("error: ")
    assert "missing.db" in done.stderr
    assert not (tmp_path / "missing.db").exists()


def test_demo_serves_the_simulated_fleet(tmp_path: Path) -> None:
    served = Served(["demo", "--ledger", "demo.db", "--port", "0"], tmp_path)
    try:
        assert served.wait("/readyz", 200).text.strip() == "ledger"
        versions = served.get("/api/v1/versions").json()
        assert len(versions) > 10
        page = served.get("/")
        assert page.status_code == 200
        assert "plotly.min.js" in page.text
    finally:
        code = served.stop(signal.SIGINT)
    assert code == 0
    log = served.log.read_text()
    assert "The demo fleet is served at http://127.0.0.1:" in log
    assert "Traceback" not in log
