"""Bounded load test: N concurrent clients walk a fixed request mix for a fixed time.

Each client is a loop on one shared ``httpx.AsyncClient`` (one keep-alive connection per
client at most). After ``seconds`` no new request starts; the ones in flight finish (each
bounded by ``timeout``), so the test ends within ``seconds + timeout``. Any non-2xx answer
or exception is an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.web_mix import LoadRequest, client_schedule
from bench.web_stats import summarize


@dataclass(slots=True)
class Outcome:
    """One finished request."""

    kind: str
    began: float  # seconds since the test started
    seconds: float
    status: int | None  # None: an exception
    error: str | None = None
    nbytes: int = 0


@dataclass(slots=True)
class LoadResult:
    """Everything the load test saw; :meth:`summary` is what the report keeps."""

    clients: int
    seconds: float
    elapsed: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is None or not 200 <= o.status < 300]

    def summary(self) -> dict[str, Any]:
        """Requests/s, latency percentiles overall and per kind, errors (with examples)."""
        done = self.outcomes
        kinds = sorted({o.kind for o in done})
        errors = self.errors
        return {
            "clients": self.clients,
            "duration_seconds": self.seconds,
            "elapsed_seconds": round(self.elapsed, 2),
            "requests": len(done),
            "requests_per_second": round(len(done) / self.elapsed, 2) if self.elapsed else None,
            "bytes_received": sum(o.nbytes for o in done),
            "latency": summarize([o.seconds for o in done]),
            "by_kind": {k: summarize([o.seconds for o in done if o.kind == k]) for k in kinds},
            "errors": len(errors),
            "error_examples": [
                {"kind": o.kind, "status": o.status, "error": o.error} for o in errors[:5]
            ],
        }


async def _client_loop(
    client: httpx.AsyncClient,
    schedule: Sequence[LoadRequest],
    began: float,
    deadline: float,
    out: list[Outcome],
) -> None:
    k = 0
    while time.perf_counter() < deadline:
        req = schedule[k % len(schedule)]
        k += 1
        t0 = time.perf_counter()
        try:
            response = await client.get(req.path, params=list(req.params))
            nbytes = len(response.content)
            status: int | None = response.status_code
            error = None if 200 <= response.status_code < 300 else response.text[:200]
        except httpx.HTTPError as exc:
            status, error, nbytes = None, f"{type(exc).__name__}: {exc}", 0
        out.append(Outcome(req.kind, t0 - began, time.perf_counter() - t0, status, error, nbytes))


async def _run(
    base_url: str,
    mix: Sequence[LoadRequest],
    clients: int,
    seconds: float,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
) -> LoadResult:
    result = LoadResult(clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=timeout, limits=limits, transport=transport
    ) as client:
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(
            *(
                _client_loop(client, client_schedule(mix, i), began, deadline, result.outcomes)
                for i in range(clients)
            )
        )
        result.elapsed = time.perf_counter() - began
    return result


def run_load(
    base_url: str,
    mix: Sequence[LoadRequest],
    *,
    clients: int = 32,
    seconds: float = 30.0,
    timeout: float = 120.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> LoadResult:
    """Run the load test against ``base_url`` and return what every request did.

    ``transport``: for tests (an ``httpx.MockTransport``); by default real connections.
    """
    if clients < 1 or seconds <= 0:
        raise ValueError("at least one client for a positive time")
    return asyncio.run(_run(base_url, mix, clients, seconds, timeout, transport))
