"""A fault-injecting HTTP proxy in front of a real Prometheus (threads, 127.0.0.1).

Every request is forwarded to the upstream server; at ``rate`` a request is answered with a
fault instead (or its real answer is spoiled). Which requests go bad depends only on the seed,
the request (method, path, query string, body) and how many times that same request was seen,
never on thread timing, so a run is repeatable::

    with FaultProxy(prometheus.url, seed=1, rate=0.3) as proxy:
        run_sync(proxy.url)
        print(proxy.requests, proxy.faults)

The faults are what real Prometheus-compatible servers and the networks in front of them do:

- ``500``, ``503``: an error status with a Prometheus-style JSON error body;
- ``429``: too many requests, with ``Retry-After``;
- ``hang``: no answer for ``hang`` seconds (past the client's timeout), then the connection closes;
- ``cut``: the headers promise the whole body, half of it is sent, the connection closes;
- ``truncated``: a complete HTTP answer whose JSON body stops half-way;
- ``invalid``: a 200 answer that is not JSON at all (a proxy's HTML error page);
- ``partial``: Thanos-style partial answer: ``status: success`` with ``warnings`` naming an
  unavailable store and half of the result series removed.

With ``echo_headers`` the error bodies (500/503/429) quote the request's headers, as some
gateways do: a client that prints the body would leak its credentials.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

FAULTS: tuple[str, ...] = (
    "500",
    "503",
    "429",
    "hang",
    "cut",
    "truncated",
    "invalid",
    "partial",
)
STORE = "127.0.0.1:10905"
PARTIAL_WARNING = (
    f'receive series from Addr: {STORE} LabelSets: {{prometheus="monitoring/k8s"}}: '
    f"rpc error: code = Unavailable desc = store {STORE} unavailable"
)
QUERY_PATHS = ("/api/v1/query", "/api/v1/query_range")
# Hop-by-hop headers and those httpx sets itself.
_SKIP_HEADERS = {"host", "connection", "content-length", "transfer-encoding", "accept-encoding"}


class FaultProxy:
    """A loopback proxy that answers a seeded fraction of requests with faults.

    ``rate`` and ``faults`` may be changed while it runs (e.g. ``rate = 0`` to resume clean).
    ``requests`` counts every request received, ``queries`` those to the query endpoints,
    ``faults`` each fault given by kind.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        hang: float = 3.0,
        retry_after: str = "1",
        echo_headers: bool = False,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.rate = rate
        self.faults = tuple(faults)
        self.hang = hang
        self.retry_after = retry_after
        self.echo_headers = echo_headers
        self.requests = 0
        self.queries = 0
        self.faults_given: Counter[str] = Counter()
        self.errors: list[str] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = httpx.Client(timeout=120)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def faults_total(self) -> int:
        return sum(self.faults_given.values())

    def counts(self) -> dict[str, Any]:
        """Requests, query requests and faults by kind, for a report."""
        with self._lock:
            return {
                "requests": self.requests,
                "queries": self.queries,
                "faults": self.faults_total,
                "by_fault": dict(sorted(self.faults_given.items())),
            }

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.queries = 0
            self.faults_given.clear()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
        self._http.close()

    def choose(self, method: str, target: str, body: bytes) -> str | None:
        """Count the request and decide its fault (None: forward it faithfully)."""
        key = f"{method} {target} {body.decode('utf-8', 'replace')}"
        with self._lock:
            self.requests += 1
            if target.split("?", 1)[0] in QUERY_PATHS:
                self.queries += 1
            self._seen[key] += 1
            nth = self._seen[key]
            rate, faults = self.rate, self.faults
        rng = random.Random(f"{self.seed}|{nth}|{key}")
        if not faults or rng.random() >= rate:
            return None
        fault = rng.choice(faults)
        with self._lock:
            self.faults_given[fault] += 1
        return fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def proxy(self) -> FaultProxy:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        return proxy

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, *args: object) -> None:
        pass

    def _handle(self) -> None:
        proxy = self.proxy
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy.choose(self.command, self.path, body)
            if fault == "hang":
                proxy._stopping.wait(proxy.hang)
                self.close_connection = True
                return
            if fault in ("500", "503", "429"):
                self._error(int(fault))
                return
            if fault == "invalid":
                self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
                return
            upstream = self._forward(body)
            content = upstream.content
            ctype = upstream.headers.get("content-type", "application/json")
            if fault == "partial":
                content = _partial(content)
            elif fault == "truncated":
                content = content[: max(1, len(content) // 2)]
            if fault == "cut":
                self._cut(upstream.status_code, content, ctype)
                return
            self._send(upstream.status_code, content, ctype)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a proxy bug must fail the test that reads .errors
            proxy.errors.append(f"{type(exc).__name__}: {exc}")
            self.close_connection = True

    def _forward(self, body: bytes) -> httpx.Response:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP_HEADERS}
        return self.proxy._http.request(
            self.command, self.proxy.upstream + self.path, content=body, headers=headers
        )

    def _error(self, status: int) -> None:
        message = {500: "internal server error", 503: "service unavailable"}.get(
            status, "too many requests"
        )
        if self.proxy.echo_headers:
            message += "; request headers: " + "; ".join(
                f"{k}: {v}" for k, v in self.headers.items()
            )
        payload = {"status": "error", "errorType": "internal", "error": message}
        extra = {"Retry-After": self.proxy.retry_after} if status in (429, 503) else {}
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _send(
        self,
        status: int,
        content: bytes,
        ctype: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(content)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(content)

    def _cut(self, status: int, content: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content[: len(content) // 2])
        self.wfile.flush()
        time.sleep(0.05)
        self.close_connection = True


def _partial(content: bytes) -> bytes:
    """The answer as a Thanos querier gives it when a store is down: half the series."""
    try:
        answer = json.loads(content)
    except ValueError:
        return content
    if not isinstance(answer, dict) or answer.get("status") != "success":
        return content
    data = answer.get("data")
    if isinstance(data, dict) and isinstance(data.get("result"), list):
        data["result"] = data["result"][1::2]
    elif isinstance(data, list):
        answer["data"] = data[1::2]
    answer["warnings"] = [PARTIAL_WARNING]
    return json.dumps(answer).encode()
