"""Shared fixtures. Server logic lives in servers.py and fakeserver.py; keep this file thin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from fakeserver import FakeServer
from imagetrail import redact
from servers import MissingBinary, Server, start_postgres, start_prometheus, temporary_database

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _start(start: Callable[[], Server]) -> Server:
    """Never skip for a missing server: CI must not pass without the real ones."""
    try:
        return start()
    except MissingBinary as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def prometheus_empty() -> Iterator[Server]:
    """A Prometheus with no data and no scrape jobs (for error paths)."""
    server = _start(start_prometheus)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a private PostgreSQL for the session (a role that may create databases)."""
    server = _start(start_postgres)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    with temporary_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="module")
def sim_prometheus() -> Iterator[tuple[str, float, float]]:
    """A Prometheus holding the simulated fleet's history: (url, start, end)."""
    from simdata import sim_data, sim_tsdb

    data = sim_data()
    server = _start(lambda: start_prometheus(sim_tsdb(data)))
    try:
        yield server.url, data.start, data.end
    finally:
        server.stop()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A scriptable HTTP server that records requests; fails the test on handler crashes."""
    with FakeServer() as server:
        yield server
    assert not server.errors, f"fake server handler errors: {server.errors!r}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module (tests/browser.py's launch). Module scope: Playwright's
    sync API keeps an event loop running in the main thread until it stops, which would
    break every later test that runs asyncio."""
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """Secrets registered by one test (settings.load, PromClient) are masked for the whole
    process; a test's secret such as "nope" must not mask another test's "$nope"."""
    yield
    redact.forget_all()
