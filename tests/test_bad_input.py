"""Bad input through the real CLI: each case exits non-zero with ONE ``error:`` line (and maybe a
``hint:``), never a traceback, and leaves an existing ledger as it was.

Sources that misbehave are played by the ``fake_server`` fixture (tests/fakeserver.py); hostile
label values come back FROM that server, and the PromQL it received is parsed to prove that a
user's namespace regex never turns into a second selector.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clirun
from clirun import Run, assert_one_error
from fakeserver import (
    FakeServer,
    Reply,
    json_reply,
    prom_error,
    prom_matrix,
    prom_not_ready,
    prom_vector,
    text_reply,
)
from imagetrail.ledger import Ledger
from imagetrail.scope import full_match
from imagetrail.service.demo import build_demo_ledger
from imagetrail.sources.prometheus import CADVISOR_CPU, KSM_INFO
from imagetrail.sources.promql import quote
from servers import free_port

QUERY = "/api/v1/query"
QUERY_RANGE = "/api/v1/query_range"
HOSTILE = 'evil"\n<script>alert(1)</script>[bold red]x[/]\\ü✓'
ESCAPE = "\x1b[2J\x1b]0;pwned\x07"
# Metrics imagetrail reads; a selector on anything else in a query would be an injection.
KNOWN_METRICS = {
    KSM_INFO,
    CADVISOR_CPU,
    "kube_pod_container_status_running",
    "kube_pod_container_status_terminated",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_waiting_reason",  # failed and stuck rollouts (waits)
    "kube_pod_owner",
    "kube_replicaset_owner",
    "kube_job_owner",
}


# -- running the CLI ---------------------------------------------------------------------------
def invoke(args: Sequence[str], env: Mapping[str, str | None] | None = None) -> Run:
    """No retries and a short timeout: the failure cases answer at once."""
    return clirun.invoke(
        args, {"IMAGETRAIL_RETRIES": "0", "IMAGETRAIL_TIMEOUT": "5s", **(env or {})}
    )


# -- ledgers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    digest: str
    spans: list[Any]
    changes: list[Any]
    synced: dict[str, tuple[float | None, float | None]]


def snapshot(path: Path) -> Snapshot:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with Ledger.open(path, create=False) as ledger:
        spans, changes = sorted(ledger.spans(), key=repr), ledger.changes(start=0)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT key, synced_from, synced_until FROM sync_state").fetchall()
    return Snapshot(digest, spans, changes, {k: (a, b) for k, a, b in rows})


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    ledger, _ = build_demo_ledger(path, days=2)
    ledger.close()
    return path


@dataclass
class Ledgered:
    path: Path
    before: Snapshot

    def unchanged(self, *, file_too: bool = True) -> None:
        """The history is the same; with ``file_too`` the file is byte for byte the same."""
        after = snapshot(self.path)
        assert after.spans == self.before.spans
        assert after.changes == self.before.changes
        for key, value in self.before.synced.items():
            assert after.synced[key] == value
        if file_too:
            assert after.digest == self.before.digest


@pytest.fixture
def ledger(demo_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledgered:
    """A private copy of a demo ledger; the working directory holds no config file."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ledger.db"
    shutil.copyfile(demo_file, path)
    return Ledgered(path, snapshot(path))


LIVE_COMMANDS = [
    ["versions", "--source", "prometheus"],
    ["changes", "--source", "prometheus", "--since", "2h"],
    ["heatmap", "--source", "prometheus", "--since", "2h"],
    ["heatmap", "--exact-panel", "--since", "2h"],
    ["history", "cart", "--source", "prometheus", "--since", "2h"],
    ["audit", "--source", "prometheus", "--since", "2h"],
    ["workloads", "--source", "prometheus"],
]
LEDGER_COMMANDS = [
    ["versions"],
    ["changes", "--since", "1d"],
    ["heatmap", "--since", "1d"],
    ["history", "cart"],
    ["audit", "--since", "1d"],
    ["workloads"],
]


# -- unreachable Prometheus --------------------------------------------------------------------
@pytest.mark.parametrize("args", LIVE_COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_unreachable_prometheus_live(ledger: Ledgered, args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = invoke([*args, "--prometheus", url, "--ledger", str(ledger.path)])
    assert_one_error(run, 3, "cannot connect", "gave up after 1 attempt in ")
    assert "hint: check --prometheus" in run.err
    ledger.unchanged()


@pytest.mark.parametrize("signal", ["auto", "ksm"])
def test_unreachable_prometheus_sync(ledger: Ledgered, signal: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = invoke(
        ["sync", "--prometheus", url, "--ledger", str(ledger.path), "--since", "2h"],
        {"IMAGETRAIL_SIGNAL": signal, "IMAGETRAIL_RETRIES": "1"},
    )
    assert_one_error(run, 3, "cannot connect", "gave up after 2 attempts")
    # The failure is recorded in the sync state (last_error), also when it happens while
    # choosing the signal (auto): the file changes, the history does not.
    ledger.unchanged(file_too=False)


def test_no_prometheus_url(ledger: Ledgered) -> None:
    run = invoke(["versions", "--source", "prometheus", "--ledger", str(ledger.path)])
    line = assert_one_error(run, 2, "no Prometheus URL")
    assert line == "error: no Prometheus URL"
    assert "IMAGETRAIL_PROMETHEUS_URL" in run.err
    ledger.unchanged()


# -- misbehaving servers -----------------------------------------------------------------------
def _api_error_with_escapes() -> Reply:
    return prom_error("bad_data", f"parse error:\nunexpected {ESCAPE}")


SERVER_FAULTS: dict[str, tuple[Reply, str]] = {
    "400-bad-data": (prom_error("bad_data", "parse error at char 7"), "rejected the query"),
    "422-execution": (
        prom_error("execution", "query processing would load too many samples"),
        "too many samples",
    ),
    "404": (text_reply("404 page not found\n", status=404), "HTTP 404"),
    "500": (text_reply("internal error", status=500), "HTTP 500"),
    "502-proxy": (text_reply("<html>Bad Gateway</html>", status=502), "HTTP 502"),
    "503-not-ready": (prom_not_ready(), "HTTP 503"),
    "timeout": (prom_matrix([], delay=3), "no answer within 0.3s"),
    "html": (
        text_reply("<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"}),
        "answered an HTML page",
    ),
    "not-json": (text_reply("hello"), "not JSON"),
    "truncated": (
        prom_matrix([{"metric": {"a": "b"}, "values": [[1, "1"]]}], action="truncate"),
        "cut off",
    ),
    "dropped": (Reply(action="close"), "connection broke"),
    "no-status": (json_reply({"data": []}), "no 'status'"),
    "wrong-shape": (
        json_reply(
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": "x"}]},
            }
        ),
        "values are not a list",
    ),
    "error-text-with-newlines-and-escapes": (
        _api_error_with_escapes(),
        "parse error:\\nunexpected \\x1b[2J",
    ),
}


@pytest.fixture
def source_env(fake_server: FakeServer) -> dict[str, str]:
    return {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url, "IMAGETRAIL_TIMEOUT": "0.3s"}


@pytest.mark.parametrize("fault", list(SERVER_FAULTS))
@pytest.mark.parametrize("command", ["sync", "versions-live", "exact-panel"])
def test_misbehaving_server(
    ledger: Ledgered,
    fake_server: FakeServer,
    source_env: dict[str, str],
    fault: str,
    command: str,
) -> None:
    reply, needle = SERVER_FAULTS[fault]
    fake_server.script(QUERY_RANGE, reply)
    fake_server.script(QUERY, reply)
    args = {
        "sync": ["sync", "--since", "2h", "--signal", "ksm"],
        "versions-live": ["versions", "--source", "prometheus"],
        "exact-panel": ["heatmap", "--exact-panel", "--since", "1h"],
    }[command]
    run = invoke([*args, "--ledger", str(ledger.path)], source_env)
    assert_one_error(run, 3, needle)
    assert fake_server.requests, "the server was asked"
    ledger.unchanged(file_too=command != "sync")


def test_misbehaving_server_is_remembered_by_sync(
    ledger: Ledgered, fake_server: FakeServer, source_env: dict[str, str]
) -> None:
    fake_server.script(QUERY_RANGE, text_reply("internal error", status=500))
    run = invoke(
        ["sync", "--since", "2h", "--signal", "ksm", "--ledger", str(ledger.path)], source_env
    )
    assert_one_error(run, 3, "HTTP 500")
    with Ledger.open(ledger.path, create=False) as led:
        state = led.sync_state(f"ksm|{fake_server.url}|")
    assert state is not None
    assert state.last_error is not None
    assert "HTTP 500" in state.last_error
    assert state.synced_until is None


def test_retries_then_succeeds(
    ledger: Ledgered, fake_server: FakeServer, source_env: dict[str, str]
) -> None:
    """A 503 that clears up is retried, not reported."""
    fake_server.script(QUERY_RANGE, prom_not_ready(), prom_matrix([]))
    fake_server.script(QUERY, prom_vector([]))
    run = invoke(
        ["versions", "--source", "prometheus", "-f", "json"],
        {**source_env, "IMAGETRAIL_RETRIES": "2", "IMAGETRAIL_SIGNAL": "ksm"},
    )
    assert run.code == 0, run.err
    assert json.loads(run.out) == []
    assert len(fake_server.requests_to(QUERY_RANGE)) >= 2


# -- namespace regexes full of PromQL ----------------------------------------------------------
def _selectors(node: Any) -> Iterator[Any]:
    """Every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from _selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from _selectors(child)


PLACEHOLDER = "NAMESPACE_UNDER_TEST"


def assert_namespace_stays_a_value(requests: Sequence[Any], namespace: str) -> int:
    """Every query reads only known metrics and filters namespace by exactly ``namespace``.

    The user's value is swapped for a placeholder before parsing: the parser used here (Rust
    regex) refuses some regexes Prometheus takes, and the point is where the value sits, not
    whether it is a good regex. What remains must parse with the placeholder as the only
    namespace matcher of every selector.
    """
    checked = 0
    literal = quote(namespace)
    for request in requests:
        for query in request.params.get("query", []):
            assert literal in query, query
            expr = promql_parser.parse(query.replace(literal, quote(PLACEHOLDER)))
            for sel in _selectors(expr):
                assert sel.name in KNOWN_METRICS, (sel.name, query)
                ns = [m for m in sel.matchers.matchers if m.name == "namespace"]
                assert [(str(m.op), m.value) for m in ns] == [("MatchOp.Re", PLACEHOLDER)], query
                checked += 1
    return checked


INJECTIONS = [
    '"} or up{',
    '.*"',
    '.*"} or vector(1) or up{namespace=~".*',
    "shop\\\\",
    'a"\n,job="x',
    "kube-.*|ü✓",
    "{x}",
]


def _empty_source(fake: FakeServer) -> None:
    """A server whose presence answers say "something is there" and whose details are empty:
    every query of signal detection, presence and refinement gets sent."""
    fake.script(QUERY_RANGE, prom_matrix([{"metric": {}, "values": [[time.time() - 60, "1"]]}]))
    fake.script(QUERY, prom_vector([]))


@pytest.mark.parametrize("namespace", INJECTIONS)
@pytest.mark.parametrize(
    "args",
    [
        ["versions", "--source", "prometheus"],
        ["heatmap", "--exact-panel", "--since", "1h"],
        ["sync", "--since", "1h", "--signal", "ksm"],
    ],
    ids=lambda a: a[0] + ("-panel" if "--exact-panel" in a else ""),
)
def test_namespace_regex_is_escaped_in_promql(
    ledger: Ledgered,
    fake_server: FakeServer,
    source_env: dict[str, str],
    namespace: str,
    args: list[str],
) -> None:
    _empty_source(fake_server)
    run = invoke([*args, "--namespace", namespace, "--ledger", str(ledger.path)], source_env)
    assert run.code == 0, run.err
    assert assert_namespace_stays_a_value(fake_server.requests, namespace) > 0
    ledger.unchanged(file_too=args[0] != "sync")


@pytest.mark.parametrize(
    ("namespace", "needle"),
    [
        ("(?=x)", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(a)\\1", "backreference"),
        ("(", "is invalid: missing )"),
        ('"}[5m])) or vector(1) #', "is invalid: unexpected )"),
        ("shop\\", "is invalid: trailing \\"),
        ("(?!kube-).*", "negative lookahead"),
    ],
)
def test_namespace_regex_re2_cannot_run_is_input_error(
    ledger: Ledgered,
    fake_server: FakeServer,
    source_env: dict[str, str],
    namespace: str,
    needle: str,
) -> None:
    _empty_source(fake_server)
    errors = set()
    # The ledger refuses what Prometheus would (one grammar, RE2's): the same one line.
    for args in (["versions", "--source", "prometheus"], ["sync", "--since", "1h"], ["versions"]):
        run = invoke([*args, "-n", namespace, "--ledger", str(ledger.path)], source_env)
        errors.add(assert_one_error(run, 2, needle))
    assert len(errors) == 1, errors
    assert fake_server.requests == [], "nothing reached the server"
    ledger.unchanged()


@pytest.mark.parametrize("namespace", INJECTIONS)
def test_namespace_regex_against_the_ledger_is_harmless(ledger: Ledgered, namespace: str) -> None:
    run = invoke(["workloads", "-n", namespace, "-f", "json", "--ledger", str(ledger.path)])
    if run.code == 2:  # a plain name the ledger does not know: one clear error
        assert_one_error(run, 2, "no namespace")
        ledger.unchanged()
        return
    assert run.code == 0, run.err
    # Whatever it selects fully matches the regex, as a regex: nothing else got in.
    matches = full_match(namespace)
    assert all(matches(row["namespace"]) for row in json.loads(run.out))
    ledger.unchanged()


def test_invalid_namespace_regex_against_the_ledger(ledger: Ledgered) -> None:
    run = invoke(["workloads", "-n", "(", "--ledger", str(ledger.path)])
    assert_one_error(run, 2, "namespace regex '(' is invalid")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(namespace=st.text(min_size=1, max_size=20))
def test_any_namespace_is_a_value_or_an_input_error(
    fake_server: FakeServer, tmp_path: Path, namespace: str
) -> None:
    _empty_source(fake_server)
    before = len(fake_server.requests)
    run = invoke(
        ["versions", "--source", "prometheus", "-n", namespace, "--ledger", str(tmp_path / "x")],
        {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url},
    )
    if run.code == 0:
        assert assert_namespace_stays_a_value(fake_server.requests[before:], namespace) > 0
    else:
        assert_one_error(run, 2)
        assert len(fake_server.requests) == before


# -- hostile label values coming back from the server ------------------------------------------
SAMPLE_AT = int(time.time()) - 60  # the one sample time of every served series


def _series(**labels: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cAdvisor series as a range answer and as an instant answer (its sample's time)."""
    metric = {"cluster": "c1", "id": "/kubepods/x", "__name__": CADVISOR_CPU, **labels}
    return (
        {"metric": metric, "values": [[SAMPLE_AT, "1"]]},
        {"metric": metric, "value": [SAMPLE_AT + 30, str(SAMPLE_AT)]},
    )


def _serve(fake: FakeServer, series: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    fake.script(QUERY_RANGE, prom_matrix([s[0] for s in series]))
    fake.script(QUERY, prom_vector([s[1] for s in series]))


HOSTILE_LABELS = {
    "namespace": "ns-" + HOSTILE,
    "pod": "pod-" + ESCAPE,
    "container": "=HYPERLINK(1)",
    "image": "img " + HOSTILE,
}


# The served container ran at one instant only: ask what ran then.
WORKLOADS_AT_SAMPLE = ["workloads", "--source", "prometheus", "--at", str(SAMPLE_AT)]


@pytest.fixture
def hostile_env(fake_server: FakeServer) -> dict[str, str]:
    _serve(fake_server, [_series(**HOSTILE_LABELS)])
    return {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url, "IMAGETRAIL_SIGNAL": "cadvisor"}


def test_hostile_labels_round_trip_in_json(hostile_env: dict[str, str], tmp_path: Path) -> None:
    run = invoke([*WORKLOADS_AT_SAMPLE, "-f", "json"], hostile_env)
    assert run.code == 0, run.err
    [row] = json.loads(run.out)
    assert row["namespace"] == HOSTILE_LABELS["namespace"]
    assert row["workload"] == HOSTILE_LABELS["pod"]
    assert row["container"] == HOSTILE_LABELS["container"]
    assert row["images"] == [HOSTILE_LABELS["image"]]
    versions = invoke(["versions", "--source", "prometheus", "-f", "json"], hostile_env)
    [version] = json.loads(versions.out)
    assert version["image"] == HOSTILE_LABELS["image"]
    assert version["workloads"] == [f"c1/{HOSTILE_LABELS['namespace']}/Pod/{HOSTILE_LABELS['pod']}"]


def test_hostile_labels_in_csv(hostile_env: dict[str, str]) -> None:
    run = invoke([*WORKLOADS_AT_SAMPLE, "-f", "csv"], hostile_env)
    assert run.code == 0, run.err
    [row] = list(csv.DictReader(io.StringIO(run.out)))
    assert row["namespace"] == HOSTILE_LABELS["namespace"]
    assert row["workload"] == HOSTILE_LABELS["pod"]
    # A cell a spreadsheet would run as a formula is quoted.
    assert row["container"] == "'" + HOSTILE_LABELS["container"]
    assert row["images"] == HOSTILE_LABELS["image"]


@pytest.mark.parametrize("command", ["workloads", "versions"])
def test_hostile_labels_in_tables(hostile_env: dict[str, str], command: str) -> None:
    # versions lists the workloads in its wide view (the narrow one leaves them out).
    args = (
        WORKLOADS_AT_SAMPLE
        if command == "workloads"
        else ["versions", "--source", "prometheus", "-o", "wide"]
    )
    run = invoke(args, {**hostile_env, "COLUMNS": "400"})
    assert run.code == 0, run.err
    assert "<script>alert(1)</script>[bold red]x[/]\\ü✓" in run.out  # markup shown, not applied
    # No terminal escape gets through.
    assert "\x1b" not in run.out
    assert "\x07" not in run.out
    assert "pod-\\x1b[2J\\x1b]0;pwned\\x07" in run.out


def test_hostile_workload_in_history_title(fake_server: FakeServer) -> None:
    _serve(
        fake_server,
        [_series(namespace="ns", pod="[bold]pwn", container="c", image="a:1")],
    )
    env = {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url, "IMAGETRAIL_SIGNAL": "cadvisor"}
    run = invoke(["history", "[bold]pwn", "--source", "prometheus", "--since", "1h"], env)
    assert run.code == 0, run.err
    assert "history of c1/ns/Pod/[bold]pwn" in run.out


def test_hostile_images_in_the_panel_heatmap(fake_server: FakeServer) -> None:
    # A sample on the 5m grid the panel query is evaluated at.
    at = int(time.time()) // 300 * 300 - 600
    images = [HOSTILE, ESCAPE + "img", "=cmd|calc"]
    fake_server.script(
        QUERY_RANGE,
        prom_matrix([{"metric": {"image": i}, "values": [[at, "2"]]} for i in images]),
    )
    env = {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url}
    args = ["heatmap", "--exact-panel", "--from", str(at - 3600), "--step", "5m"]
    as_json = invoke([*args, "-f", "json"], env)
    assert as_json.code == 0, as_json.err
    assert sorted(json.loads(as_json.out)["images"]) == sorted(images)
    as_csv = invoke([*args, "-f", "csv"], env)
    assert sorted(r["image"] for r in csv.DictReader(io.StringIO(as_csv.out))) == sorted(
        [HOSTILE, ESCAPE + "img", "'=cmd|calc"]
    )
    table = invoke(args, env)
    assert table.code == 0, table.err
    assert "\x1b" not in table.out
    assert "<script>alert(1)</script>[bold red]x[/]" in table.out


MALFORMED_IMAGES = {
    "UPPER/Case:Tag": "UPPER/Case:Tag",
    "a b c": "a b c",
    "nginx:1.25@sha256:123": "nginx:1.25@sha256:123",
    "": "<unknown>",
    "docker-pullable://docker.io/library/nginx@sha256:" + "a" * 64: "docker.io/library/nginx",
}


def test_malformed_image_references_are_shown_not_fatal(fake_server: FakeServer) -> None:
    _serve(
        fake_server,
        [
            _series(namespace="ns", pod=f"p{i}", container="c", image=image)
            for i, image in enumerate(MALFORMED_IMAGES)
        ],
    )
    env = {"IMAGETRAIL_PROMETHEUS_URL": fake_server.url, "IMAGETRAIL_SIGNAL": "cadvisor"}
    run = invoke(["versions", "--source", "prometheus", "-f", "json"], env)
    assert run.code == 0, run.err
    shown = {r["image"] for r in json.loads(run.out)}
    for raw, display in MALFORMED_IMAGES.items():
        assert any(s.startswith(display) for s in shown), (raw, shown)


# -- files that are not ledgers ----------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64


def _not_ledgers(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes\n")
    png = tmp_path / "picture.png"
    png.write_bytes(PNG)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    return {"text": text, "png": png, "other-sqlite": other}


@pytest.mark.parametrize("kind", ["text", "png", "other-sqlite"])
@pytest.mark.parametrize(
    "args",
    [*LEDGER_COMMANDS, ["sync", "--prometheus", "http://127.0.0.1:9"]],
    ids=lambda a: a[0],
)
def test_not_a_ledger_is_left_untouched(tmp_path: Path, kind: str, args: list[str]) -> None:
    path = _not_ledgers(tmp_path)[kind]
    before = path.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    run = invoke([*args, "--ledger", str(path)], {})
    assert_one_error(run, 4, "is not an imagetrail ledger", str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing, "no -wal/-journal left"


@pytest.mark.parametrize("args", LEDGER_COMMANDS, ids=lambda a: a[0])
def test_empty_ledger_hints_at_sync_or_demo(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "empty.db"
    Ledger.open(path).close()
    before = path.read_bytes()
    run = invoke([*args, "--ledger", str(path)], {})
    assert_one_error(run, 4, "is empty")
    assert "imagetrail sync" in run.err
    assert "imagetrail demo" in run.err
    assert path.read_bytes() == before


@pytest.mark.parametrize("args", LEDGER_COMMANDS, ids=lambda a: a[0])
def test_missing_ledger_is_not_created(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "missing.db"
    run = invoke([*args, "--ledger", str(path)], {})
    assert_one_error(run, 4, "no ledger at", str(path))
    assert not path.exists()


def test_ledger_url_that_is_not_a_url(tmp_path: Path) -> None:
    run = invoke(["versions", "--ledger", "nosuchdialect://x/y"], {})
    assert run.code in (2, 4)
    assert_one_error(run, run.code)


# -- history of unknown or ambiguous workloads -------------------------------------------------
@pytest.mark.parametrize(
    ("workload", "needle"),
    [
        ("no-such-thing", "no workload matches 'no-such-thing'"),
        ("cart", "'cart' matches 3 workloads"),
        ("Deployment/cart", "'Deployment/cart' matches 3 workloads"),
        ("a\nb\x1b[2J", "no workload matches 'a\\nb\\x1b[2J'"),
        ("a/b/c/d/e", "workload 'a/b/c/d/e' is not NAME, KIND/NAME"),
        ("", "history needs a WORKLOAD"),
    ],
)
def test_history_of_unknown_or_ambiguous_workload(
    ledger: Ledgered, workload: str, needle: str
) -> None:
    run = invoke(["history", workload, "--ledger", str(ledger.path)])
    assert_one_error(run, 2, needle)
    if "matches 3" in needle:
        assert "hint: narrow it" in run.err
    ledger.unchanged()


def test_history_ambiguity_resolved_by_cluster(ledger: Ledgered) -> None:
    run = invoke(
        ["history", "cart", "--cluster", "staging", "-f", "json", "--ledger", str(ledger.path)]
    )
    assert run.code == 0, run.err
    assert json.loads(run.out)


# -- any time value is an answer or one clear error --------------------------------------------
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(st.text(max_size=30), st.from_regex(r"\A(now-)?[0-9]{1,12}(ms|[ywdhms])?\Z"))
)
def test_any_time_value_is_an_answer_or_one_error(ledger: Ledgered, value: str) -> None:
    for args in (["changes", "--since", value], ["versions", "--at", value]):
        run = invoke([*args, "-f", "json", "--ledger", str(ledger.path)])
        if run.code == 0:
            assert isinstance(json.loads(run.out), list)
        else:
            assert_one_error(run, 2)
