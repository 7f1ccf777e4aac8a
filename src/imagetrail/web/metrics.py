"""``/metrics``: process and request metrics (prometheus-client), one registry per app.

Request metrics are labelled by the route's *template* (``/api/v1/heatmap``,
``/workload``), never by the raw path or query string, so their cardinality is bounded by
the number of routes however the server is called.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebMetrics:
    """The app's registry and the request instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "imagetrail_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "imagetrail_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        began = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - began
            route = _route_template(request)
            self.requests.labels(route, request.method, str(status)).inc()
            self.duration.labels(route, request.method).observe(elapsed)


def _route_template(request: Request) -> str:
    """The template of the route that answered (the router records it in the scope)."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path:
        return str(path)
    # Mounted static files leave no route in the scope.
    return "/static" if request.url.path.startswith("/static/") else "unmatched"
