"""The FastAPI application: pages, JSON API, ``/metrics``, health, and one error handler.

Security defaults: a Content-Security-Policy without inline script (every script is a file
under ``/static``), no CORS unless ``cors_origins`` names origins, and every value from a
cluster is escaped where it is rendered (Jinja autoescape; the page scripts only ever set
``textContent``). Nothing is fetched from a CDN: plotly.js and Swagger UI come from their
installed Python packages, because clusters are often air-gapped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from imagetrail import __version__
from imagetrail.errors import ImagetrailError
from imagetrail.ledger import Ledger
from imagetrail.settings import Settings
from imagetrail.web import api, deploy_api, pages
from imagetrail.web.limits import RequestLimits, client_disconnected, error_response
from imagetrail.web.scheduler import start_scheduler
from imagetrail.web.state import AppState

log = logging.getLogger("imagetrail.web")

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # plotly.js writes its own stylesheet rules at run time; no inline *script* is allowed.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_DIR = Path(__file__).parent / "static"


def vendor_file(package: str, relative: str) -> Path:
    """A file shipped inside an installed package (plotly.js, Swagger UI)."""
    return Path(str(resources.files(package).joinpath(relative)))


VENDOR: dict[str, tuple[str, str]] = {
    "plotly.min.js": ("plotly", "package_data/plotly.min.js"),
    # Swagger UI 5 (fastapi-offline bundles it): 4.x cannot render an OpenAPI 3.1 document.
    "swagger-ui-bundle.js": ("fastapi_offline", "static/swagger-ui-bundle.js"),
    "swagger-ui.css": ("fastapi_offline", "static/swagger-ui.css"),
}


def create_app(
    settings: Settings, ledger: Ledger, *, sync: bool = False, scheduled: bool = True
) -> FastAPI:
    """The web app over an open ``ledger`` (closed on shutdown).

    ``sync``: keep the ledger in sync from ``settings.prometheus_url`` in the background.
    ``scheduled``: send the scheduled report (``report_schedule``); of several worker
    processes only one does.
    """
    app_state = AppState(settings, ledger, sync=sync)

    def begin_shutdown() -> None:
        """Stop every request's work and the background threads (the server calls this on
        SIGTERM, before it waits for the requests to answer)."""
        app_state.begin_shutdown()
        scheduler = getattr(app.state, "report_scheduler", None)
        if scheduler is not None:
            scheduler.stop(timeout=0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app_state.syncer is not None:
            app_state.syncer.start()
        # The scheduled report (report_schedule); its status() is for /api/v1/status.
        app.state.report_scheduler = start_scheduler(app_state.context) if scheduled else None
        # Index the ledger now rather than in the first user's request.
        threading.Thread(target=app_state.warm, name="imagetrail-index", daemon=True).start()
        try:
            yield
        finally:
            begin_shutdown()
            if app.state.report_scheduler is not None:
                app.state.report_scheduler.stop(timeout=2)
            app_state.close()

    app = FastAPI(
        title="imagetrail",
        version=__version__,
        summary="Which container image versions ran where and when.",
        docs_url=None,  # our own /docs: Swagger UI from the installed package, no inline script
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.imagetrail = app_state
    app.state.begin_shutdown = begin_shutdown
    app.include_router(api.router)
    app.include_router(deploy_api.router)
    app.include_router(pages.router)

    @app.get("/static/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> FileResponse:
        if name not in VENDOR:
            raise StarletteHTTPException(404)
        return FileResponse(
            vendor_file(*VENDOR[name]), headers={"Cache-Control": "public, max-age=86400"}
        )

    # After the vendor route: the mount would otherwise answer /static/vendor/* first.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False, response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok\n"

    @app.get("/readyz", include_in_schema=False, response_class=PlainTextResponse)
    def readyz() -> PlainTextResponse:
        ready, reason = app_state.ready()
        return PlainTextResponse(reason + "\n", status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return app_state.metrics.exposition()

    @app.exception_handler(ImagetrailError)
    async def imagetrail_error(request: Request, exc: ImagetrailError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        # Gone mid-body: nobody reads the answer; 499 (nginx's) keeps /metrics honest.
        client_disconnected(request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_problem(e) for e in exc.errors())
        return JSONResponse({"error": problems, "hint": "see /docs"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "hint": None}, status_code=exc.status_code)

    from fastapi.middleware.gzip import GZipMiddleware

    # Innermost: its budget (a context variable) reaches the endpoint, and its refusals pass
    # through the metrics and security headers like any answer.
    app.add_middleware(
        RequestLimits,
        requests=app_state.requests,
        live=app_state.live,
        max_queries=settings.request_max_queries,
        timeout=settings.request_timeout,
        body_timeout=settings.request_body_timeout,
    )
    # plotly.js is 4.8 MB; heatmap JSON of a month is hundreds of kB. Both compress ~5x.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.middleware("http")(app_state.metrics.middleware)
    app.middleware("http")(_security_headers)
    origins = settings.cors_origins
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(origins), allow_methods=["GET"], allow_headers=[]
        )
    return app


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
