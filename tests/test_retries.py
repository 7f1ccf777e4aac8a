"""One retry policy for every source request (issue 11).

Every transient failure (connect errors and timeouts, read timeouts, connections broken before
or during the answer, HTTP 5xx but 501/505/511, 408, 429 with Retry-After, a 2xx body that is
cut short or not JSON, a partial answer) is retried with the same backoff, within ``retries``
and ``retry_budget``; everything that will not change by asking again fails at once. The
request's :class:`Budget` bounds the attempts, their timeouts and the waits between them.

Most tests use the scripted server of ``fakeserver.py``; a raw socket server here sends what
``http.server`` cannot (a chunked body cut short, a reset). The last test puts a small
fault-injecting proxy in front of a real Prometheus.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx
import pytest

from fakeserver import FakeServer, Reply, json_reply, prom_error, prom_success, text_reply
from imagetrail.budget import Budget
from imagetrail.errors import (
    LimitExceeded,
    MalformedResponse,
    QueryRejected,
    SourceError,
    SourceUnavailable,
)
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource

QUERY_PATH = "/api/v1/query"
TOKEN = "s3cr3t-t0ken-value"
ONE_PAYLOAD = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"job": "a"}, "value": [1, "1"]}]},
}
ONE_BYTES = json.dumps(ONE_PAYLOAD).encode()
ONE = json_reply(ONE_PAYLOAD)
LOGIN_PAGE = b"<!DOCTYPE html><html><body><form action=/oauth2/start>Sign in</form></body></html>"
GAVE_UP = r"\(gave up after {n} attempts? in \d+\.\ds\)$"


class Sleeps(list[float]):
    """A stand-in for the wait between attempts that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(fake_server: FakeServer, sleeps: Sleeps) -> Iterator[Callable[..., PromClient]]:
    """Build clients for the fake server that record their waits (closed after the test)."""
    clients: list[PromClient] = []

    def make(**kwargs: Any) -> PromClient:
        url = kwargs.pop("url", fake_server.url)
        budget = kwargs.pop("budget", None)
        sleep = kwargs.pop("sleep", sleeps)
        client = PromClient(PromConfig(url, **kwargs), sleep=sleep, budget=budget)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_one(client: PromClient) -> None:
    result = client.query("up")
    assert result.result_type == "vector"
    assert [s.labels for s in result.series] == [{"job": "a"}]
    assert result.series[0].values == ((1.0, 1.0),)


@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
def test_a_login_page_is_the_clear_error_after_the_retries(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    content_type: str,
) -> None:
    """An HTML page may be a proxy's passing error page, so it is retried; one that stays (a
    login page: --prometheus is a UI or a proxy login) ends as the MalformedResponse it was."""
    page = Reply(body=LOGIN_PAGE, headers={"Content-Type": content_type})
    fake_server.script(QUERY_PATH, page, page, page)
    with pytest.raises(MalformedResponse, match="answered an HTML page, not the API") as info:
        make_client(retries=2).query("up")
    assert type(info.value) is MalformedResponse
    assert len(fake_server.requests) == 3
    assert len(sleeps) == 2
    assert "proxy login" in (info.value.hint or "")


# -- every transient failure is retried, then the answer is used -------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        prom_error("internal", "query engine panicked"),  # 500
        text_reply("bad gateway", 502),
        prom_error("unavailable", "ingesters are down"),  # 503
        text_reply("gateway timeout", 504),
        text_reply("insufficient storage", 507),
        text_reply("request timeout", 408),
        Reply(action="close"),  # the connection closed before the status line
        Reply(body=ONE_BYTES * 20, headers={"Content-Type": "application/json"}, action="truncate"),
        # JSON cut short, the HTTP message complete (a proxy that buffered part of it).
        Reply(body=ONE_BYTES[: len(ONE_BYTES) // 2], headers={"Content-Type": "application/json"}),
        Reply(
            body=b'{"status": "success",, "data": }', headers={"Content-Type": "application/json"}
        ),
        Reply(body=b"\xff\xfe not utf-8 at all"),
        # A proxy's error page with status 200 (the reliability suite's fault proxy sends it).
        Reply(
            body=b"<html><body>502 Bad Gateway</body></html>", headers={"Content-Type": "text/html"}
        ),
    ],
    ids=[
        "500",
        "502",
        "503",
        "504",
        "507",
        "408",
        "closed-before-status",
        "content-length-cut",
        "truncated-json",
        "invalid-json",
        "not-utf8",
        "html-error-page",
    ],
)
def test_a_transient_failure_is_retried_then_succeeds(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    failure: Reply,
) -> None:
    fake_server.script(QUERY_PATH, failure, ONE)
    client = make_client(backoff=0.5)
    assert_one(client)
    assert len(fake_server.requests) == 2
    assert client.stats.requests == 2
    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5  # the first wait is about `backoff`, with jitter


def test_the_wait_doubles(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, *[text_reply("busy", 500)] * 4, ONE)
    assert_one(make_client(backoff=1.0, retries=4))
    assert len(fake_server.requests) == 5
    for k, wait in enumerate(sleeps):
        assert 2**k / 2 <= wait <= 2**k


def test_a_read_timeout_is_retried(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, Reply(delay=3, body=ONE_BYTES), ONE)
    assert_one(make_client(timeout=0.3))
    assert len(fake_server.requests) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("retry_after", ["3", "HTTP-DATE"], ids=["seconds", "http-date"])
def test_429_waits_as_long_as_retry_after_says(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    retry_after: str,
) -> None:
    if retry_after == "HTTP-DATE":
        retry_after = email.utils.formatdate(time.time() + 30, usegmt=True)
    slow_down = text_reply("slow down", 429, headers={"Retry-After": retry_after})
    fake_server.script(QUERY_PATH, slow_down, ONE)
    assert_one(make_client())
    assert len(fake_server.requests) == 2
    [wait] = sleeps
    if retry_after == "3":
        assert wait == 3.0
    else:  # an HTTP date has whole seconds
        assert 28.0 <= wait <= 30.0


def test_retry_after_is_capped(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, text_reply("later", 429, headers={"Retry-After": "86400"}), ONE)
    assert_one(make_client(retry_budget=600))
    assert sleeps == [60.0]  # a server must not park us for a day


# -- raw failures http.server cannot send ------------------------------------------------------


class RawServer:
    """A loopback TCP server that answers each connection with the next scripted raw bytes.

    A reply is sent as it is and the connection is then closed; ``RESET`` closes it with a
    TCP reset instead (after the bytes before it). The last reply repeats.
    """

    RESET = b"<RST>"

    def __init__(self, *replies: bytes) -> None:
        self.replies = list(replies)
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    more = conn.recv(65536)
                    if not more:
                        break
                    head += more
                header, _, body = head.partition(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    body += conn.recv(65536)
                reply = self.replies[min(self.requests, len(self.replies) - 1)]
                self.requests += 1
                data, reset, _ = reply.partition(self.RESET)
                conn.sendall(data)
                if reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def raw_ok(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)
HALF = ONE_BYTES[: len(ONE_BYTES) // 2]


@pytest.mark.parametrize(
    "failure",
    [
        # A chunked body that stops before its last (zero-length) chunk.
        CHUNKED_HEAD + f"{len(HALF):x}\r\n".encode() + HALF + b"\r\n",
        # A reset in the middle of the body.
        raw_ok(ONE_BYTES)[:-10] + RawServer.RESET,
        # A reset before anything was sent.
        RawServer.RESET,
    ],
    ids=["chunked-cut", "reset-mid-body", "reset-before-status"],
)
def test_a_broken_connection_is_retried(sleeps: Sleeps, failure: bytes) -> None:
    with RawServer(failure, raw_ok(ONE_BYTES)) as server:
        with PromClient(PromConfig(server.url), sleep=sleeps) as client:
            assert_one(client)
        assert server.requests == 2
    assert len(sleeps) == 1


# -- what will not change is not retried ------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (prom_error("bad_data", "parse error at char 3"), QueryRejected),  # 400
        (prom_error("execution", "many-to-many matching not allowed"), QueryRejected),  # 422
        (text_reply("404 page not found\n", 404), QueryRejected),
        (text_reply("no", 401), QueryRejected),
        (prom_error("canceled", "query was canceled"), QueryRejected),  # 499
        (prom_error("internal", "not implemented", status=501), SourceUnavailable),
        (text_reply("login", 511), SourceUnavailable),
        (json_reply({"status": "error", "errorType": "bad_data", "error": "x"}), QueryRejected),
        (json_reply({"data": {}}), MalformedResponse),  # JSON of the wrong shape
        (prom_success({"resultType": "histogram", "result": []}), MalformedResponse),
        (Reply(status=302, headers={"Location": "https://sso.example/login"}), MalformedResponse),
    ],
    ids=[
        "400",
        "422",
        "404",
        "401",
        "499",
        "501",
        "511",
        "status-error",
        "wrong-shape",
        "unknown-result",
        "redirect",
    ],
)
def test_what_will_not_change_is_not_retried(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    reply: Reply,
    error: type[SourceError],
) -> None:
    fake_server.script(QUERY_PATH, reply, ONE)
    with pytest.raises(error) as info:
        make_client().query("up")
    assert type(info.value) is error
    assert len(fake_server.requests) == 1
    assert sleeps == []
    assert "gave up" not in str(info.value)


def test_a_tls_failure_is_not_retried(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    with pytest.raises(SourceUnavailable, match="TLS"):
        make_client(url=f"https://127.0.0.1:{fake_server.port}").query("up")
    assert sleeps == []


# -- giving up ---------------------------------------------------------------------------------


def test_giving_up_is_one_line_naming_attempts_and_time(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, prom_error("internal", f"bad token {TOKEN}"))
    with pytest.raises(SourceUnavailable) as info:
        make_client(retries=2, bearer_token=TOKEN).query("up")
    assert len(fake_server.requests) == 3
    assert len(sleeps) == 2
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{fake_server.url}/api/v1/query: HTTP 500 (internal): bad token")
    assert TOKEN not in message
    assert "***" in message
    assert info.value.hint is not None
    assert "--prometheus" in info.value.hint
    assert re.search(GAVE_UP.format(n=3), message), message


def test_giving_up_after_timeouts_keeps_the_timeout_hint(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, Reply(delay=3, body=ONE_BYTES))
    with pytest.raises(SourceUnavailable, match=r"no answer within 0\.2s \(ReadTimeout\)") as e:
        make_client(timeout=0.2, retries=1).query("up")
    assert len(fake_server.requests) == 2
    assert e.value.hint is not None
    assert "timeout" in e.value.hint


def test_giving_up_on_answers_that_stay_cut_short(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, Reply(body=ONE_BYTES[:20]))
    with pytest.raises(SourceUnavailable, match=r"the answer is not JSON \(20 bytes\)"):
        make_client(retries=1).query("up")
    assert len(fake_server.requests) == 2


def test_retries_0_sends_one_request(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, text_reply("busy", 503), ONE)
    with pytest.raises(SourceUnavailable, match=GAVE_UP.format(n=1)):
        make_client(retries=0).query("up")
    assert len(fake_server.requests) == 1
    assert sleeps == []


def test_a_retry_after_beyond_the_retry_budget_gives_up_at_once(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    slow_down = text_reply("slow down", 429, headers={"Retry-After": "30"})
    fake_server.script(QUERY_PATH, slow_down, ONE)
    with pytest.raises(SourceUnavailable, match="HTTP 429") as info:
        make_client(retry_budget=10).query("up")
    assert len(fake_server.requests) == 1
    assert sleeps == []  # never slept past the budget (nor at all: it would not have helped)
    assert "gave up after 1 attempt in" in str(info.value)


def test_the_waits_stay_within_the_retry_budget(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, text_reply("busy", 500))
    with pytest.raises(SourceUnavailable) as info:
        make_client(retries=10, backoff=1.0, retry_budget=3.0).query("up")
    assert 1 <= len(sleeps) <= 3
    assert sum(sleeps) <= 3.0
    assert len(fake_server.requests) == len(sleeps) + 1
    assert f"gave up after {len(sleeps) + 1} attempts" in str(info.value)


def test_retries_log_at_debug_and_a_late_success_at_info(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="imagetrail.sources")
    fake_server.script(QUERY_PATH, text_reply("busy", 500), Reply(action="close"), ONE)
    assert_one(make_client())
    records = [r for r in caplog.records if r.name == "imagetrail.sources"]
    assert all(r.levelno <= logging.INFO for r in records)
    retries = [r.getMessage() for r in records if r.getMessage().startswith("retrying")]
    assert len(retries) == 2
    assert all(r.levelno == logging.DEBUG for r in records if r.getMessage().startswith("retry"))
    [info] = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert "answered after 3 attempts" in info


def test_concurrent_readers_share_one_client(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, text_reply("busy", 500), Reply(action="close"), ONE)
    client = make_client()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            assert_one(client)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake_server.requests) == 10  # 8 answers, 2 failures retried
    assert client.stats.requests == 10


# -- the request's Budget ----------------------------------------------------------------------


def test_a_budget_cancelled_while_waiting_stops_the_retries(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    budget = Budget()
    fake_server.script(QUERY_PATH, text_reply("busy", 500), ONE)

    def client_goes_away(seconds: float) -> None:
        budget.cancel("the client went away")

    with pytest.raises(LimitExceeded, match="the client went away") as info:
        make_client(budget=budget, sleep=client_goes_away).query("up")
    assert info.value.http_status == 499
    assert len(fake_server.requests) == 1


def test_the_budgets_wait_wakes_up_on_cancel(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    budget = Budget()
    fake_server.script(QUERY_PATH, text_reply("busy", 503), ONE)
    client = make_client(budget=budget, sleep=None, backoff=60.0)  # the first wait: 30-60 s
    threading.Timer(0.3, budget.cancel, args=("server shutting down",)).start()
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="server shutting down"):
        client.query("up")
    assert time.monotonic() - started < 10
    assert len(fake_server.requests) == 1


def test_the_budgets_wait_wakes_up_at_the_deadline(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    budget = Budget(timeout=0.5)
    fake_server.script(QUERY_PATH, text_reply("busy", 503), ONE)
    client = make_client(budget=budget, sleep=None, backoff=60.0)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="request_timeout") as info:
        client.query("up")
    assert time.monotonic() - started < 10
    assert info.value.http_status == 504
    assert len(fake_server.requests) == 1


def test_an_attempt_times_out_at_the_budgets_deadline(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, Reply(delay=5, body=ONE_BYTES))
    budget = Budget(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="request_timeout"):
        make_client(budget=budget, timeout=30.0).query("up")
    assert time.monotonic() - started < 3
    assert len(fake_server.requests) == 1


def test_max_queries_counts_the_retries(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, text_reply("busy", 500))
    budget = Budget(max_queries=2)
    with pytest.raises(LimitExceeded, match="more than 2 source queries") as info:
        make_client(budget=budget, retries=5).query("up")
    assert info.value.limit == "request_max_queries"
    assert len(fake_server.requests) == 2
    assert budget.spent == 3


def test_budget_sleep() -> None:
    budget = Budget()
    started = time.monotonic()
    assert budget.sleep(0.05) is True
    assert time.monotonic() - started >= 0.05
    threading.Timer(0.1, budget.cancel, args=("stop",)).start()
    started = time.monotonic()
    assert budget.sleep(30) is False
    assert time.monotonic() - started < 5
    assert budget.sleep(30) is False  # stays awake once cancelled
    short = Budget(timeout=0.1)
    started = time.monotonic()
    assert short.sleep(30) is False
    assert 0.05 <= time.monotonic() - started < 5


# -- end to end: a real Prometheus behind a proxy that breaks some answers ---------------------


FAULTS = ("500", "cut", "truncated-json", "close", "chunked-cut", "invalid-json")


class FaultyProxy:
    """Forwards to a real server; the first sending of a seeded half of the requests fails.

    Which requests fail depends only on the seed and the request (never on thread timing);
    the kind of failure goes round ``FAULTS`` in arrival order.
    """

    def __init__(self, upstream: str, *, seed: int = 11, fraction: float = 0.5) -> None:
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.fraction = fraction
        self.injected: list[str] = []
        self.errors: list[BaseException] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=60)
        self._httpd = _FaultServer(("127.0.0.1", 0), _FaultHandler)
        self._httpd.proxy = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FaultyProxy:
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

    def fault(self, target: str, body: bytes) -> str | None:
        key = hashlib.sha256(target.encode() + b"\0" + body).hexdigest()
        draw = hashlib.sha256(f"{self.seed}|{key}".encode()).digest()
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
            if not first or int.from_bytes(draw[:8], "big") / 2**64 >= self.fraction:
                return None
            kind = FAULTS[len(self.injected) % len(FAULTS)]
            self.injected.append(kind)
            return kind


class _FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError):
            self.proxy.errors.append(exc)


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = proxy.fault(self.path, body)
        if kind == "close":
            self.close_connection = True
            return
        if kind == "500":
            self._send(500, b'{"status":"error","errorType":"internal","error":"injected"}')
            return
        headers = {"Content-Type": self.headers.get("Content-Type", "")}
        answer = proxy._http.request(
            self.command, proxy.upstream + self.path, content=body, headers=headers
        )
        content = answer.content
        if kind == "cut":  # announces the whole body, sends half and hangs up
            self._send(answer.status_code, content[: len(content) // 2], length=len(content))
            self.close_connection = True
        elif kind == "truncated-json":  # well-formed HTTP, half a JSON document
            self._send(answer.status_code, content[: len(content) // 2])
        elif kind == "invalid-json":
            self._send(answer.status_code, content.replace(b'"', b"'", 1))
        elif kind == "chunked-cut":
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = content[: len(content) // 2]
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            self.close_connection = True
        else:
            self._send(answer.status_code, content)

    def _send(self, status: int, content: bytes, *, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content) if length is None else length))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _handle


@pytest.mark.slow
def test_a_real_prometheus_behind_faults_answers_as_without(
    sim_prometheus: tuple[str, float, float],
) -> None:
    url, _, end = sim_prometheus
    window = (end - 86400, end)
    with PromClient(PromConfig(url)) as client:
        clean = PrometheusSource(client, concurrency=2).chunk_spans("ksm", *window)
        clean_panel = PrometheusSource(client).panel_heatmap(
            start=window[0], end=window[1], step=3600
        )
    assert clean, "the window must hold spans"
    with FaultyProxy(url) as proxy:
        config = PromConfig(proxy.url, retries=3, backoff=0.01)
        with PromClient(config, sleep=lambda seconds: None) as client:
            faulty = PrometheusSource(client, concurrency=2).chunk_spans("ksm", *window)
            faulty_panel = PrometheusSource(client).panel_heatmap(
                start=window[0], end=window[1], step=3600
            )
            requests = client.stats.requests
    assert proxy.errors == []
    assert len(proxy.injected) >= len(FAULTS), proxy.injected
    assert set(proxy.injected) == set(FAULTS)
    assert requests == len(proxy._seen) + len(proxy.injected)  # each fault cost one retry
    assert sorted(faulty, key=repr) == sorted(clean, key=repr)
    assert faulty_panel == clean_panel
