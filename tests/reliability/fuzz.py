"""A seeded request generator over the web app's OpenAPI, and a bounded parallel runner.

Values come from a few pools per parameter: good ones (the fleet's real clusters, namespaces,
workloads, times), edge ones (empty, huge, negative, NaN, reversed ranges) and hostile ones
(quotes, backslashes, newlines, markup, unicode, very long strings, regex metacharacters,
catastrophic-backtracking patterns). Every request is checked by its status (< 500), its
transport (no reset, no timeout) and its duration against a deadline; a 504 that names
``request_timeout`` is the deadline answering and is counted apart.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

HOSTILE = (
    "",
    " ",
    '"',
    "'",
    "\\",
    '\\"',
    "\n",
    "a\nb",
    "\r\n",
    "\x00",
    "\t",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "${jndi:ldap://x}",
    "%00",
    "%2e%2e%2f",
    "../../etc/passwd",
    "ü—😀",
    "\u202e",
    "\ufeff",
    "日本語",
    ".*",
    "(",
    ")",
    "[",
    "a{1000000}",
    "(a+)+$",
    "(a|a)*$",
    "^$",
    "|",
    "\\d+",
    "(?P<x>",
    "*",
    "+",
    "?",
    'a"}[5m])or vector(1)#',
    '"} or up{a="',
    "x" * 5000,
    "é" * 2000,
)
TIMES_EDGE = (
    "0",
    "-1",
    "99999999999",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "1.5",
    "2026-02-30T00:00:00Z",
    "2026-01-01",
    "2026-01-01T00:00:00+25:00",
    "yesterday",
    "7d",
    "-7d",
    "0s",
    "1y",
    "99999999d",
    "1ms",
    "9" * 400,
)


# A 504 naming request_timeout is the deadline doing its job (settings: "past it the
# request's source queries stop and it answers 504"): counted, not an error.
DEADLINE_ANSWER = -504


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    params: tuple[tuple[str, str], ...]  # (name, type): "array", "string", "integer", "boolean"
    body: bool


def endpoints(openapi: Mapping[str, Any]) -> list[Endpoint]:
    """Every operation of the OpenAPI document, with its query parameters."""
    out = []
    for path, ops in openapi["paths"].items():
        for method, op in ops.items():
            params = []
            for p in op.get("parameters", []):
                if p.get("in") != "query":
                    continue
                schema = p.get("schema", {})
                kinds = [schema.get("type")] + [a.get("type") for a in schema.get("anyOf", [])]
                kind = next((k for k in kinds if k and k != "null"), "string")
                params.append((p["name"], kind))
            out.append(Endpoint(method.upper(), path, tuple(params), "requestBody" in op))
    return out


@dataclass
class Pools:
    """The good values of the fleet being served."""

    start: float
    end: float
    clusters: Sequence[str]
    namespaces: Sequence[str]
    workloads: Sequence[str]
    images: Sequence[str]
    hostile: Sequence[str] = HOSTILE


@dataclass
class Generator:
    """Seeded requests over ``endpoints``; ``live`` is the share asking ``source=prometheus``."""

    endpoints: Sequence[Endpoint]
    pools: Pools
    seed: int
    live: float = 0.15
    pages: Sequence[str] = ("/", "/versions", "/workload", "/changes", "/capacity", "/docs")
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _time(self) -> str:
        r, p = self.rng, self.pools
        roll = r.random()
        if roll < 0.6:
            t = r.uniform(p.start - 3600, p.end + 3600)
            return (
                f"{t:.3f}"
                if r.random() < 0.5
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
            )
        if roll < 0.9:
            return r.choice(TIMES_EDGE)
        return r.choice(p.hostile)

    def _value(self, name: str, kind: str) -> str:
        r, p = self.rng, self.pools
        hostile = r.random() < 0.1
        if hostile:
            return r.choice(p.hostile)
        if name in ("from", "to", "at"):
            return self._time()
        if name == "since":
            return r.choice(("1h", "6h", "1d", "2d", "7d", "30d", "0s", "-1h", "1y", "10000d"))
        if name == "step":
            return r.choice(("30s", "1m", "5m", "1h", "0s", "1ms", "-5m", "1y", "abc"))
        if name == "cluster":
            return r.choice([*p.clusters, ".*", "prod-.*", "nope"])
        if name == "namespace":
            return r.choice([*p.namespaces, ".*", "ord.*", "(orders|x)", "nope"])
        if name == "workload":
            return r.choice([*p.workloads, "nope", "a/b", "a/b/c/d/e"])
        if name == "image":
            return r.choice([*p.images, "nginx", "docker.io/library/nginx:1.25", "@sha256:x"])
        if name == "source":
            return r.choice(("ledger", "ledger", "auto", "live", "PROMETHEUS"))
        if name == "kind":
            return r.choice(("upgrade", "downgrade", "rollback", "added", "removed", "other", "x"))
        if name == "format":
            return r.choice(("json", "csv", "table", "xml"))
        if name == "by":
            return r.choice(("workload", "namespace", "cluster", "team", ""))
        if kind == "integer":
            return r.choice(("0", "1", "10", "100", "1000", "10000", "10001", "-1", "1e3", "x"))
        if kind == "boolean":
            return r.choice(("true", "false", "1", "0", "yes", "maybe"))
        return r.choice(p.hostile)

    def request(self) -> tuple[str, str, list[tuple[str, str]], bytes | None]:
        """(method, path, query parameters, body)."""
        r = self.rng
        if r.random() < 0.05:
            path = r.choice(self.pages)
            return "GET", path, [(r.choice(("from", "x", "q")), r.choice(HOSTILE))], None
        ep = r.choice(self.endpoints)
        params: list[tuple[str, str]] = []
        for name, kind in ep.params:
            if name == "source":
                continue
            if r.random() < 0.5:
                repeat = 1 + (kind == "array" and r.random() < 0.2) * r.randint(1, 3)
                params += [(name, self._value(name, kind)) for _ in range(repeat)]
        if any(name == "source" for name, _ in ep.params):
            if r.random() < self.live:
                params.append(("source", "prometheus"))
            elif r.random() < 0.3:
                params.append(("source", self._value("source", "string")))
        if r.random() < 0.05:
            params.append((r.choice(HOSTILE[:20]) or "x", r.choice(HOSTILE)))
        body = self._body() if ep.body else None
        return ep.method, ep.path, params, body

    def _body(self) -> bytes:
        r, p = self.rng, self.pools
        roll = r.random()
        if roll < 0.1:
            return r.choice((b"", b"{", b"null", b"[]", b"\xff\xfe", b'{"a":' * 1000))
        event: dict[str, Any] = {
            "namespace": r.choice([*p.namespaces, *p.hostile]),
            "workload": r.choice([*p.workloads, *p.hostile]),
            "image": r.choice([*p.images, *p.hostile]),
            "deployed_at": r.choice([p.end, -1, "x", None, 1e309 if r.random() < 0.1 else 0]),
        }
        for key in ("id", "cluster", "container", "digest", "commit_sha", "pipeline_url"):
            if r.random() < 0.5:
                event[key] = r.choice([*p.hostile, 7, None, [], {}])
        if r.random() < 0.2:
            del event[r.choice(list(event))]
        return json.dumps(event, default=str).encode()


@dataclass
class FuzzResult:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    over_deadline: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    live_requests: int = 0
    deadline_answers: int = 0
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        d = sorted(self.durations)
        return {
            "requests": self.requests,
            "source_prometheus_requests": self.live_requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "answers_5xx": len(self.server_errors),
            "deadline_504s": self.deadline_answers,
            "transport_errors": len(self.transport_errors),
            "over_deadline": len(self.over_deadline),
            "max_seconds": round(d[-1], 3) if d else None,
            "p99_seconds": round(d[int(0.99 * (len(d) - 1))], 3) if d else None,
            "seconds": round(self.seconds, 1),
        }


def run_fuzz(
    base_url: str,
    next_request: Callable[[], tuple[str, str, list[tuple[str, str]], bytes | None]],
    *,
    count: int,
    workers: int,
    deadline: float,
    headers: Mapping[str, str] | None = None,
) -> FuzzResult:
    """Send ``count`` generated requests from ``workers`` threads; each must end within
    ``deadline`` seconds (the client gives up a little later and counts a timeout)."""
    result = FuzzResult()
    lock = threading.Lock()
    requests = [next_request() for _ in range(count)]  # generated up front: seeded order
    position = iter(range(count))

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=deadline + 10, headers=headers) as client:
            while True:
                with lock:
                    k = next(position, None)
                if k is None:
                    return
                method, path, params, body = requests[k]
                what = f"{method} {path} {params!r}"[:300]
                t0 = time.monotonic()
                try:
                    response = client.request(
                        method,
                        path,
                        params=tuple(params),
                        content=body,
                        headers={"Content-Type": "application/json"} if body is not None else {},
                    )
                    status: int | None = response.status_code
                    if status == 504 and "request_timeout" in response.text:
                        status = DEADLINE_ANSWER
                    if response.status_code >= 500:
                        what += f" -> {response.text[:300]}"
                except httpx.HTTPError as exc:
                    status = None
                    with lock:
                        result.transport_errors.append(f"{what}: {type(exc).__name__}")
                took = time.monotonic() - t0
                with lock:
                    result.requests += 1
                    result.durations.append(took)
                    result.live_requests += ("source", "prometheus") in params
                    if status == DEADLINE_ANSWER:
                        result.statuses[504] += 1
                        result.deadline_answers += 1
                    elif status is not None:
                        result.statuses[status] += 1
                        if status >= 500:
                            result.server_errors.append(f"{what}: {status}")
                    if took > deadline:
                        result.over_deadline.append(f"{what}: {took:.1f}s")

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - began
    return result
