"""Fixtures of the reliability suite: one real Prometheus holding a small simulated fleet
(the `orders` namespace, two days, ~1.1M samples) and the ledger of one clean sync of it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reliability.helpers import base_env, ledger_dump, run, sync_args
from servers import MissingBinary, Server, start_prometheus
from simdata import impact_sim_data, sim_tsdb


@dataclass(frozen=True)
class Fleet:
    """The Prometheus every part reads and the window it holds."""

    url: str
    start: float
    end: float
    server: Server


@dataclass(frozen=True)
class Clean:
    """One clean sync of the whole window: its dump, duration and a copy of its ledger."""

    dump: dict[str, list[tuple[Any, ...]]]
    seconds: float
    ledger: Path


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    data = impact_sim_data()
    try:
        server = start_prometheus(sim_tsdb(data))
    except MissingBinary as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield Fleet(server.url, data.start, data.end, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def clean(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Clean:
    home = tmp_path_factory.mktemp("clean")
    ledger = home / "clean.db"
    began = time.monotonic()
    done = run(sync_args(fleet.url, str(ledger), fleet.start, fleet.end), base_env(home))
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    dump = ledger_dump(str(ledger))
    assert len(dump["spans"]) > 20
    assert dump["changes"]
    return Clean(dump, seconds, ledger)


@pytest.fixture
def clean_copy(clean: Clean, tmp_path: Path) -> Path:
    """A private copy of the clean ledger (a serve process may write to it)."""
    target = tmp_path / "ledger.db"
    shutil.copy(clean.ledger, target)
    return target
