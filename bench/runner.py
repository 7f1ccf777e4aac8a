"""One measured method in its own process, so that its peak RSS is its own.

    python -m bench.runner METHOD URL START END OUT.json [--ledger PATH]

``METHOD`` is ``imagetrail`` (``sync_once`` into a fresh SQLite ledger, as ``imagetrail
sync`` does), ``naive`` or ``naive-grid`` (:mod:`bench.naive`, variants ``stamp`` and
``grid``), or ``cli`` (the ``imagetrail sync`` command itself, in this process). The process
writes its peak RSS, what its :class:`PromClient` counted (requests, wire bytes, also split
by kind of query) and the spans it found to ``OUT.json``; the parent measures wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from bench.measure import peak_rss_mib
from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.service.sync import sync_once
from imagetrail.sources.promapi import PromClient, PromConfig
from imagetrail.sources.prometheus import PrometheusSource

METHODS = ("imagetrail", "naive", "naive-grid", "cli")
SCRAPE_INTERVAL = 30.0


def query_kind(path: str, query: str) -> str:
    """What a request is for, to split the counters (imagetrail's and the naive queries)."""
    if "kube_pod_container_info" in query:
        return "image labels"
    if "_owner" in query:
        return "owners"
    which = "not terminated" if "terminated" in query else "started"
    if path.endswith("query_range"):
        return f"range {which}"
    if "min_over_time(" in query:
        return "refine first"
    if "max_over_time((" in query:
        return "refine last"
    return "other"


class _CountedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, done: Any) -> None:
        self._inner, self._done, self._n = inner, done, 0

    def __iter__(self) -> Iterator[bytes]:
        for part in self._inner:
            self._n += len(part)
            yield part

    def close(self) -> None:
        self._inner.close()
        self._done(self._n)


class CountingTransport(httpx.BaseTransport):
    """Wire bytes, requests and seconds per kind of query (see :func:`query_kind`)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.by_kind: dict[str, dict[str, float]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read().decode("utf-8", "replace")
        form = parse_qs(body) if request.method == "POST" else parse_qs(request.url.query.decode())
        kind = query_kind(request.url.path, form.get("query", [""])[0])
        began = time.perf_counter()
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)

        def done(nbytes: int) -> None:
            with self._lock:
                row = self.by_kind.setdefault(kind, {"requests": 0, "bytes": 0, "seconds": 0.0})
                row["requests"] += 1
                row["bytes"] += nbytes
                row["seconds"] += time.perf_counter() - began

        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountedStream(response.stream, done),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def _client(url: str) -> tuple[PromClient, CountingTransport]:
    transport = CountingTransport()
    return PromClient(PromConfig(url=url), transport=transport), transport


def _counters(client: PromClient, transport: CountingTransport) -> dict[str, Any]:
    return {
        "requests": client.stats.requests,
        "bytes_received": client.stats.bytes_received,
        "client_seconds": round(client.stats.seconds, 3),
        "by_query": {
            kind: {k: round(v, 3) for k, v in row.items()}
            for kind, row in sorted(transport.by_kind.items())
        },
    }


def span_to_json(span: Span) -> dict[str, Any]:
    """A span as a JSON object (the dataclass fields)."""
    return asdict(span)


def span_from_json(data: dict[str, Any]) -> Span:
    """Inverse of :func:`span_to_json`."""
    return Span(**data)


def run_imagetrail(
    url: str, start: float, end: float, ledger_path: Path, bucket: float | None = None
) -> dict[str, Any]:
    """``imagetrail sync`` of ``(start, end]`` into a new ledger; spans read back from it.

    ``bucket``: the presence bucket, when not imagetrail's default (for experiments).
    """
    client, transport = _client(url)
    with client:
        source = PrometheusSource(client, resolution=SCRAPE_INTERVAL)
        if bucket is not None:
            source = PrometheusSource(client, resolution=SCRAPE_INTERVAL, bucket=bucket)
        with Ledger.open(ledger_path) as ledger:
            result = sync_once(ledger, source, url=url, signal="ksm", since=start, until=end)
            spans = ledger.spans()
        return {
            "peak_rss_mib": peak_rss_mib(),
            **_counters(client, transport),
            "chunks": result.chunks,
            "changes": result.changes,
            "spans": [span_to_json(s) for s in spans],
        }


def run_naive(url: str, start: float, end: float, variant: str) -> dict[str, Any]:
    """The naive dense reading of ``(start, end]`` (see :mod:`bench.naive`)."""
    from bench.naive import naive_spans

    client, transport = _client(url)
    with client:
        result = naive_spans(client, start, end, step=SCRAPE_INTERVAL, variant=variant)
        return {
            "peak_rss_mib": peak_rss_mib(),
            **_counters(client, transport),
            "points": result.points,
            "spans": [span_to_json(s) for s in result.spans],
        }


def run_cli(url: str, start: float, ledger_path: Path) -> dict[str, Any]:
    """``imagetrail sync --prometheus URL --since START --ledger FILE``, as a user types it.

    The command has no ``--until``: it reads up to now, so past the simulated week it also
    reads the empty days up to today (two cheap queries each). Its client's counters are not
    reachable from outside, so only time, memory and spans are measured.
    """
    import os

    from imagetrail.cli import main as cli_main

    argv = ["imagetrail", "sync", "--prometheus", url, "--since", str(int(start))]
    argv += ["--signal", "ksm", "--ledger", str(ledger_path)]
    saved, sys.argv = sys.argv, argv
    here = os.getcwd()
    os.chdir(ledger_path.parent)  # no imagetrail.yaml of the repo's can be picked up
    try:
        cli_main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        sys.argv = saved
        os.chdir(here)
    peak = peak_rss_mib()
    with Ledger.open(ledger_path) as ledger:
        spans = ledger.spans()
    return {"peak_rss_mib": peak, "until": "now", "spans": [span_to_json(s) for s in spans]}


def main(argv: list[str] | None = None) -> int:
    """Run one method and write its counters and spans to OUT.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("url")
    parser.add_argument("start", type=float)
    parser.add_argument("end", type=float)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ledger", type=Path, default=None)
    parser.add_argument("--bucket", type=float, default=None, help="imagetrail's presence bucket")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.method in ("imagetrail", "cli"):
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            ledger = args.ledger or Path(tmp) / "ledger.db"
            if args.method == "cli":
                data = run_cli(args.url, args.start, ledger)
            else:
                data = run_imagetrail(args.url, args.start, args.end, ledger, args.bucket)
    else:
        variant = "grid" if args.method == "naive-grid" else "stamp"
        data = run_naive(args.url, args.start, args.end, variant)
    data["method"] = args.method
    data["inner_seconds"] = time.perf_counter() - began
    args.out.write_text(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
