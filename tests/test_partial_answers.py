"""Partial answers are never truth: a sync behind a proxy that drops series, Thanos-style.

Thanos (and Mimir, VictoriaMetrics cluster) answer ``200 success`` with ``warnings`` when a store
or shard did not answer. The fault proxy here forwards to a real Prometheus holding the simulated
fleet and, for a seeded fraction of answers, drops half the result series and adds such a warning.
A sync through it must end with either the clean run's ledger or a failed chunk quoting the
warning, with only clean spans written and the watermark before the failed chunk.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clirun import assert_one_error, invoke
from imagetrail.errors import PartialAnswer
from imagetrail.ledger import Ledger
from imagetrail.model import Change, Span
from imagetrail.service.sync import chunks, sync_key, sync_once
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource
from servers import Server, start_prometheus
from simdata import HOUR, SimData, impact_sim_data, sim_tsdb

pytestmark = pytest.mark.slow

STORE = "127.0.0.1:10905"
# The shape of Thanos' warning when one StoreAPI fails under partial_response.
WARNING = (
    f'receive series from Addr: {STORE} LabelSets: {{prometheus="monitoring/k8s"}}: '
    f"rpc error: code = Unavailable desc = store {STORE} unavailable"
)
CHUNK = 6 * HOUR
WINDOW = 24 * HOUR
QUERY_PATHS = ("/api/v1/query", "/api/v1/query_range")


@dataclass(frozen=True)
class Corrupted:
    """One answer the proxy made partial: the query's evaluation times (first, last)."""

    path: str
    first: float
    last: float


class FaultProxy:
    """A loopback HTTP proxy to a real Prometheus that makes some query answers partial.

    Whether an answer is made partial depends only on the seed and the request (path and
    body), never on thread timing: for the same request sequence the same answers go bad.
    ``first_attempt_only`` spoils only the first sending of a request, so a retry is clean.
    ``within``: only requests whose time (or range start) lies in ``[a, b)`` may be spoiled
    (a store missing for that stretch of time), whatever the queries' text.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        fraction: float,
        first_attempt_only: bool = False,
        within: tuple[float, float] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.fraction = fraction
        self.within = within
        self.first_attempt_only = first_attempt_only
        self.enabled = True
        self.corrupted: list[Corrupted] = []
        self.forwarded = 0
        self.errors: list[BaseException] = []
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=60)
        self._httpd = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._httpd.proxy = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
        self._http.close()

    def spoils(self, path: str, query: str, body: bytes) -> bool:
        """Decide (and count) whether this answer is made partial."""
        if path not in QUERY_PATHS:
            return False
        if self.within is not None:
            first, _ = _times(parse_qs(query) | parse_qs(body.decode()))
            if not self.within[0] <= first < self.within[1]:
                return False
        key = hashlib.sha256(f"{path}?{query}".encode() + b"\0" + body).hexdigest()
        with self._lock:
            if not self.enabled:
                return False
            nth = self._seen.get(key, 0)
            self._seen[key] = nth + 1
        if self.first_attempt_only and nth > 0:
            return False
        draw = hashlib.sha256(f"{self.seed}|{key}".encode()).digest()
        return int.from_bytes(draw[:8], "big") / 2**64 < self.fraction

    def forward(self, method: str, target: str, body: bytes, content_type: str | None) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        return self._http.request(method, self.upstream + target, content=body, headers=headers)

    def record(self, path: str, fields: dict[str, list[str]]) -> None:
        first, last = _times(fields)
        with self._lock:
            self.corrupted.append(Corrupted(path, first, last))


def _times(fields: dict[str, list[str]]) -> tuple[float, float]:
    """The instant, or the range, a query request asks about."""
    if "time" in fields:
        return float(fields["time"][0]), float(fields["time"][0])
    return float(fields["start"][0]), float(fields["end"][0])


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError):
            self.proxy.errors.append(exc)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        answer = proxy.forward(self.command, self.path, body, self.headers.get("Content-Type"))
        content = answer.content
        with proxy._lock:
            proxy.forwarded += 1
        if answer.status_code == 200 and proxy.spoils(split.path, split.query, body):
            payload = json.loads(content)
            result = payload["data"]["result"]
            # A store that did not answer: its half of the series is missing.
            payload["data"]["result"] = result[: len(result) // 2]
            payload["warnings"] = [WARNING]
            content = json.dumps(payload).encode()
            fields = parse_qs(split.query)
            fields.update(parse_qs(body.decode()))
            proxy.record(split.path, fields)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _handle


# -- fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clean:
    """The clean run's ledger dump, straight from Prometheus."""

    start: float
    end: float
    spans: list[Span]
    changes: list[Change]


@pytest.fixture(scope="module")
def data() -> SimData:
    return impact_sim_data()


@pytest.fixture(scope="module")
def prometheus(data: SimData) -> Iterator[Server]:
    server = start_prometheus(sim_tsdb(data))
    try:
        yield server
    finally:
        server.stop()


def _sync(url: str, ledger: Ledger, data: SimData, start: float, end: float, **kw: Any) -> None:
    config = PromConfig(url=url, backoff=0.0, **kw)
    with PromClient(config) as client:
        source = PrometheusSource(client, resolution=data.fleet.config.scrape_interval)
        sync_once(ledger, source, url=url, signal="ksm", since=start, until=end, chunk=CHUNK)


def _dump(ledger: Ledger) -> tuple[list[Span], list[Change]]:
    return sorted(ledger.spans(), key=repr), ledger.changes(start=0)


@pytest.fixture(scope="module")
def clean(prometheus: Server, data: SimData, tmp_path_factory: pytest.TempPathFactory) -> Clean:
    # Half past a chunk border: the first chunk is a short one, as a real --since makes it.
    start = data.start + 3 * HOUR
    end = start + WINDOW
    with Ledger.open(tmp_path_factory.mktemp("clean") / "l.db") as ledger:
        _sync(prometheus.url, ledger, data, start, end)
        spans, changes = _dump(ledger)
    assert len(spans) > 20, "the window must hold enough spans to drop some"
    return Clean(start, end, spans, changes)


# -- tests ------------------------------------------------------------------------------------


def test_partial_first_attempts_are_retried_into_the_clean_ledger(
    prometheus: Server, data: SimData, clean: Clean, tmp_path: Path
) -> None:
    with (
        FaultProxy(prometheus.url, seed=7, fraction=0.3, first_attempt_only=True) as proxy,
        Ledger.open(tmp_path / "l.db") as ledger,
    ):
        _sync(proxy.url, ledger, data, clean.start, clean.end)
        assert len(proxy.corrupted) >= 3, "the proxy must have spoiled some answers"
        assert _dump(ledger) == (clean.spans, clean.changes)
    assert proxy.errors == []


@pytest.mark.parametrize(("seed", "chunk"), [(1, 0), (2, 1), (3, 3)])
def test_a_lasting_partial_answer_fails_its_chunk_and_writes_no_wrong_span(
    prometheus: Server, data: SimData, clean: Clean, tmp_path: Path, seed: int, chunk: int
) -> None:
    # A store is missing for one chunk's stretch of time: some of that chunk's answers are
    # partial on every attempt (the first chunk, or a later one after others committed).
    a, b = list(chunks(clean.start, clean.end, CHUNK))[chunk]
    with (
        FaultProxy(prometheus.url, seed=seed, fraction=0.5, within=(a, b)) as proxy,
        Ledger.open(tmp_path / "l.db") as ledger,
    ):
        try:
            _sync(proxy.url, ledger, data, clean.start, clean.end, retries=2)
        except PartialAnswer as exc:
            failure: PartialAnswer | None = exc
        else:
            failure = None
        spans, _ = _dump(ledger)
        key = sync_key("ksm", proxy.url)
        state = ledger.sync_state(key)

        # The first failing chunk is the first one, or a later one: the watermark is checked
        # with nothing and with something committed.
        assert proxy.corrupted, "the proxy must have spoiled some answers"

        # A spoiled answer is never used: the sync failed with the warning quoted.
        assert failure is not None
        message = str(failure)
        assert "\n" not in message
        assert f"store {STORE} unavailable" in message
        assert f"{proxy.url}/api/v1/query" in message
        assert state is not None
        assert state.last_error == failure.message

        # The watermark has not passed the earliest chunk that held a spoiled answer.
        borders = [a for a, _ in chunks(clean.start, clean.end, CHUNK)]
        bad_from = min(max(a for a in borders if a <= c.first) for c in proxy.corrupted)
        synced_until = state.synced_until if state.synced_until is not None else clean.start
        assert synced_until <= bad_from
        assert synced_until in [*borders, clean.end]

        # Every span written is the clean run's span, as far as the committed chunks see it.
        clean_by_key = {s.key(): s for s in clean.spans}
        for span in spans:
            twin = clean_by_key.get(span.key())
            assert twin is not None, f"a span the clean run does not have: {span}"
            assert span.first_seen == twin.first_seen, (span, twin)
            assert span.last_seen <= twin.last_seen, (span, twin)
        # ...and exactly what a clean sync up to the watermark writes.
        with Ledger.open(tmp_path / "prefix.db") as prefix:
            if synced_until > clean.start:
                _sync(prometheus.url, prefix, data, clean.start, synced_until)
            assert spans == _dump(prefix)[0]

        # Without faults, the next sync repairs the range: exactly the clean ledger.
        proxy.enabled = False
        _sync(proxy.url, ledger, data, clean.start, clean.end)
        assert _dump(ledger) == (clean.spans, clean.changes)
    assert proxy.errors == []


def test_accept_partial_stores_the_partial_answer_and_says_so(
    prometheus: Server,
    data: SimData,
    clean: Clean,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The opt-in: the sync goes through, the warning is logged, and the ledger is not the
    clean one (which is why it is not the default)."""
    caplog.set_level("WARNING", logger="imagetrail.sources")
    with (
        FaultProxy(prometheus.url, seed=1, fraction=0.3) as proxy,
        Ledger.open(tmp_path / "l.db") as ledger,
    ):
        _sync(proxy.url, ledger, data, clean.start, clean.end, retries=0, accept_partial=True)
        assert proxy.corrupted
        spans, _ = _dump(ledger)
    logged = [r for r in caplog.records if r.name == "imagetrail.sources"]
    assert len(logged) == len(proxy.corrupted)
    assert all(f"store {STORE} unavailable" in r.getMessage() for r in logged)
    assert spans != clean.spans


def test_the_cli_fails_with_one_line_quoting_the_warning_or_accepts_it_when_told(
    prometheus: Server, clean: Clean, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = [
        "sync",
        "--ledger",
        str(tmp_path / "l.db"),
        "--signal",
        "ksm",
        "--chunk",
        "6h",
        "--since",
        str(clean.start),
        "--until",
        str(clean.end),
    ]
    first = next(chunks(clean.start, clean.end, CHUNK))
    with FaultProxy(prometheus.url, seed=2, fraction=0.5, within=first) as proxy:
        env = {"IMAGETRAIL_PROMETHEUS_URL": proxy.url, "IMAGETRAIL_RETRIES": "1"}
        failed = invoke(args, env)
        line = assert_one_error(failed, 3, f"store {STORE} unavailable", proxy.url)
        assert "partial" in line
        assert "accept_partial" in failed.err  # the hint names the way out

        caplog.clear()
        accepted = invoke(args, {**env, "IMAGETRAIL_ACCEPT_PARTIAL": "true"})
        assert accepted.code == 0, accepted.err
        # Logged at WARNING (the CLI shows warnings on stderr; pytest captures them here).
        logged = [
            r.getMessage()
            for r in caplog.records
            if r.name == "imagetrail.sources" and r.levelname == "WARNING"
        ]
        assert logged
        assert all(f"store {STORE} unavailable" in m for m in logged)
    assert proxy.errors == []
