"""Credentials never show: sync and serve through a proxy whose error answers echo the request's
headers (as some gateways do), with a bearer token or a basic-auth password planted in the
settings. No output may hold them: stdout, stderr, the server log, /api/v1/status, the pages,
/metrics."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from faultproxy import FaultProxy
from reliability.conftest import Fleet
from reliability.helpers import Served, base_env, record_row, run, sync_args

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
TOKEN = "tok-s3cr3t-9f8e7d6c5b4a"
PASSWORD = "pw-s3cr3t-a1b2c3d4e5"
FAST = {
    "IMAGETRAIL_RETRY_BACKOFF": "10ms",
    "IMAGETRAIL_RETRY_BUDGET": "1s",
    "IMAGETRAIL_TIMEOUT": "2s",
    "IMAGETRAIL_RETRIES": "1",
}


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_no_output_shows_the_credentials(
    auth: str, fleet: Fleet, clean_copy: Path, tmp_path: Path
) -> None:
    if auth == "bearer":
        planted = {"IMAGETRAIL_BEARER_TOKEN": TOKEN}
        needles = [TOKEN]
    else:
        planted = {
            "IMAGETRAIL_BASIC_AUTH_USER": "alice",
            "IMAGETRAIL_BASIC_AUTH_PASSWORD": PASSWORD,
        }
        needles = [PASSWORD, base64.b64encode(f"alice:{PASSWORD}".encode()).decode()]
    env = base_env(tmp_path, IMAGETRAIL_FOLLOW_INTERVAL="1s", **FAST, **planted)
    outputs: dict[str, str] = {}
    with FaultProxy(
        fleet.url, seed=3, rate=1.0, faults=("500", "503", "429"), echo_headers=True
    ) as proxy:
        done = run(sync_args(proxy.url, str(tmp_path / "s.db"), fleet.start, fleet.end), env)
        outputs["sync stdout"] = done.stdout
        outputs["sync stderr"] = done.stderr
        with Served(["--prometheus", proxy.url, "--ledger", str(clean_copy)], tmp_path, env) as srv:
            began = time.monotonic()
            while time.monotonic() - began < 30:
                status = srv.get("/api/v1/status").json()
                if status["sync"].get("last_error"):
                    break
                time.sleep(0.5)
            for path in ("/api/v1/status", "/", "/changes", "/metrics", "/readyz", "/docs"):
                try:
                    outputs[path] = srv.get(path).text
                except httpx.HTTPError as exc:
                    outputs[path] = f"{type(exc).__name__}"
            outputs["serve log"] = srv.log_text()
    leaks = sorted(where for where, text in outputs.items() if any(n in text for n in needles))
    # The proxy did echo them: the check has teeth.
    echoed = proxy.faults_total > 0
    row: dict[str, Any] = {
        "case": f"{auth} credentials",
        "sync_exit": done.returncode,
        "proxy_faults": proxy.faults_total,
        "outputs_checked": len(outputs),
        "leaks": leaks or "none",
    }
    record_row("secrets", "credentials in outputs", row, passed=echoed and not leaks)
    assert echoed
    assert not leaks, {where: outputs[where][-1500:] for where in leaks}
