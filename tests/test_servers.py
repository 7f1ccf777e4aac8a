"""The test servers really work: real Prometheus, VictoriaMetrics, PostgreSQL and the fake."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import servers
from fakeserver import (
    FakeServer,
    Reply,
    prom_error,
    prom_matrix,
    prom_not_ready,
    prom_success,
)
from servers import (
    BackfillError,
    MissingBinary,
    Server,
    ServerStartError,
    backfill_prometheus_tsdb,
    cached_tsdb,
    find_binary,
    free_port,
    launch,
    openmetrics_to_vm_import,
    split_sample_line,
    start_prometheus,
    start_victoriametrics,
    temporary_database,
)

T0 = 1_699_999_200  # 2023-11-14T22:00:00Z, an hour boundary
STEP = 30
POINTS = 120  # one hour at 30 s
SERIES: dict[str, Callable[[int], float]] = {
    "a": lambda i: float(i),
    "b": lambda i: 1000.0 - i * 2.5,
}


def _tiny_openmetrics() -> str:
    lines = ["# HELP my_metric A hand-written test gauge.", "# TYPE my_metric gauge"]
    for instance, value in SERIES.items():
        for i in range(POINTS):
            lines.append(f'my_metric{{instance="{instance}"}} {value(i)} {T0 + i * STEP}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _expected(instance: str) -> list[tuple[float, float]]:
    return [(float(T0 + i * STEP), SERIES[instance](i)) for i in range(POINTS)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (children a server may leave behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(proc.name))
    return found


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command in field 2 may contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(proc.name))
    return found


def _assert_gone(server: Server) -> None:
    assert not _alive(server.pid)
    assert not server.running()
    assert _pids_mentioning(str(server.workdir)) == []
    assert not server.workdir.exists()


# --- pure helpers -------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def test_find_binary_missing_names_the_install_hint() -> None:
    with pytest.raises(MissingBinary, match="make test-deps"):
        find_binary("imagetrail-no-such-binary", "/nonexistent/*/bin/x")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("up 1 1700000000", ("up", "1", "1700000000")),
        ("up 1", ("up", "1", None)),
        ('m{a="x y"} 2.5 17.25', ('m{a="x y"}', "2.5", "17.25")),
        ('m{a="}{ \\" #"} NaN 1', ('m{a="}{ \\" #"}', "NaN", "1")),
        ('c_total{} 3 5 # {trace_id="abc"} 1.0 4', ("c_total{}", "3", "5")),
    ],
)
def test_split_sample_line(line: str, expected: tuple[str, str, str | None]) -> None:
    assert split_sample_line(line) == expected


@pytest.mark.parametrize("line", ['m{a="x} 1', "m", "m 1 2 3"])
def test_split_sample_line_rejects(line: str) -> None:
    with pytest.raises(ValueError, match=r"label set|sample line"):
        split_sample_line(line)


_FIRST = "abcxyzABCXYZ_:"
_names = st.builds(
    str.__add__, st.sampled_from(_FIRST), st.text(_FIRST + "0123456789", max_size=12)
)
_label_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def _samples(draw: st.DrawFn) -> tuple[str, str, int, int, bool]:
    labels = draw(st.dictionaries(_names, _label_values, max_size=3))
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    braces: bool = bool(labels) or draw(st.booleans())  # `m{}` is a valid empty label set
    series = draw(_names) + (f"{{{body}}}" if braces else "")
    value = draw(st.one_of(st.integers(-(10**9), 10**9).map(str), st.just("+Inf")))
    seconds, millis = draw(st.integers(0, 4_000_000_000)), draw(st.integers(0, 999))
    return series, value, seconds, millis, draw(st.booleans())


@given(st.lists(_samples(), max_size=20))
def test_openmetrics_to_vm_import_keeps_series_and_scales_time(
    samples: list[tuple[str, str, int, int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.om", Path(tmp) / "out.txt"
        lines = ["# TYPE whatever gauge"]
        for series, value, seconds, millis, exemplar in samples:
            stamp = f"{seconds}.{millis:03d}"
            lines.append(f"{series} {value} {stamp}" + (' # {id="x"} 1.0' if exemplar else ""))
        src.write_text("\n".join([*lines, "", "# EOF", ""]), encoding="utf-8", newline="\n")
        openmetrics_to_vm_import(src, dst)
        got = dst.read_bytes().decode("utf-8").split("\n")[:-1]
    assert got == [f"{s} {v} {sec * 1000 + ms}" for s, v, sec, ms, _ in samples]


def test_openmetrics_to_vm_import_names_the_bad_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.om"
    src.write_text('# TYPE m gauge\nm 1 1\nm{a="x} 2 2\n# EOF\n')
    with pytest.raises(ValueError, match=r"bad\.om:3"):
        openmetrics_to_vm_import(src, tmp_path / "out")


def test_cached_tsdb_rejects_unsafe_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache key"):
        cached_tsdb("../escape", lambda _: [], cache_root=tmp_path)


def test_failed_build_leaves_no_cache(tmp_path: Path) -> None:
    def explode(_: Path) -> list[Path]:
        raise RuntimeError("simulator crashed")

    with pytest.raises(RuntimeError, match="simulator crashed"):
        cached_tsdb("broken", explode, cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- launch: readiness, failures, cleanup ----------------------------------------------


def test_launch_times_out_with_log_tail_and_kills_the_process(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    workdir.mkdir()
    script = "import sys, time; print('warming up the flux capacitor', flush=True); time.sleep(60)"
    with pytest.raises(ServerStartError) as info:
        launch(
            "sleepy",
            workdir,
            lambda port: [sys.executable, "-c", script, str(port)],
            lambda port: f"http://127.0.0.1:{port}",
            lambda _: False,
            timeout=1.0,
        )
    message = str(info.value)
    assert "not ready within 1s" in message
    assert "warming up the flux capacitor" in message
    assert _pids_mentioning("warming up the flux capacitor") == []
    assert not workdir.exists()


def test_launch_reports_early_exit(tmp_path: Path) -> None:
    script = "import sys; print('no such option --bogus', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ServerStartError, match=r"(?s)exited with code 3.*no such option --bogus"):
        launch(
            "quitter",
            tmp_path,
            lambda _: [sys.executable, "-c", script],
            lambda port: f"http://127.0.0.1:{port}",
            lambda _: False,
            timeout=30.0,
        )


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    server = launch(
        "stubborn",
        tmp_path,
        lambda _: [sys.executable, "-c", script],
        lambda port: f"http://127.0.0.1:{port}",
        lambda _: log.exists() and "ready" in log.read_text(),
        timeout=30.0,
    )
    server.stop(timeout=0.5)
    _assert_gone(server)
    assert server.stop_signal == signal.SIGTERM
    assert "ready" in server.log_tail()


# --- fake server ------------------------------------------------------------------------


def test_fake_server_records_requests(fake_server: FakeServer) -> None:
    fake_server.script("/api/v1/query_range", prom_matrix([]))
    headers = {"Authorization": "Bearer s3cret", "X-Scope-OrgID": "tenant-1"}
    with httpx.Client(base_url=fake_server.url, headers=headers) as client:
        got = client.get("/api/v1/query_range", params={"query": 'up{job="a b"}', "step": "30"})
        posted = client.post("/api/v1/query_range", data={"query": "sum(up)", "start": "1"})
    assert got.json() == {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert posted.status_code == 200
    first, second = fake_server.requests_to("/api/v1/query_range")
    assert (first.method, first.params["query"], first.query["step"]) == (
        "GET",
        ['up{job="a b"}'],
        ["30"],
    )
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.headers["x-scope-orgid"] == "tenant-1"
    assert second.method == "POST"
    assert second.query == {}
    assert second.params == {"query": ["sum(up)"], "start": ["1"]}
    assert second.body == b"query=sum%28up%29&start=1"


def test_fake_server_records_chunked_bodies(fake_server: FakeServer) -> None:
    fake_server.script("/upload", Reply(status=204))
    response = httpx.post(f"{fake_server.url}/upload", content=iter([b"abc", b"", b"defg"]))
    assert response.status_code == 204
    assert fake_server.requests[0].body == b"abcdefg"


def test_fake_server_replays_script_in_order_and_repeats_the_last(
    fake_server: FakeServer,
) -> None:
    fake_server.script(
        "/api/v1/query",
        prom_error("unavailable", "too busy"),
        prom_error("bad_data", "parse error"),
        prom_success({"resultType": "vector", "result": []}),
    )
    with httpx.Client(base_url=fake_server.url) as client:
        answers = [client.get("/api/v1/query").status_code for _ in range(4)]
        unscripted = client.get("/nowhere")
    assert answers == [503, 400, 200, 200]
    assert (unscripted.status_code, unscripted.text) == (404, "404 page not found\n")
    assert len(fake_server.requests) == 5


def test_fake_server_delay_provokes_client_timeout(fake_server: FakeServer) -> None:
    fake_server.script("/slow", Reply(body=b"late", delay=2.0), Reply(body=b"fast"))
    with httpx.Client(base_url=fake_server.url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/slow")
        assert client.get("/slow").text == "fast"


def test_fake_server_drops_connections(fake_server: FakeServer) -> None:
    fake_server.script("/close", Reply(action="close"))
    fake_server.script("/truncate", prom_matrix([{"metric": {}, "values": []}], action="truncate"))
    with httpx.Client(base_url=fake_server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            client.get("/close")
        with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message"):
            client.get("/truncate")


def test_fake_server_not_ready_is_plain_text(fake_server: FakeServer) -> None:
    fake_server.script("/api/v1/query", prom_not_ready())
    response = httpx.get(f"{fake_server.url}/api/v1/query")
    assert (response.status_code, response.text) == (503, "Service Unavailable")


def test_fake_server_stop_wakes_delayed_handlers() -> None:
    fake = FakeServer().start()
    fake.script("/hang", Reply(delay=60))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{fake.url}/hang", timeout=0.2)
    fake.stop()  # must not wait for the 60 s delay
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/hang", timeout=1)


# --- Prometheus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tsdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = _tiny_openmetrics()

    def write(tmp: Path) -> list[Path]:
        path = tmp / "tiny.om"
        path.write_text(text)
        return [path]

    key = "tiny-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return cached_tsdb(key, write, cache_root=tmp_path_factory.mktemp("tsdb-cache"))


@pytest.fixture(scope="module")
def prometheus_tiny(tiny_tsdb: Path) -> Iterator[Server]:
    server = start_prometheus(tiny_tsdb)
    try:
        yield server
    finally:
        server.stop()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.slow
def test_cached_tsdb_builds_once(tmp_path: Path) -> None:
    calls: list[Path] = []

    def write(tmp: Path) -> list[Path]:
        calls.append(tmp)
        path = tmp / "x.om"
        path.write_text(f"# TYPE x gauge\nx 1 {T0}\nx 2 {T0 + 30}\n# EOF\n")
        return [path]

    first = cached_tsdb("k1", write, cache_root=tmp_path)
    second = cached_tsdb("k1", write, cache_root=tmp_path)
    assert first == second == tmp_path / "k1"
    assert len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["k1"]  # no build leftovers
    assert any((block / "meta.json").is_file() for block in first.iterdir())


@pytest.mark.slow
def test_backfill_error_carries_promtool_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.om"
    bad.write_text("# TYPE m gauge\nm{ 1 1\n# EOF\n")
    with pytest.raises(BackfillError, match=r"(?s)bad\.om.*\S"):
        backfill_prometheus_tsdb([bad], tmp_path / "tsdb")


@pytest.mark.slow
def test_prometheus_serves_exactly_the_backfilled_samples(
    prometheus_tiny: Server, tiny_tsdb: Path
) -> None:
    params = {
        "query": "my_metric",
        "start": str(T0),
        "end": str(T0 + (POINTS - 1) * STEP),
        "step": str(STEP),
    }
    body = httpx.get(f"{prometheus_tiny.url}/api/v1/query_range", params=params).json()
    assert body["status"] == "success"
    got = {
        r["metric"]["instance"]: [(float(t), float(v)) for t, v in r["values"]]
        for r in body["data"]["result"]
    }
    assert got == {instance: _expected(instance) for instance in SERIES}
    # The server got links/copies: its WAL and lock live elsewhere, the cache is untouched.
    assert not (tiny_tsdb / "wal").exists()
    assert not (tiny_tsdb / "lock").exists()


@pytest.mark.slow
def test_prometheus_subquery_finds_the_first_sample(prometheus_tiny: Server) -> None:
    params = {
        "query": "min_over_time(timestamp(my_metric)[1h:30s])",
        "time": str(T0 + (POINTS - 1) * STEP),
    }
    body = httpx.get(f"{prometheus_tiny.url}/api/v1/query", params=params).json()
    firsts = {r["metric"]["instance"]: float(r["value"][1]) for r in body["data"]["result"]}
    assert firsts == {"a": float(T0), "b": float(T0)}


@pytest.mark.slow
def test_prometheus_keeps_history_older_than_default_retention(tmp_path: Path) -> None:
    # Time retention counts back from the newest block, so a 20-day span shows a 15d default.
    later = T0 + 20 * 86400
    om = tmp_path / "old.om"
    om.write_text(f"# TYPE x gauge\nx 1 {T0}\nx 2 {later}\n# EOF\n")
    backfill_prometheus_tsdb([om], tmp_path / "tsdb")
    with start_prometheus(tmp_path / "tsdb") as server:
        old = httpx.get(f"{server.url}/api/v1/query", params={"query": "x", "time": str(T0)})
    assert [r["value"] for r in old.json()["data"]["result"]] == [[T0, "1"]]


@pytest.mark.slow
def test_prometheus_without_copy_writes_into_the_given_dir(tmp_path: Path) -> None:
    with start_prometheus(tmp_path / "own", copy_tsdb=False) as server:
        assert (tmp_path / "own" / "lock").exists() or (tmp_path / "own" / "wal").exists()
    _assert_gone(server)


@pytest.mark.slow
def test_prometheus_empty_is_empty_and_answers_errors(prometheus_empty: Server) -> None:
    body = httpx.get(f"{prometheus_empty.url}/api/v1/label/__name__/values").json()
    assert body == {"status": "success", "data": []}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("error_type", "params"),
    [
        ("bad_data", {"query": "sum("}),
        ("execution", {"query": 'label_replace(vector(1), "x", "y", "z", "(")'}),
        (
            "timeout",
            {
                "query": "count_over_time(vector(1)[1d:1s])",
                "start": "0",
                "end": str(5 * 86400),
                "step": "60",
                "timeout": "1ms",
            },
        ),
    ],
)
def test_fake_error_templates_match_real_prometheus(
    prometheus_empty: Server, fake_server: FakeServer, error_type: str, params: dict[str, str]
) -> None:
    path = "/api/v1/query_range" if "step" in params else "/api/v1/query"
    real = httpx.get(f"{prometheus_empty.url}{path}", params=params)
    fake_server.script(path, prom_error(error_type, "whatever"))
    fake = httpx.get(f"{fake_server.url}{path}", params=params)
    assert real.json()["errorType"] == error_type
    assert fake.status_code == real.status_code
    assert fake.json().keys() == real.json().keys()
    assert fake.headers["content-type"] == real.headers["content-type"]


@pytest.mark.slow
def test_prometheus_that_cannot_start_reports_its_log() -> None:
    with pytest.raises(ServerStartError) as info:
        start_prometheus(config_yaml="scrape_configs: [oops")
    message = str(info.value)
    assert "exited with code" in message
    assert "log tail" in message
    assert "config" in message.lower()  # Prometheus' own complaint about the file


@pytest.mark.slow
def test_port_clash_is_retried_on_a_new_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real = servers.free_port
        monkeypatch.setattr(servers, "free_port", lambda: next(ports, None) or real())
        with start_prometheus() as server:
            assert not server.url.endswith(f":{busy}")
            assert httpx.get(f"{server.url}/-/ready").status_code == 200
    _assert_gone(server)


# --- VictoriaMetrics --------------------------------------------------------------------


@pytest.mark.slow
def test_victoriametrics_serves_the_imported_samples(tmp_path: Path) -> None:
    om, vm = tmp_path / "tiny.om", tmp_path / "tiny.vm"
    om.write_text(_tiny_openmetrics())
    openmetrics_to_vm_import(om, vm)
    with start_victoriametrics([vm]) as server:
        export = httpx.get(f"{server.url}/api/v1/export", params={"match[]": "my_metric"})
        raw = {}
        for line in export.text.splitlines():
            item = json.loads(line)
            pairs = zip(item["timestamps"], item["values"], strict=True)
            raw[item["metric"]["instance"]] = [(t / 1000, float(v)) for t, v in pairs]
        params = {
            "query": "my_metric",
            "start": str(T0),
            "end": str(T0 + (POINTS - 1) * STEP),
            "step": str(STEP),
        }
        body = httpx.get(f"{server.url}/api/v1/query_range", params=params).json()
    expected = {instance: _expected(instance) for instance in SERIES}
    assert raw == expected
    got = {
        r["metric"]["instance"]: [(float(t), float(v)) for t, v in r["values"]]
        for r in body["data"]["result"]
    }
    assert got == expected
    _assert_gone(server)


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.slow
def test_postgres_accepts_sqlalchemy(pg_database_url: str) -> None:
    assert pg_database_url.startswith("postgresql+psycopg://imagetrail:")
    assert "@127.0.0.1:" in pg_database_url
    engine = sa.create_engine(pg_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
            assert conn.execute(sa.text("SELECT sum(x) FROM t")).scalar_one() == 3
            user: str = conn.execute(sa.text("SELECT current_user")).scalar_one()
    finally:
        engine.dispose()
    assert user == "imagetrail"


@pytest.mark.slow
def test_postgres_databases_are_fresh_and_dropped(postgres_url: str) -> None:
    with temporary_database(postgres_url) as first:
        engine = sa.create_engine(first)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE leftover (x int)"))
        leaked = engine.connect()  # a leaked connection must not block the drop
    with temporary_database(postgres_url) as second:
        engine2 = sa.create_engine(second)
        with engine2.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            )
            assert tables.all() == []
        engine2.dispose()
    leaked.invalidate()
    engine.dispose()
    admin = sa.create_engine(postgres_url)
    with admin.connect() as conn:
        names: list[str] = list(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    admin.dispose()
    assert first.rsplit("/", 1)[1] not in names
    assert second.rsplit("/", 1)[1] not in names


@pytest.mark.slow
def test_postgres_stops_completely() -> None:
    server = servers.start_postgres()
    try:
        assert _pids_mentioning(str(server.workdir))  # the postmaster is there
        children = _children(server.pid)
        assert children  # checkpointer, walwriter, ...
        if os.geteuid() == 0:
            owner = Path(f"/proc/{server.pid}").stat().st_uid
            assert owner != 0  # PostgreSQL runs as the postgres user, not root
    finally:
        server.stop()
    _assert_gone(server)
    assert [pid for pid in children if _alive(pid)] == []
    assert "database system is shut down" in server.log_tail()
