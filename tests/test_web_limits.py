"""Bounded work per web request, against a real Prometheus behind a counting, slowing proxy.

The probe that found the defect: one unauthenticated ``GET /api/v1/changes?source=prometheus
&from=0&to=99999999999`` kept Prometheus busy with ~700 queries a second for minutes, after
the client had gone, and SIGTERM did not stop the server. Here every such request is refused
or stopped, and the proxy in front of Prometheus counts what the source actually saw.

The app runs in uvicorn in a thread (real sockets: disconnects and stalled bodies are real),
and a real ``imagetrail serve`` process for the shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from imagetrail import budget
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.service.demo import build_demo_ledger
from imagetrail.web import create_app
from imagetrail.web.limits import RETRY_AFTER
from imagetrail.web.server import HARD_STOP, bind, url_of

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).with_name("imagetrail"))
HOUR, DAY = 3600.0, 86400.0
PROBE = "/api/v1/changes?source=prometheus&from=0&to=99999999999"


class CountingProxy:
    """Forwards every request to ``upstream`` after ``delay`` seconds and counts them."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0
        self._lock = threading.Lock()
        self._count = 0
        self._stop = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy._count += 1
                if proxy.delay and proxy._stop.wait(proxy.delay):
                    self.close_connection = True
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                answer = httpx.request(
                    self.command,
                    proxy.upstream + self.path,
                    content=body,
                    headers=headers,
                    timeout=60,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # imagetrail hanging up on a slow answer is the point

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def reset(self) -> None:
        with self._lock:
            self._count = 0

    def settle(self, quiet: float = 1.0, timeout: float = 20.0) -> int:
        """The count once it has not grown for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.count
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.count
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return now
        raise AssertionError(f"the source kept being queried: {self.count} queries")

    def wait_for(self, queries: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < queries:
            assert time.monotonic() < deadline, f"only {self.count} queries reached the source"
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class Running:
    """The app in uvicorn in a thread, on a real socket (as ``serve`` runs it, minus signals)."""

    def __init__(self, ledger_path: Path, **settings: Any) -> None:
        flags = {"ledger": str(ledger_path), **settings}
        self.settings = settings_mod.load(flags, environ={})
        self.ledger = Ledger.open(ledger_path, create=False)
        self.app = create_app(self.settings, self.ledger)
        sock = bind("127.0.0.1", 0)
        self.url = url_of(sock).rstrip("/")
        self.port = sock.getsockname()[1]
        # log_config=None: uvicorn's records reach the root logger, so caplog sees them.
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def get(self, path: str, timeout: float = 60.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.ledger.close()


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    return path


@pytest.fixture
def proxy(sim_prometheus: tuple[str, float, float]) -> Iterator[CountingProxy]:
    server = CountingProxy(sim_prometheus[0])
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def _until(condition: Callable[[], bool], failure: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def _live(path: str, start: float, end: float) -> str:
    return f"/api/v1/{path}?source=prometheus&from={start:.0f}&to={end:.0f}"


@pytest.fixture
def start(demo_ledger: Path, proxy: CountingProxy) -> Iterator[Callable[..., Running]]:
    """Starts the app with these settings, live from the proxy."""
    started: list[Running] = []

    def make(**settings: str) -> Running:
        # One-hour chunks: a two-day live read is ~48 chunks, hundreds of queries.
        app = Running(demo_ledger, prometheus_url=proxy.url, chunk="1h", **settings)
        started.append(app)
        return app

    yield make
    for app in started:
        app.close()


@pytest.fixture
def running(start: Callable[..., Running]) -> Running:
    return start()


def test_the_budget_reaches_the_endpoint_thread(demo_ledger: Path) -> None:
    """The middleware sets a context variable; a plain ``def`` endpoint runs in a worker
    thread: Starlette must carry the variable there."""
    app = Running(demo_ledger, request_max_queries="7", request_timeout="9s")
    seen: list[budget.Budget | None] = []

    def probe() -> dict[str, Any]:
        seen.append(budget.current.get())
        return {"thread": threading.current_thread().name}

    app.app.add_api_route("/probe-budget", probe)
    try:
        answer = app.get("/probe-budget").json()
        assert answer["thread"] != threading.main_thread().name
        assert len(seen) == 1
        assert seen[0] is not None
        assert seen[0].max_queries == 7
        assert seen[0].timeout == 9.0
        app.get("/probe-budget")
        assert seen[1] is not seen[0]  # one budget per request
        _until(lambda: len(app.app.state.imagetrail.requests) == 0, "a budget was left behind")
    finally:
        app.close()


def test_the_probe_request_is_refused_before_any_query(
    running: Running, proxy: CountingProxy
) -> None:
    began = time.monotonic()
    answer = running.get(PROBE)
    took = time.monotonic() - began
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert "live_max_range" in body["error"]
    assert "since=2d" in body["hint"]
    assert took < 1.0
    assert proxy.count == 0
    # Every live answer checks the range it would read, with the defaults too (7 days).
    for path in ("heatmap", "audit", "spans", "workloads"):
        refused = running.get(f"/api/v1/{path}?source=prometheus")
        assert refused.status_code == 422, path
        assert "live_max_range" in refused.json()["error"], path
    assert proxy.count == 0


def test_live_work_stops_at_the_query_cap(
    start: Callable[..., Running], proxy: CountingProxy, sim_prometheus: tuple[str, float, float]
) -> None:
    running = start(request_max_queries="10")
    _, _, end = sim_prometheus
    answer = running.get(_live("changes", end - 2 * DAY, end))
    assert answer.status_code == 422, answer.text
    assert "request_max_queries" in answer.json()["error"]
    concurrency = int(running.settings.concurrency)
    assert proxy.settle() <= 10 + concurrency
    # A live answer within the (default) cap works: versions at an instant, a short window.
    proxy.reset()
    roomy = start()
    versions = roomy.get(f"/api/v1/versions?source=prometheus&at={end - DAY:.0f}")
    assert versions.status_code == 200, versions.text
    assert versions.json()
    assert 10 < proxy.count <= int(roomy.settings.request_max_queries)


def test_live_work_stops_at_the_deadline(
    start: Callable[..., Running], proxy: CountingProxy, sim_prometheus: tuple[str, float, float]
) -> None:
    running = start(request_timeout="2s")
    _, _, end = sim_prometheus
    proxy.delay = 0.2
    began = time.monotonic()
    answer = running.get(_live("changes", end - 2 * DAY, end))
    took = time.monotonic() - began
    assert answer.status_code == 504, answer.text
    assert "request_timeout" in answer.json()["error"]
    assert took < 2 + 1.0
    at_answer = proxy.count
    assert proxy.settle() <= at_answer + 2


def test_a_client_going_away_stops_the_work(
    running: Running, proxy: CountingProxy, sim_prometheus: tuple[str, float, float]
) -> None:
    _, _, end = sim_prometheus
    proxy.delay = 0.2
    with pytest.raises(httpx.ReadTimeout):
        running.get(_live("changes", end - 2 * DAY, end), timeout=1.5)
    gone = time.monotonic()
    at_gone = proxy.count
    assert at_gone > 0
    final = proxy.settle(quiet=1.0)
    # Stopped at its next query: the two in flight (concurrency 2) finish, no more start.
    assert final <= at_gone + 2 + 2, (at_gone, final)
    assert time.monotonic() - gone < 1.0 + 2.0
    _until(lambda: len(running.app.state.imagetrail.requests) == 0, "the work did not end")


def test_more_live_requests_than_allowed_are_refused_at_once(
    start: Callable[..., Running], proxy: CountingProxy, sim_prometheus: tuple[str, float, float]
) -> None:
    running = start(live_concurrency="1")
    _, _, end = sim_prometheus
    proxy.delay = 0.2
    slow = _live("changes", end - 2 * DAY, end)
    first: list[BaseException] = []

    def long_request() -> None:
        try:
            running.get(slow, timeout=3.0)
        except httpx.ReadTimeout as exc:
            first.append(exc)

    worker = threading.Thread(target=long_request)
    worker.start()
    proxy.wait_for(1)
    began = time.monotonic()
    refused = running.get(slow)
    assert time.monotonic() - began < 1.0
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    assert "live_concurrency" in refused.json()["error"]
    # The ledger is not limited meanwhile.
    assert running.get("/api/v1/versions").status_code == 200
    worker.join()
    assert first, "the first request was expected to be still running"
    # Its slot is free again once its work ended (its client went away).
    state = running.app.state.imagetrail
    _until(lambda: state.live.used == 0, "the slot was not given back", timeout=10)
    assert running.get(f"/api/v1/versions?source=prometheus&at={end:.0f}").status_code == 200


def test_absurd_ranges_on_the_ledger_cost_nothing(demo_ledger: Path) -> None:
    running = Running(demo_ledger)  # no Prometheus: the ledger alone
    try:
        _absurd_ledger_ranges(running)
    finally:
        running.close()


def _absurd_ledger_ranges(running: Running) -> None:
    absurd = "from=0&to=99999999999"
    for path in ("heatmap", "changes", "audit", "workloads", "spans", "waits", "dora"):
        began = time.monotonic()
        answer = running.get(f"/api/v1/{path}?{absurd}")
        assert answer.status_code == 200, (path, answer.text)
        assert time.monotonic() - began < 3.0, path
    # Columns are bounded by the step: refused before anything is allocated.
    began = time.monotonic()
    wide = running.get(f"/api/v1/heatmap?{absurd}&step=1s")
    assert wide.status_code == 400
    assert "too many" in wide.json()["error"]
    assert time.monotonic() - began < 1.0


def test_impact_over_an_absurd_range_is_bounded_too(
    start: Callable[..., Running], proxy: CountingProxy
) -> None:
    """DORA's failure rate and impact verdicts query Prometheus per change: over every
    change in the ledger, without a bound, unless the request's budget applies."""
    running = start(request_max_queries="20", request_timeout="5s")
    began = time.monotonic()
    try:
        answer = running.get("/api/v1/dora?from=0&to=99999999999", timeout=15)
    finally:
        took = time.monotonic() - began
        queries = proxy.count
    assert answer.status_code in (422, 504), answer.text
    assert took < 5 + 2
    assert queries <= 20 + 2


def _post_head(length: int, token: str = "s3cret") -> bytes:
    return (
        "POST /api/v1/deployments HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _read_all(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything until the server closes (True) or ``timeout`` passes (False)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


def test_a_stalled_body_gets_408_and_the_connection_is_released(
    start: Callable[..., Running],
) -> None:
    running = start(request_body_timeout="1s", api_token="s3cret")
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.sendall(_post_head(200) + b'{"namespace": "shop", ')
        began = time.monotonic()
        data, closed = _read_all(sock, timeout=10)
        took = time.monotonic() - began
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert b"request_body_timeout" in data
    assert closed, "the server kept the connection open after the 408"
    assert 0.8 < took < 1 + 1.5


def test_a_client_gone_mid_body_is_no_error(
    start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    running = start(api_token="s3cret")
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.sendall(_post_head(500) + b'{"namespace": "sh')
            time.sleep(0.2)
    time.sleep(0.5)
    # And the server still answers.
    assert running.get("/healthz").status_code == 200
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
    assert "Traceback" not in caplog.text
    metrics = running.get("/metrics").text
    assert 'route="/api/v1/deployments",status="499"' in metrics


def _serve(tmp_path: Path, proxy: CountingProxy) -> tuple[subprocess.Popen[str], str, Path]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    env = {**clean, "XDG_CACHE_HOME": str(tmp_path / "cache"), "IMAGETRAIL_CHUNK": "1h"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [BIN, "serve", "--prometheus", proxy.url, "--ledger", "l.db", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 60
    while "http://127.0.0.1:" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    url = log.read_text().split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
    return proc, f"http://127.0.0.1:{url}", log


def _runaway_requests(url: str, path: str, n: int) -> tuple[list[threading.Thread], list[Any]]:
    outcomes: list[Any] = []

    def run() -> None:
        try:
            answer = httpx.get(url + path, timeout=60)
            outcomes.append((answer.status_code, answer.text))
        except httpx.TransportError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, outcomes


@pytest.mark.parametrize(
    ("delay", "within", "started"),
    [(0.2, 5.0, 6), (30.0, HARD_STOP + 3.0, 3)],
    ids=["slow-source", "stuck-source"],
)
def test_sigterm_stops_a_server_with_live_requests_in_flight(
    tmp_path: Path,
    proxy: CountingProxy,
    sim_prometheus: tuple[str, float, float],
    delay: float,
    within: float,
    started: int,
) -> None:
    """A slow source: the requests stop at their next query and answer 503. A stuck one
    (each query hangs for 30 s): the process still exits, after the hard stop."""
    _, _, end = sim_prometheus
    proxy.delay = delay
    proc, url, log = _serve(tmp_path, proxy)
    try:
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
        threads, outcomes = _runaway_requests(url, _live("changes", end - 2 * DAY, end), 2)
        proxy.wait_for(started)  # the background sync's queries and the live ones
        time.sleep(0.5)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for t in threads:
        t.join(10)
    text = log.read_text()
    assert code == 0, text
    assert took < within, (took, text)
    assert "Traceback" not in text
    if delay < 1:
        assert len(outcomes) == 2
        for outcome in outcomes:
            assert isinstance(outcome, tuple), outcomes
            assert outcome[0] == 503, outcomes
            assert "shutting down" in outcome[1], outcomes
