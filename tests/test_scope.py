"""One scope, one regex grammar: a namespace regex means the same on every back-end.

Before, ``--namespace`` was compiled by three regex engines with two grammars: a lookahead
such as ``(?!kube-).*`` answered against the ledger and was refused with ``--source
prometheus``. Now :mod:`imagetrail.scope` reads every pattern as Prometheus does (RE2,
anchored), and these tests hold the ledger (SQLite), the web's span index, the
live Prometheus path and the API to the same answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clirun import Run, assert_one_error, invoke
from imagetrail import settings as settings_mod
from imagetrail.analysis.spanindex import SpanIndex
from imagetrail.errors import InputError
from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.scope import Scope, full_match, is_plain
from imagetrail.service.demo import build_demo_ledger
from imagetrail.timeutil import format_time
from imagetrail.web.app import create_app
from servers import Server, backfill_prometheus_tsdb, start_prometheus

LOOKAHEAD = "(?!kube-).*"

# -- the grammar --------------------------------------------------------------------------------


@st.composite
def regexes(draw: st.DrawFn, alphabet: str = "ab.-1é") -> str:
    """Small patterns in the RE2 grammar over the namespaces' alphabet: literals, classes,
    dots, groups, alternation, repetition, case folding, escapes."""
    atom = st.one_of(
        st.sampled_from([*alphabet, ".", "\\.", "\\d", "[ab]", "[^a]", "[a-z]", "\\pL", "\\n"]),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map("|".join),
            inner.map(lambda r: f"({r})"),
            inner.map(lambda r: f"(?:{r})"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{1,2}", "*?"])).map(
                lambda rq: f"(?:{rq[0]}){rq[1]}"
            ),
        )

    body = draw(st.recursive(atom, extend, max_leaves=6))
    prefix = draw(st.sampled_from(["", "", "(?i)", "^", ".*"]))
    return prefix + body


@given(regexes())
@settings(max_examples=200)
def test_the_grammar_accepts_what_it_generates(pattern: str) -> None:
    assert full_match(pattern)("") in (True, False)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("shop", "shop", True),
        ("shop", "shop-eu", False),  # anchored at both ends, as Prometheus anchors
        ("shop.*", "shop-eu", True),
        ("a.b", "a\nb", False),  # . is not a newline, as in Prometheus 2 (not 3: docs)
        ("(?i)SHOP", "shop", True),
        ("kube-(system|public)", "kube-public", True),
        ("\\pL+", "café", True),
        ("a\\z", "a", True),
    ],
)
def test_matching_is_prometheus_matching(pattern: str, text: str, matches: bool) -> None:
    assert full_match(pattern)(text) is matches


def test_plain_names() -> None:
    assert is_plain("kube-system")
    assert is_plain("é-ü_1")
    assert not is_plain("a.b")
    assert not is_plain("")


def test_a_scope_is_validated_when_made() -> None:
    with pytest.raises(InputError, match="negative lookahead"):
        Scope(namespace=LOOKAHEAD)
    with pytest.raises(InputError, match="workload"):
        Scope(workload="a//b")
    scope = Scope(cluster="prod", clusters=("prod", "eu"), namespace="shop|pay.*")
    assert scope.keeps(cluster="prod", namespace="payments", kind="Deployment", name="x")
    assert not scope.keeps(cluster="eu", namespace="payments", kind="Deployment", name="x")
    assert not scope.keeps(cluster="prod", namespace="shop-eu", kind="Deployment", name="x")


# -- one refusal everywhere ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scope") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    return path


def _api(ledger_path: Path, path: str, params: dict[str, str]) -> httpx.Response:
    config = settings_mod.load({"ledger": str(ledger_path)}, environ={})

    async def get() -> httpx.Response:
        with Ledger.open(ledger_path, create=False) as ledger:
            transport = httpx.ASGITransport(app=create_app(config, ledger))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(path, params=params)

    return asyncio.run(get())


def test_a_lookahead_gets_the_same_one_line_refusal_everywhere(demo_ledger: Path) -> None:
    unreachable = {"IMAGETRAIL_PROMETHEUS_URL": "http://127.0.0.1:9"}
    lines = set()
    for args in (
        ["versions", "--source", "ledger"],
        ["versions", "--source", "prometheus"],
        ["changes"],
        ["workloads", "--source", "prometheus"],
        ["sync", "--since", "1h"],
    ):
        run = invoke([*args, "-n", LOOKAHEAD, "--ledger", str(demo_ledger)], unreachable)
        lines.add(assert_one_error(run, 2, "negative lookahead", "RE2"))
    for path in ("/api/v1/versions", "/api/v1/changes", "/api/v1/heatmap", "/api/v1/audit"):
        for source in ("ledger", "prometheus"):
            answer = _api(demo_ledger, path, {"namespace": LOOKAHEAD, "source": source})
            assert answer.status_code == 400, (path, source, answer.text)
            lines.add("error: " + answer.json()["error"])
    assert len(lines) == 1, lines


# -- the same answers from the ledger, the span index and the scope's own rule --------------------

NAMESPACE_CHARS = "ab.-1é\nZ"


@st.composite
def fleets(draw: st.DrawFn) -> list[Span]:
    names = st.text(NAMESPACE_CHARS, min_size=1, max_size=5)
    namespaces = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    spans = []
    for i in range(draw(st.integers(1, 24))):
        first = 1000.0 + 60 * draw(st.integers(0, 20))
        spans.append(
            Span(
                cluster=draw(st.sampled_from(["prod", "staging"])),
                namespace=draw(st.sampled_from(namespaces)),
                workload_kind="Deployment",
                workload=draw(st.sampled_from(["web", "api"])),
                pod=f"pod-{i}",
                container="app",
                image=f"ghcr.io/acme/app:{i}",
                digest=None,
                first_seen=first,
                last_seen=first + 60 * draw(st.integers(0, 10)),
                pod_uid=f"uid-{i}",
            )
        )
    return spans


def _key(s: Span) -> tuple[str, str, str, str]:
    return (s.cluster, s.namespace, s.pod, s.image)


@given(
    spans=fleets(),
    pattern=regexes(NAMESPACE_CHARS.replace("\n", "")),
    cluster=st.sampled_from([None, "prod"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_ledger_and_index_agree_with_the_scope(
    tmp_path_factory: pytest.TempPathFactory,
    spans: list[Span],
    pattern: str,
    cluster: str | None,
) -> None:
    scope = Scope(cluster=cluster, namespace=pattern)
    expected = sorted(
        _key(s)
        for s in spans
        if scope.keeps(cluster=s.cluster, namespace=s.namespace, kind="Deployment", name="x")
    )
    path = tmp_path_factory.mktemp("fleet") / "ledger.db"
    with Ledger.open(path) as ledger:
        ledger.merge_spans(spans)
        from_ledger = sorted(_key(s) for s in ledger.spans(scope))
        index = SpanIndex(ledger.spans())
    from_index = sorted(_key(s) for s in index.select(index.mask(scope)))
    assert from_ledger == expected
    assert from_index == expected


# -- and from a real Prometheus, live, and through the API ----------------------------------------

# Namespaces whose answers differ when a back-end reads a pattern its own way: a dot, case,
# non-ASCII letters and a newline (a label value is whatever the cluster says it is).
LIVE_NAMESPACES = [
    "shop",
    "shop-eu",
    "kube-system",
    "kube-public",
    "a.b",
    "axb",
    "AB",
    "ab",
    "é-ü",
    "line\nbreak",
    "x",
]
STEP = 30


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _openmetrics(start: int, end: int) -> str:
    lines = []
    for metric in (
        "kube_pod_container_info",
        "kube_pod_container_status_running",
        "kube_pod_owner",
        "kube_replicaset_owner",
    ):
        lines.append(f"# TYPE {metric} gauge")
        for i, ns in enumerate(LIVE_NAMESPACES):
            base = f'cluster="live",namespace="{_label(ns)}"'
            pod = f'pod="web-6d4cf56db6-{i:05d}",uid="uid-{i}"'
            labels = {
                "kube_pod_container_info": f'{base},{pod},container="app",'
                f'image="ghcr.io/acme/app{i}:1.0",image_spec="ghcr.io/acme/app{i}:1.0",'
                f'image_id="ghcr.io/acme/app{i}@sha256:{i:064x}",'
                f'container_id="containerd://c{i}"',
                "kube_pod_container_status_running": f'{base},{pod},container="app"',
                "kube_pod_owner": f'{base},{pod},owner_kind="ReplicaSet",'
                'owner_name="web-6d4cf56db6",owner_is_controller="true"',
                "kube_replicaset_owner": f'{base},replicaset="web-6d4cf56db6",'
                'owner_kind="Deployment",owner_name="web",owner_is_controller="true"',
            }[metric]
            lines += [f"{metric}{{{labels}}} 1 {t}" for t in range(start, end + 1, STEP)]
    return "\n".join([*lines, "# EOF", ""])


@dataclass(frozen=True)
class Live:
    prometheus: Server
    ledger: Path
    start: int
    end: int

    def cli(self, *args: str) -> Run:
        return invoke(
            [*args, "--from", format_time(self.start), "--to", format_time(self.end)],
            {
                "IMAGETRAIL_LEDGER": str(self.ledger),
                "IMAGETRAIL_PROMETHEUS_URL": self.prometheus.url,
                "IMAGETRAIL_SCRAPE_INTERVAL": f"{STEP}s",
            },
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    end = int(time.time() // 3600 * 3600) - 3 * 3600  # whole, past blocks for promtool
    start = end - 1800
    metrics = root / "metrics.om"
    metrics.write_text(_openmetrics(start, end))
    backfill_prometheus_tsdb([metrics], root / "tsdb")
    server = start_prometheus(root / "tsdb")
    try:
        world = Live(server, root / "ledger.db", start, end)
        run = invoke(
            [
                "sync",
                "--prometheus",
                server.url,
                "--ledger",
                str(world.ledger),
                "--since",
                format_time(start - 60),
                "--until",
                format_time(end + 60),
            ],
            {"IMAGETRAIL_SCRAPE_INTERVAL": f"{STEP}s"},
        )
        assert run.code == 0, run.err
        yield world
    finally:
        server.stop()


def _namespaces(run: Run) -> set[str] | None:
    """The namespaces an audit answered with; None for the ledger's 'no such namespace'."""
    if run.code == 2 and "no namespace" in run.err:
        return None
    assert run.code == 0, run.err
    rows = json.loads(run.out)
    assert isinstance(rows, list)
    return {row["namespace"] for row in rows}


@pytest.mark.slow
def test_the_live_fixture_holds_every_namespace(live: Live) -> None:
    assert _namespaces(live.cli("audit", "-o", "json")) == set(LIVE_NAMESPACES)
    run = live.cli("audit", "-o", "json", "--source", "prometheus")
    assert _namespaces(run) == set(LIVE_NAMESPACES)


@pytest.mark.slow
@given(pattern=regexes("abxshopkube-.é\nZ"))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_ledger_prometheus_and_api_give_identical_answers(live: Live, pattern: str) -> None:
    expected = {ns for ns in LIVE_NAMESPACES if full_match(pattern)(ns)}
    recorded = _namespaces(live.cli("audit", "-n", pattern, "-o", "json"))
    from_prometheus = _namespaces(
        live.cli("audit", "-n", pattern, "-o", "json", "--source", "prometheus")
    )
    params = {
        "namespace": pattern,
        "from": format_time(live.start),
        "to": format_time(live.end),
    }
    answer = _api(live.ledger, "/api/v1/audit", params)
    if recorded is None:  # a plain name the ledger does not know: refused, not "nothing"
        assert not expected
        assert answer.status_code == 400, answer.text
        assert from_prometheus == set()
        return
    assert answer.status_code == 200, answer.text
    from_api = {row["namespace"] for row in answer.json()}
    assert recorded == from_prometheus == from_api == expected, pattern
