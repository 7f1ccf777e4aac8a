"""One measured method in its own process, so that its peak RSS is its own.

    python -m bench.runner METHOD URL START END OUT.json [--ledger PATH]

``METHOD`` is ``imagetrail`` (``sync_once`` into a fresh SQLite ledger, as ``imagetrail
sync`` does) or ``naive`` (:mod:`bench.naive`). The process writes what its
:class:`PromClient` counted (requests, wire bytes) and the spans it found to ``OUT.json``;
the parent measures wall time and peak RSS around it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource
from imagetrail.sync import sync_once

METHODS = ("imagetrail", "naive")
SCRAPE_INTERVAL = 30.0


def span_to_json(span: Span) -> dict[str, Any]:
    """A span as a JSON object (the dataclass fields)."""
    return asdict(span)


def span_from_json(data: dict[str, Any]) -> Span:
    """Inverse of :func:`span_to_json`."""
    return Span(**data)


def run_imagetrail(url: str, start: float, end: float, ledger_path: Path) -> dict[str, Any]:
    """``imagetrail sync`` of ``(start, end]`` into a new ledger; spans read back from it."""
    with PromClient(PromConfig(url=url)) as client:
        source = PrometheusSource(client, resolution=SCRAPE_INTERVAL)
        with Ledger.open(ledger_path) as ledger:
            result = sync_once(ledger, source, url=url, signal="ksm", since=start, until=end)
            spans = ledger.spans()
        return {
            "requests": client.stats.requests,
            "bytes_received": client.stats.bytes_received,
            "client_seconds": client.stats.seconds,
            "chunks": result.chunks,
            "changes": result.changes,
            "spans": [span_to_json(s) for s in spans],
        }


def run_naive(url: str, start: float, end: float) -> dict[str, Any]:
    """The naive dense reading of ``(start, end]`` (see :mod:`bench.naive`)."""
    from bench.naive import naive_spans

    with PromClient(PromConfig(url=url)) as client:
        result = naive_spans(client, start, end, step=SCRAPE_INTERVAL)
        return {
            "requests": client.stats.requests,
            "bytes_received": client.stats.bytes_received,
            "client_seconds": client.stats.seconds,
            "points": result.points,
            "spans": [span_to_json(s) for s in result.spans],
        }


def main(argv: list[str] | None = None) -> int:
    """Run one method and write its counters and spans to OUT.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("url")
    parser.add_argument("start", type=float)
    parser.add_argument("end", type=float)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ledger", type=Path, default=None)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.method == "imagetrail":
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            ledger = args.ledger or Path(tmp) / "ledger.db"
            data = run_imagetrail(args.url, args.start, args.end, ledger)
    else:
        data = run_naive(args.url, args.start, args.end)
    data["method"] = args.method
    data["inner_seconds"] = time.perf_counter() - began
    args.out.write_text(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
