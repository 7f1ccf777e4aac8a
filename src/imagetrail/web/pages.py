"""The HTML pages: server-rendered shells; each page's script fetches ``/api/v1`` and draws.

Templates get no cluster data at all, only the page's name: everything from a cluster
arrives as JSON and is put into the page with ``textContent`` (or as plotly data), so a
label value can never become markup.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from imagetrail import __version__

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

PAGES = {
    "heatmap": ("/", "Fleet heatmap"),
    "versions": ("/versions", "Versions now"),
    "workload": ("/workload", "Workload"),
    "changes": ("/changes", "Changes"),
    "capacity": ("/capacity", "Capacity"),
}


def _route(name: str) -> Callable[[Request], HTMLResponse]:
    def page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            f"{name}.html",
            {"page": name, "pages": PAGES, "title": PAGES[name][1], "version": __version__},
        )

    page.__name__ = name
    return page


# One route per page, from the table that also draws the navigation.
for _name, (_path, _) in PAGES.items():
    router.add_api_route(_path, _route(_name), methods=["GET"], response_class=HTMLResponse)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI 5 for the OpenAPI 3.1 document, from the installed fastapi-offline."""
    return templates.TemplateResponse(request, "docs.html", {"version": __version__})
