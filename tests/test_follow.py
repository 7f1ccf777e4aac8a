"""`imagetrail sync --follow` against a real Prometheus that scrapes a live target.

The target is a tiny kube-state-metrics look-alike whose answer the test changes: a rolling
update from web:1.0 to web:1.1. The running `sync --follow` process must record it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from imagetrail.errors import LedgerError
from imagetrail.ledger import Ledger
from imagetrail.model import Change
from servers import Server, start_prometheus

pytestmark = pytest.mark.slow
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def _pod(name: str, uid: str, tag: str, digest: str) -> str:
    ident = f'namespace="shop",pod="{name}",uid="{uid}"'
    return "\n".join(
        [
            f'kube_pod_container_info{{{ident},container="web",image="ghcr.io/acme/web:{tag}",'
            f'image_spec="ghcr.io/acme/web:{tag}",image_id="ghcr.io/acme/web@{digest}",'
            f'container_id="containerd://{uid}"}} 1',
            f'kube_pod_container_status_running{{{ident},container="web"}} 1',
            f'kube_pod_container_status_terminated{{{ident},container="web"}} 0',
            f'kube_pod_container_status_restarts_total{{{ident},container="web"}} 0',
            f'kube_pod_owner{{{ident},owner_kind="ReplicaSet",owner_name="web-{tag[-1]}abcdef",'
            f'owner_is_controller="true"}} 1',
            f'kube_replicaset_owner{{namespace="shop",replicaset="web-{tag[-1]}abcdef",'
            f'owner_kind="Deployment",owner_name="web",owner_is_controller="true"}} 1',
        ]
    )


class _Target:
    def __init__(self) -> None:
        self.body = ""
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (target.body + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def scraping_prometheus() -> Iterator[tuple[Server, _Target]]:
    target = _Target()
    target.body = _pod("web-1abcdef-aaaaa", "u-1", "1.0", DIGEST_A)
    config = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: ksm\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{target.url}']\n"
        "        labels: {cluster: live}\n"
    )
    server = start_prometheus(config_yaml=config)
    try:
        yield server, target
    finally:
        server.stop()
        target.httpd.shutdown()
        target.httpd.server_close()


def _wait_for(what: str, check: object, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _changes(path: Path) -> list[Change]:
    try:
        with Ledger.open(path, create=False) as ledger:
            return ledger.changes(start=0)
    except LedgerError:  # not created yet, or being created by the sync process
        return []


def test_follow_records_a_live_rollout(
    scraping_prometheus: tuple[Server, _Target], tmp_path: Path
) -> None:
    server, target = scraping_prometheus
    ledger = tmp_path / "live.db"
    env = {
        **os.environ,
        "IMAGETRAIL_SCRAPE_INTERVAL": "1s",
        "IMAGETRAIL_FOLLOW_INTERVAL": "1s",
        "IMAGETRAIL_CHUNK": "1h",
    }

    def scraped() -> bool:  # Prometheus starts scraping ~5 s after it starts
        answer = httpx.get(f"{server.url}/api/v1/query", params={"query": "kube_pod_owner"})
        return bool(answer.json()["data"]["result"])

    _wait_for("Prometheus to scrape the target", scraped)
    time.sleep(2)  # a few scrapes of the old version
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagetrail",
            "sync",
            "--prometheus",
            server.url,
            "--ledger",
            str(ledger),
            "--since",
            "5m",
            "--follow",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def has_old_version() -> bool:
            try:
                with Ledger.open(ledger, create=False) as led:
                    return any(s.image.endswith("web:1.0") for s in led.spans())
            except LedgerError:
                return False

        _wait_for("the first sync", has_old_version)
        # Rolling update: a new pod on 1.1 starts, then the old one goes.
        target.body = "\n".join(
            [
                _pod("web-1abcdef-aaaaa", "u-1", "1.0", DIGEST_A),
                _pod("web-2abcdef-bbbbb", "u-2", "1.1", DIGEST_B),
            ]
        )
        time.sleep(3)
        target.body = _pod("web-2abcdef-bbbbb", "u-2", "1.1", DIGEST_B)

        def rollout_finished() -> bool:
            return any(
                c.kind.value == "upgrade" and c.finished is not None for c in _changes(ledger)
            )

        _wait_for("the rollout in the ledger", rollout_finished)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    change = next(c for c in _changes(ledger) if c.kind.value == "upgrade")
    assert (change.cluster, change.namespace, change.workload_kind, change.workload) == (
        "live",
        "shop",
        "Deployment",
        "web",
    )
    assert change.from_image == "ghcr.io/acme/web:1.0"
    assert change.to_image == "ghcr.io/acme/web:1.1"
    assert change.finished is not None
    assert 2.0 <= change.finished - change.started <= 6.0, (change, err)
    assert "synced ksm" in err
