"""A scriptable local HTTP server for the error paths a real server will not produce on cue.

A test scripts replies per path (status, headers, body, delay, dropped connection, truncated
body) and afterwards inspects every request the client sent::

    fake.script("/api/v1/query_range", prom_error("bad_data", "parse error"), prom_matrix([]))
    ...client call...
    assert fake.requests[0].params["query"] == ["up"]

Replies for a path are used in order and the last one repeats, so "fail twice, then succeed"
is three replies. Unscripted paths answer 404 like Prometheus does. The response helpers copy
the shapes of Prometheus' HTTP API (``web/api/v1``): the HTTP status follows ``errorType``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

# Prometheus' respondError: errorType → HTTP status (web/api/v1/api.go).
PROMETHEUS_ERROR_STATUS: dict[str, int] = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,
    "timeout": 503,
    "internal": 500,
    "not_found": 404,
    "unavailable": 503,
}

Action = Literal["respond", "close", "truncate"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``action``: ``respond`` normally; ``close`` drops the connection without a response;
    ``truncate`` announces the full Content-Length but sends only half the body and closes.
    ``delay`` seconds pass before anything is sent (to provoke client timeouts).
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: Action = "respond"


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the client sent it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body's fields when it is ``application/x-www-form-urlencoded``."""
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    @property
    def params(self) -> dict[str, list[str]]:
        """Query-string and form fields together, as Prometheus reads them (GET or POST)."""
        merged: dict[str, list[str]] = {k: list(v) for k, v in self.query.items()}
        for key, values in self.form.items():
            merged.setdefault(key, []).extend(values)
        return merged


def json_reply(payload: Any, status: int = 200, **kwargs: Any) -> Reply:
    """A JSON body with Prometheus' Content-Type."""
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return Reply(status=status, body=json.dumps(payload).encode(), headers=headers, **kwargs)


def prom_success(data: Any, *, warnings: list[str] | None = None, **kwargs: Any) -> Reply:
    """``{"status":"success","data":...}`` (plus ``warnings`` when given)."""
    payload: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        payload["warnings"] = warnings
    return json_reply(payload, **kwargs)


def prom_matrix(result: list[dict[str, Any]], **kwargs: Any) -> Reply:
    """A query_range answer; ``result`` items are ``{"metric": {...}, "values": [[t, "v"]]}``."""
    return prom_success({"resultType": "matrix", "result": result}, **kwargs)


def prom_vector(result: list[dict[str, Any]], **kwargs: Any) -> Reply:
    """An instant-query answer; ``result`` items are ``{"metric": {...}, "value": [t, "v"]}``."""
    return prom_success({"resultType": "vector", "result": result}, **kwargs)


def prom_error(error_type: str, error: str, *, status: int | None = None, **kwargs: Any) -> Reply:
    """``{"status":"error","errorType":...,"error":...}`` with Prometheus' status for the type."""
    code = PROMETHEUS_ERROR_STATUS.get(error_type, 500) if status is None else status
    payload = {"status": "error", "errorType": error_type, "error": error}
    return json_reply(payload, status=code, **kwargs)


def prom_not_ready() -> Reply:
    """What Prometheus answers on every API path while its TSDB is still starting."""
    return Reply(
        status=503,
        body=b"Service Unavailable",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )


def text_reply(text: str, status: int = 200, **kwargs: Any) -> Reply:
    """A plain-text body (a proxy's error page, a wrong endpoint)."""
    headers = {"Content-Type": "text/plain; charset=utf-8", **kwargs.pop("headers", {})}
    return Reply(status=status, body=text.encode(), headers=headers, **kwargs)


_NOT_FOUND = text_reply("404 page not found\n", status=404)


class FakeServer:
    """An HTTP/1.1 server in a thread on 127.0.0.1 that replays scripted replies."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._httpd.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake delayed handlers, stop serving and close the socket."""
        self._stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def script(self, path: str, *replies: Reply) -> None:
        """Replace the replies for ``path``: used in order, the last one repeats."""
        if not replies:
            raise ValueError("script() needs at least one reply")
        with self._lock:
            self._scripts[path] = deque(replies)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for one path, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._scripts.get(request.path)
            if not queue:
                return _NOT_FOUND
            return queue.popleft() if len(queue) > 1 else queue[0]

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        # A client that timed out and hung up is the point of many tests, not an error.
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        if exc is not None:
            self.fake.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows recorded requests when a test fails."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        fake = self.server.fake
        reply = fake._next_reply(request)
        if reply.delay and fake._stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.action == "close":
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.action == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle
