"""The scheduled report inside `serve`: a seconds-field cron expression, so that a run comes
within a second or two, in the in-process app and in a real `imagetrail serve` process."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from browser import serve, settings_for
from imagetrail.ledger import Ledger
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.query import QueryContext
from imagetrail.web.app import create_app
from imagetrail.web.scheduler import ReportScheduler
from servers import free_port
from test_report_delivery import mail_server
from test_web_serve import Served

EVERY_SECOND = "* * * * * *"


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schedule") / "demo.db"
    build_demo_ledger(path)[0].close()
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.1)
    return time.monotonic() - began


def test_next_run_follows_the_cron_expression_in_utc(demo_ledger: Path) -> None:
    qc = QueryContext(settings_for(demo_ledger))
    monday_8 = ReportScheduler(qc, "0 8 * * 1")
    t = datetime(2024, 5, 8, 12, 0, tzinfo=UTC).timestamp()  # a Wednesday
    assert monday_8.next_run(t) == datetime(2024, 5, 13, 8, 0, tzinfo=UTC).timestamp()
    # Exactly on a scheduled time: the next one, never the same one again.
    due = datetime(2024, 5, 13, 8, 0, tzinfo=UTC).timestamp()
    assert monday_8.next_run(due) == datetime(2024, 5, 20, 8, 0, tzinfo=UTC).timestamp()
    every_2s = ReportScheduler(qc, "* * * * * */2")
    assert every_2s.next_run(100.5) == 102.0


def test_scheduled_report_in_the_app_delivers_and_survives_failures(
    demo_ledger: Path, tmp_path: Path
) -> None:
    out = tmp_path / "weekly.md"
    settings = settings_for(
        demo_ledger,
        report_schedule=EVERY_SECOND,
        report_output=str(out),
        report_format="markdown",
        # A mail server nobody runs: each run fails that delivery, and only that one.
        smtp_host="127.0.0.1",
        smtp_port=str(free_port()),
        smtp_to="ops@example.test",
        smtp_tls="none",
    )
    app = create_app(settings, Ledger.open(demo_ledger))
    with serve(app) as url:
        scheduler = app.state.report_scheduler
        assert isinstance(scheduler, ReportScheduler)
        took = wait_for(lambda: scheduler.status()["runs"] >= 2, 20, "two scheduled runs")
        status = scheduler.status()
        assert out.read_text().startswith("# imagetrail report ")
        assert (tmp_path / "weekly.heatmap.png").read_bytes().startswith(b"\x89PNG")
        assert status["failures"] >= 2
        assert status["last_success"] is None
        assert "cannot reach the mail server 127.0.0.1:" in status["last_error"]
        assert f"wrote {out}" in status["last_delivered"]
        assert status["next_run"] is not None
        assert status["schedule"] == EVERY_SECOND
        # Serving goes on.
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
        assert httpx.get(url + "/api/v1/versions", timeout=30).status_code == 200
        began = time.monotonic()
    stopped = time.monotonic() - began
    assert took < 20
    assert stopped < 10
    assert scheduler.started
    assert not scheduler.is_alive()


def test_no_schedule_no_scheduler(demo_ledger: Path) -> None:
    app = create_app(settings_for(demo_ledger), Ledger.open(demo_ledger))
    with serve(app):
        assert app.state.report_scheduler is None


@pytest.mark.slow
def test_real_serve_mails_and_writes_the_scheduled_report(
    demo_ledger: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    with mail_server() as (box, port):
        served = Served(
            ["serve", "--ledger", str(demo_ledger), "--port", "0"],
            tmp_path,
            env={
                "IMAGETRAIL_REPORT_SCHEDULE": "* * * * * */2",
                "IMAGETRAIL_REPORT_OUTPUT": str(out),
                "IMAGETRAIL_SMTP_HOST": "127.0.0.1",
                "IMAGETRAIL_SMTP_PORT": str(port),
                "IMAGETRAIL_SMTP_TLS": "none",
                "IMAGETRAIL_SMTP_TO": "ops@example.test",
            },
        )
        try:
            wait_for(lambda: bool(box.messages) and out.exists(), 60, "the scheduled mail")
            assert served.get("/healthz").status_code == 200
        finally:
            began = time.monotonic()
            code = served.stop()
            stopped = time.monotonic() - began
    assert code == 0, served.log.read_text()
    assert stopped < 10
    _, rcpt, msg = box.messages[0]
    assert rcpt == ["ops@example.test"]
    assert msg.get_content_type() == "multipart/alternative"
    assert "<script" not in out.read_text().lower()
    assert "Traceback" not in served.log.read_text()
