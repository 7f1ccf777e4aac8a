"""The Prometheus HTTP API client: a scripted local server, httpx mocks and real servers."""

from __future__ import annotations

import gzip
import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakeserver import (
    FakeServer,
    Reply,
    json_reply,
    prom_error,
    prom_matrix,
    prom_not_ready,
    prom_success,
    prom_vector,
    text_reply,
)
from imagetrail.errors import (
    ConfigError,
    ImagetrailError,
    InputError,
    MalformedResponse,
    PartialAnswer,
    QueryRejected,
    SourceError,
    SourceUnavailable,
)
from imagetrail.sources.promapi import PromClient, PromConfig, QueryResult, Series
from servers import Server, free_port, start_victoriametrics

TOKEN = "s3cr3t-t0ken-value"
PASSWORD = "pa55-w0rd-value"
QUERY_PATH = "/api/v1/query"
RANGE_PATH = "/api/v1/query_range"
ONE = prom_vector([{"metric": {"job": "a"}, "value": [1700000000.5, "1"]}])
ANNOTATION = 'PromQL info: metric might not be a counter, name does not end in _total: "x"'


class Sleeps(list[float]):
    """A stand-in for time.sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(fake_server: FakeServer, sleeps: Sleeps) -> Iterator[Callable[..., PromClient]]:
    """Build clients for the fake server (closed after the test)."""
    clients: list[PromClient] = []

    def make(**kwargs: Any) -> PromClient:
        url = kwargs.pop("url", fake_server.url)
        client = PromClient(PromConfig(url, **kwargs), sleep=sleeps)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- requests as sent -------------------------------------------------------------------------


def test_query_is_a_form_post_asking_for_gzip(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, ONE)
    long_query = "sum(" + " + ".join(f'up{{job="{i}"}}' for i in range(500)) + ")"
    result = make_client().query(long_query, time=1700000000.25)
    [request] = fake_server.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept-encoding"] == "gzip"
    assert request.form == {"query": [long_query], "time": ["1700000000.250"]}
    assert result == QueryResult("vector", (Series({"job": "a"}, ((1700000000.5, 1.0),)),))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"bearer_token": TOKEN}, {"authorization": f"Bearer {TOKEN}"}),
        (
            {"basic_auth": ("alice", PASSWORD)},
            {
                "authorization": "Basic "
                + __import__("base64").b64encode(f"alice:{PASSWORD}".encode()).decode()
            },
        ),
        ({"tenant": "team-a|team-b"}, {"x-scope-orgid": "team-a|team-b"}),
        ({"headers": {"X-Extra": "1", "X-Other": "two"}}, {"x-extra": "1", "x-other": "two"}),
    ],
)
def test_auth_and_extra_headers_are_sent(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    kwargs: dict[str, Any],
    expected: dict[str, str],
) -> None:
    fake_server.script(QUERY_PATH, ONE)
    make_client(**kwargs).query("up")
    headers = fake_server.requests[0].headers
    assert {name: headers.get(name) for name in expected} == expected
    if "bearer_token" not in kwargs and "basic_auth" not in kwargs:
        assert "authorization" not in headers


def test_credentials_in_the_url_become_basic_auth(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script("/prom/api/v1/query", ONE)
    url = f"http://alice:{PASSWORD}@127.0.0.1:{fake_server.port}/prom/"
    client = make_client(url=url)
    assert client.config.url == f"http://127.0.0.1:{fake_server.port}/prom/"
    assert client.config.basic_auth == ("alice", PASSWORD)
    client.query("up")
    assert fake_server.requests[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize("prefix", ["/prometheus", "/select/0/prometheus", "/a/b/"])
def test_path_prefix_is_kept(
    fake_server: FakeServer, make_client: Callable[..., PromClient], prefix: str
) -> None:
    path = prefix.rstrip("/") + QUERY_PATH
    fake_server.script(path, ONE)
    make_client(url=fake_server.url + prefix).query("up")
    assert [r.path for r in fake_server.requests] == [path]


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 507])
def test_retries_then_success(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    status: int,
) -> None:
    fake_server.script(QUERY_PATH, text_reply("busy", status), text_reply("busy", status), ONE)
    client = make_client(backoff=0.5)
    assert client.query("up").series[0].labels == {"job": "a"}
    assert len(fake_server.requests) == 3
    assert client.stats.requests == 3
    # Exponential with jitter: attempt k waits within [base/2, base], base = 0.5 * 2**k.
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_retry_after_is_honoured(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    slow_down = text_reply("slow down", 429, headers={"Retry-After": "7"})
    far_future = text_reply("later", 503, headers={"Retry-After": "86400"})
    fake_server.script(QUERY_PATH, slow_down, far_future, ONE)
    make_client().query("up")
    assert sleeps == [7.0, 60.0]  # capped: a server must not park us for a day


def test_retry_exhaustion_is_source_unavailable(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(QUERY_PATH, prom_error("unavailable", "ingesters are down"))
    with pytest.raises(SourceUnavailable) as info:
        make_client(retries=2).query("up")
    assert len(fake_server.requests) == 3
    assert len(sleeps) == 2
    message = str(info.value)
    assert "HTTP 503" in message
    assert "ingesters are down" in message
    assert "3 attempts" in message
    assert fake_server.url in message
    assert info.value.hint is not None
    assert "--prometheus" in info.value.hint


def test_prometheus_not_ready_503(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, prom_not_ready())
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        make_client(retries=1).query("up")
    assert len(fake_server.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [
        prom_error("canceled", "boom"),
        prom_error("internal", "boom", status=501),
        prom_error("internal", "boom", status=505),
        prom_error("internal", "boom", status=511),
    ],
    ids=["499-canceled", "501", "505", "511"],
)
def test_other_server_errors_are_not_retried(
    fake_server: FakeServer, make_client: Callable[..., PromClient], reply: Reply
) -> None:
    fake_server.script(QUERY_PATH, reply)
    with pytest.raises(ImagetrailError) as info:
        make_client().query("up")
    assert len(fake_server.requests) == 1
    assert "boom" in str(info.value)


def test_a_dropped_connection_is_retried(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, Reply(action="close"), ONE)
    assert make_client().query("up").result_type == "vector"
    assert len(fake_server.requests) == 2


# -- partial answers (Thanos, Mimir, VictoriaMetrics cluster) ---------------------------------

# What a Thanos querier with partial_response says when one StoreAPI did not answer.
THANOS_WARNING = (
    "receive series from Addr: 10.0.3.12:10901 LabelSets: "
    '{prometheus="monitoring/k8s", prometheus_replica="prometheus-k8s-1"} '
    "MinTime: 1699913600000 MaxTime: 1700000000000: rpc error: code = Unavailable "
    "desc = store 10.0.3.12:10901 unavailable"
)
FULL = [
    {"metric": {"pod": "a"}, "values": [[1700000000, "1"]]},
    {"metric": {"pod": "b"}, "values": [[1700000000, "1"]]},
]
HALF = FULL[:1]


def vm_partial(result: list[dict[str, Any]]) -> Reply:
    """A VictoriaMetrics cluster answer when a vmstorage node did not answer."""
    return json_reply(
        {"status": "success", "isPartial": True, "data": {"resultType": "matrix", "result": result}}
    )


@pytest.mark.parametrize(
    ("partial", "quoted"),
    [
        (prom_matrix(HALF, warnings=[THANOS_WARNING]), "store 10.0.3.12:10901 unavailable"),
        (vm_partial(HALF), '"isPartial": true'),
    ],
    ids=["thanos-warnings", "victoriametrics-isPartial"],
)
def test_a_partial_answer_is_retried_then_fails(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    partial: Reply,
    quoted: str,
) -> None:
    fake_server.script(RANGE_PATH, partial)
    with pytest.raises(PartialAnswer) as info:
        make_client(retries=2, backoff=0.5).query_range("up", start=0, end=60, step=30)
    assert len(fake_server.requests) == 3
    assert all(r.form == fake_server.requests[0].form for r in fake_server.requests)
    # The same backoff as any transient failure.
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0
    error = info.value
    assert isinstance(error, SourceError)
    assert error.exit_code == 3
    message = str(error)
    assert "\n" not in message
    assert quoted in message
    assert f"{fake_server.url}/api/v1/query_range" in message
    assert "3 attempts" in message
    assert error.hint is not None
    assert "accept_partial" in error.hint
    assert len(error.warnings) == 1
    assert quoted in error.warnings[0]


def test_a_partial_answer_then_a_whole_one_is_the_whole_one(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    fake_server.script(
        RANGE_PATH,
        prom_matrix(HALF, warnings=[THANOS_WARNING]),
        vm_partial(HALF),
        prom_matrix(FULL),
    )
    result = make_client(retries=2).query_range("up", start=1700000000, end=1700000000, step=30)
    assert [s.labels["pod"] for s in result.series] == ["a", "b"]
    assert result.warnings == ()
    assert len(fake_server.requests) == 3
    # Each retry asks the same question again.
    first = fake_server.requests[0].form
    assert first["query"] == ["up"]
    assert all(r.form == first for r in fake_server.requests)
    assert len(sleeps) == 2


def test_accept_partial_uses_the_answer_and_logs_the_warning_once(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="imagetrail.sources")
    fake_server.script(RANGE_PATH, prom_matrix(HALF, warnings=[THANOS_WARNING]))
    client = make_client(retries=1, accept_partial=True)
    result = client.query_range("up", start=1700000000, end=1700000000, step=30)
    assert len(fake_server.requests) == 2  # still retried first
    assert [s.labels["pod"] for s in result.series] == ["a"]
    assert result.warnings == (THANOS_WARNING,)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.name == "imagetrail.sources"
    assert warning.levelno == logging.WARNING
    assert "store 10.0.3.12:10901 unavailable" in warning.getMessage()
    assert "api/v1/query_range" in warning.getMessage()


def test_accept_partial_is_passed_from_the_settings(tmp_path: Path) -> None:
    from imagetrail.service.query import QueryContext
    from imagetrail.settings import load

    config = tmp_path / "imagetrail.yaml"
    config.write_text("prometheus_url: http://prom:9090\n")
    on = load(environ={"IMAGETRAIL_ACCEPT_PARTIAL": "true"}, config_path=config)
    assert QueryContext(on).prom_config().accept_partial is True
    off = load(environ={}, config_path=config)
    assert QueryContext(off).prom_config().accept_partial is False


@pytest.mark.parametrize(
    "warnings",
    [
        [ANNOTATION],
        ['PromQL warning: encountered a mix of histograms and floats for metric name "y"'],
    ],
)
def test_promql_annotations_are_not_partiality(
    fake_server: FakeServer, make_client: Callable[..., PromClient], warnings: list[str]
) -> None:
    fake_server.script(QUERY_PATH, prom_vector([], warnings=warnings))
    result = make_client().query("up")
    assert result.warnings == tuple(warnings)
    assert len(fake_server.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        # an annotation does not hide a store warning next to it
        prom_vector([], warnings=["PromQL info: metric might not be a counter", THANOS_WARNING]),
        # the omitted ones may be storage warnings
        prom_vector([], warnings=["PromQL info: x"] * 10 + ["3 more annotations omitted"]),
        # isPartial next to an annotation
        json_reply(
            {
                "status": "success",
                "isPartial": True,
                "warnings": ["PromQL info: x"],
                "data": {"resultType": "vector", "result": []},
            }
        ),
    ],
)
def test_partiality_is_not_hidden_by_annotations(
    fake_server: FakeServer, make_client: Callable[..., PromClient], reply: Reply
) -> None:
    fake_server.script(QUERY_PATH, reply)
    with pytest.raises(PartialAnswer):
        make_client(retries=0).query("up")


def test_is_partial_false_is_a_whole_answer(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(
        QUERY_PATH,
        json_reply(
            {
                "status": "success",
                "isPartial": False,
                "data": {"resultType": "vector", "result": []},
            }
        ),
    )
    assert make_client().query("up").series == ()
    assert len(fake_server.requests) == 1


def test_partial_metadata_answers_fail_too(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script("/api/v1/series", prom_success([{"pod": "a"}], warnings=[THANOS_WARNING]))
    fake_server.script("/api/v1/label/pod/values", prom_success(["a"], warnings=[THANOS_WARNING]))
    client = make_client(retries=0)
    with pytest.raises(PartialAnswer, match="api/v1/series"):
        client.series(["up"], start=0, end=1)
    with pytest.raises(PartialAnswer, match="api/v1/label/pod/values"):
        client.label_values("pod")


def test_partial_message_is_one_short_line_without_secrets(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    long = f"store\n{TOKEN} unavailable: " + "x" * 2000
    warnings = [long, "second", "third", "fourth", "fifth"]
    fake_server.script(QUERY_PATH, prom_vector([], warnings=warnings))
    with pytest.raises(PartialAnswer) as info:
        make_client(bearer_token=TOKEN, retries=0).query("up")
    message = str(info.value)
    assert TOKEN not in message
    assert TOKEN not in repr(info.value.warnings)
    assert '"store *** unavailable: xxx' in message
    assert "\n" not in message
    assert len(message) < 1000
    assert '"third" (and 2 more)' in message
    assert "fourth" not in message


# -- rejected queries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "status"), [("bad_data", 400), ("execution", 422), ("not_found", 404)]
)
def test_rejections_carry_the_servers_words(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    error_type: str,
    status: int,
) -> None:
    error = 'invalid parameter "query": 1:5: parse error: unexpected "}"'
    fake_server.script(QUERY_PATH, prom_error(error_type, error))
    query = "up{" + "a" * 300 + "}"
    with pytest.raises(QueryRejected) as info:
        make_client().query(query)
    assert len(fake_server.requests) == 1  # never retried
    assert fake_server.requests[0].form["query"] == [query]
    assert info.value.error_type == error_type
    assert error in str(info.value)
    assert query[:200] in str(info.value)
    assert query[:201] not in str(info.value)
    assert (info.value.hint is not None) == (status == 404)  # a wrong path prefix


def test_401_without_json_is_rejected_with_a_credentials_hint(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, text_reply("no", 401))
    with pytest.raises(QueryRejected, match="401 Unauthorized") as info:
        make_client(bearer_token=TOKEN).query("up")
    assert info.value.error_type is None
    assert info.value.hint == "check the credentials"


# -- timeouts and connection failures ---------------------------------------------------------


def test_timeout_is_source_unavailable(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, Reply(delay=5, body=b"{}"))
    with pytest.raises(SourceUnavailable, match=r"no answer within 0\.3s") as info:
        make_client(timeout=0.3, retries=1).query("up")
    assert len(fake_server.requests) == 2  # retried like any transient failure
    assert "gave up after 2 attempts" in str(info.value)
    assert info.value.hint is not None
    assert "too heavy" in info.value.hint


def test_connection_refused(make_client: Callable[..., PromClient], sleeps: Sleeps) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceUnavailable, match="cannot connect") as info:
        make_client(url=url, retries=2).query("up")
    assert url in str(info.value)
    assert len(sleeps) == 2


def test_tls_to_a_plain_http_server_fails_clearly(
    fake_server: FakeServer, make_client: Callable[..., PromClient], sleeps: Sleeps
) -> None:
    with pytest.raises(SourceUnavailable, match="TLS"):
        make_client(url=f"https://127.0.0.1:{fake_server.port}").query("up")
    assert sleeps == []  # a TLS failure will not heal by retrying


def test_missing_ca_file_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="CA file"):
        PromClient(PromConfig("https://x", ca_file=str(tmp_path / "nope.pem")))


# -- malformed answers ------------------------------------------------------------------------


LOGIN_PAGE = b"<!DOCTYPE html><html><body><form action=/oauth2/start>Sign in</form></body></html>"


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body=LOGIN_PAGE, headers={"Content-Type": "text/html"}), "HTML"),
        (Reply(body=LOGIN_PAGE), "HTML"),
        (json_reply({"data": {}}), "no 'status'"),
        (json_reply({"status": "success"}), "no 'data'"),
        (json_reply([1, 2]), "no 'status'"),
        (prom_success({"resultType": "vector", "result": [{"value": [1, 2]}]}), "sample"),
        (prom_success({"resultType": "vector", "result": [{"value": [1, "x"]}]}), "number"),
        (prom_success({"resultType": "histogram", "result": []}), "result type"),
        (prom_success({"resultType": "vector", "result": [{"metric": {"a": 1}}]}), "labels"),
        (
            Reply(status=302, headers={"Location": "https://sso.example/login?token=x"}),
            "redirected",
        ),
        (Reply(body=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"}), "gzip"),
    ],
)
def test_malformed_answers(
    fake_server: FakeServer, make_client: Callable[..., PromClient], reply: Reply, match: str
) -> None:
    fake_server.script(QUERY_PATH, reply)
    with pytest.raises(MalformedResponse, match=match) as info:
        make_client().query("up")
    assert fake_server.url in str(info.value)
    assert "token=x" not in str(info.value)
    assert info.value.hint is not None


# -- result shapes ----------------------------------------------------------------------------


def test_special_values_and_result_types(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    values = [[1, "NaN"], [2, "+Inf"], [3, "-Inf"], [4, "1e-300"], [5, "-0"]]
    fake_server.script(RANGE_PATH, prom_matrix([{"metric": {}, "values": values}]))
    fake_server.script(
        QUERY_PATH,
        prom_success({"resultType": "scalar", "result": [10, "NaN"]}, warnings=[ANNOTATION]),
        prom_success({"resultType": "string", "result": [10, "hello"]}),
        # A native histogram sample carries no float value; it is left out, not an error.
        prom_vector([{"metric": {"a": "b"}, "histogram": [1, {"count": "3"}]}]),
    )
    client = make_client()
    got = client.query_range("x", start=1, end=5, step=1).series[0].values
    assert [t for t, _ in got] == [1, 2, 3, 4, 5]
    assert math.isnan(got[0][1])
    assert got[1][1] == math.inf
    assert got[2][1] == -math.inf
    assert got[3][1] == 1e-300
    scalar = client.query("scalar(x)")
    assert scalar.result_type == "scalar"
    assert scalar.warnings == (ANNOTATION,)  # carried, not partiality
    assert scalar.series[0].labels == {}
    assert math.isnan(scalar.series[0].values[0][1])
    text = client.query('"hello"')
    assert (text.result_type, text.string, text.series) == ("string", "hello", ())
    hist = client.query("h")
    assert hist.series == (Series({"a": "b"}, ()),)


def test_gzip_bodies_are_decoded_and_counted_as_received(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    payload = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"pod": f"p{i}"}, "value": [1, "1"]} for i in range(300)],
        },
    }
    raw = json.dumps(payload).encode()
    body = gzip.compress(raw)
    fake_server.script(
        QUERY_PATH,
        Reply(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}),
    )
    client = make_client()
    assert len(client.query("up").series) == 300
    assert client.stats.bytes_received == len(body) < len(raw)
    assert client.stats.requests == 1
    assert client.stats.seconds > 0


def test_series_label_values_and_buildinfo(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script("/api/v1/series", prom_success([{"__name__": "up", "job": "a"}]))
    fake_server.script("/api/v1/label/namespace/values", prom_success(["a", "b"]))
    fake_server.script(
        "/api/v1/status/buildinfo",
        prom_success({"version": "2.42.0", "revision": "abc", "goVersion": "go1.19"}),
        text_reply("404 page not found", 404),
        prom_success({}),
    )
    client = make_client()
    assert client.series(['up{job="a"}', "kube_pod_info"], start=10, end=20.5) == [
        {"__name__": "up", "job": "a"}
    ]
    series_request = fake_server.requests_to("/api/v1/series")[0]
    assert series_request.method == "POST"
    assert series_request.params == {
        "match[]": ['up{job="a"}', "kube_pod_info"],
        "start": ["10"],
        "end": ["20.500"],
    }
    assert client.label_values("namespace", match=["up"], start=1) == ["a", "b"]
    assert fake_server.requests_to("/api/v1/label/namespace/values")[0].params == {
        "match[]": ["up"],
        "start": ["1"],
    }
    assert client.buildinfo() == {"version": "2.42.0", "revision": "abc", "goVersion": "go1.19"}
    assert client.buildinfo() is None  # a 404
    assert client.buildinfo() is None  # empty data, as VictoriaMetrics answers
    with pytest.raises(InputError):
        client.label_values("bad-name")
    with pytest.raises(InputError):
        client.series([], start=0, end=1)


# -- query_range splitting --------------------------------------------------------------------


def time_server(
    calls: list[dict[str, str]], *, max_steps: int = 11000, overlap: bool = False
) -> httpx.MockTransport:
    """A fake Prometheus for ``time()``: value == timestamp, with its 11,000-step limit."""

    def handler(request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        calls.append(form)
        start_ms = round(float(form["start"]) * 1000)
        end_ms = round(float(form["end"]) * 1000)
        step_ms = round(float(form["step"]) * 1000)
        if (end_ms - start_ms) // step_ms > max_steps:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "exceeded maximum resolution",
                },
            )
        if overlap:
            start_ms -= step_ms  # like a server that aligns pieces to its own grid
        values = [[t / 1000, repr(t / 1000)] for t in range(start_ms, end_ms + 1, step_ms)]
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            },
        )

    return httpx.MockTransport(handler)


def test_query_range_splits_at_11000_points_without_seam_duplicates() -> None:
    calls: list[dict[str, str]] = []
    start, step = 1_600_000_000.0, 15.0
    end = start + 30_000 * step  # 30,001 points
    with PromClient(PromConfig("http://prom"), transport=time_server(calls)) as client:
        result = client.query_range("time()", start=start, end=end, step=step)
    assert len(calls) == 3
    assert [(float(c["end"]) - float(c["start"])) / step for c in calls] == [10999, 10999, 8000]
    [series] = result.series
    times = [t for t, _ in series.values]
    assert times == [start + k * step for k in range(30_001)]
    assert all(value == t for t, value in series.values)


def test_query_range_with_an_aligning_server_has_no_duplicates() -> None:
    calls: list[dict[str, str]] = []
    with PromClient(
        PromConfig("http://prom", max_points=100), transport=time_server(calls, overlap=True)
    ) as client:
        result = client.query_range("time()", start=0, end=999, step=1)
    assert len(calls) == 10
    times = [t for t, _ in result.series[0].values]
    assert times == sorted(set(times))
    assert times[0] == -1
    assert times[-1] == 999
    assert len(times) == 1001


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start_ms=st.integers(min_value=-(10**6), max_value=2 * 10**12),
    step_ms=st.integers(min_value=1, max_value=3_600_000),
    points=st.integers(min_value=1, max_value=700),
    max_points=st.integers(min_value=2, max_value=300),
)
def test_query_range_pieces_cover_every_step_once(
    start_ms: int, step_ms: int, points: int, max_points: int
) -> None:
    calls: list[dict[str, str]] = []
    start, step = start_ms / 1000, step_ms / 1000
    end = (start_ms + (points - 1) * step_ms + step_ms // 2) / 1000  # an end between steps
    config = PromConfig("http://prom", max_points=max_points)
    with PromClient(config, transport=time_server(calls, max_steps=max_points - 1)) as client:
        result = client.query_range("time()", start=start, end=end, step=step)
    assert len(calls) == -(-points // max_points)
    got_ms = [round(t * 1000) for t, _ in result.series[0].values]
    assert got_ms == [start_ms + k * step_ms for k in range(points)]


def test_query_range_input_checks() -> None:
    with PromClient(PromConfig("http://prom")) as client:
        with pytest.raises(InputError, match="step"):
            client.query_range("up", start=0, end=10, step=0)
        with pytest.raises(InputError, match="before start"):
            client.query_range("up", start=10, end=0, step=1)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "status",
                        "data",
                        "resultType",
                        "result",
                        "metric",
                        "value",
                        "values",
                        "error",
                        "errorType",
                        "warnings",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_any_json_answer_is_a_result_or_a_malformed_response(payload: Any) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=json.dumps(payload).encode())
    )
    with PromClient(PromConfig("http://prom", retries=0), transport=transport) as client:
        try:
            result = client.query("up")
        except (MalformedResponse, QueryRejected):
            return
        except PartialAnswer:
            # Only an answer that carries a warning or VictoriaMetrics' isPartial is partial.
            assert isinstance(payload, dict)
            assert payload.get("warnings") or payload.get("isPartial") in (True, "true")
            return
    assert result.result_type in ("vector", "matrix", "scalar", "string")
    assert all(isinstance(v, float) for s in result.series for pair in s.values for v in pair)


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_never_leak(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    both = f"token {TOKEN} and password {PASSWORD} are not allowed"
    fake_server.script("/c1/api/v1/query", prom_error("bad_data", f"bad token {TOKEN}"))
    fake_server.script("/c2/api/v1/query", prom_error("unavailable", f"bad password {PASSWORD}"))
    fake_server.script("/c3/api/v1/query", prom_error("execution", both))
    fake_server.script("/c4/api/v1/query", Reply(body=LOGIN_PAGE))
    base = fake_server.url
    clients = [
        make_client(url=f"{base}/c1", bearer_token=TOKEN),
        make_client(url=f"http://alice:{PASSWORD}@127.0.0.1:{fake_server.port}/c2", retries=0),
        make_client(url=f"{base}/c3", basic_auth=("alice", PASSWORD), headers={"X-Api-Key": TOKEN}),
        make_client(url=f"{base}/c4", bearer_token=TOKEN),
        make_client(url=f"http://127.0.0.1:{free_port()}", bearer_token=TOKEN, retries=1),
    ]
    seen: list[str] = []
    for client in clients:
        seen += [repr(client), repr(client.config), str(client.config)]
        with pytest.raises(ImagetrailError) as info:
            client.query("up")
        seen += [str(info.value), repr(info.value), str(info.value.hint), str(info.value.args)]
    seen += [record.getMessage() for record in caplog.records]
    assert any("***" in text for text in seen)  # the echoed secrets were scrubbed
    for text in seen:
        assert TOKEN not in text
        assert PASSWORD not in text


def test_requests_are_logged_at_debug(
    fake_server: FakeServer,
    make_client: Callable[..., PromClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="imagetrail.sources")
    fake_server.script(QUERY_PATH, ONE)
    make_client().query("up")
    [record] = [r for r in caplog.records if r.name == "imagetrail.sources"]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert message.startswith(f"POST {fake_server.url}/api/v1/query -> 200 in ")
    assert message.endswith(f"s, {len(ONE.body)} bytes")


# -- configuration and concurrency ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "prometheus:9090"}, "http"),
        ({"url": "ftp://x"}, "http"),
        ({"url": "http://x/?a=1"}, "query"),
        ({"url": "http://x", "bearer_token": "t", "basic_auth": ("a", "b")}, "not both"),
        ({"url": "http://x", "bearer_token": "a\nb"}, "header"),
        ({"url": "http://x", "timeout": 0}, "timeout"),
        ({"url": "http://x", "retries": -1}, "retries"),
        ({"url": "http://x", "max_points": 1}, "max_points"),
    ],
)
def test_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PromConfig(**kwargs)


def test_config_is_frozen_hashable_and_quiet() -> None:
    headers = {"Authorization-Extra": TOKEN}
    config = PromConfig("http://x", bearer_token=TOKEN, headers=headers)
    headers["X-Late"] = "1"  # the caller's dict changing later does not change the config
    assert dict(config.headers) == {"Authorization-Extra": TOKEN}
    assert hash(config) == hash(PromConfig("http://x", bearer_token=TOKEN))
    assert TOKEN not in repr(config)
    with pytest.raises(AttributeError):
        config.url = "http://y"  # type: ignore[misc]


def test_one_client_is_shared_by_threads(
    fake_server: FakeServer, make_client: Callable[..., PromClient]
) -> None:
    fake_server.script(QUERY_PATH, ONE)
    client = make_client()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert client.query("up").series[0].values == ((1700000000.5, 1.0),)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.stats.requests == 200 == len(fake_server.requests)
    assert client.stats.bytes_received == 200 * len(ONE.body)


# -- the real Prometheus 2.42 and VictoriaMetrics ---------------------------------------------


@pytest.fixture
def prom(prometheus_empty: Server) -> Iterator[PromClient]:
    with PromClient(PromConfig(prometheus_empty.url, timeout=30)) as client:
        yield client


@pytest.mark.slow
def test_real_bad_query_is_rejected_with_prometheus_own_words(
    prom: PromClient, prometheus_empty: Server
) -> None:
    query = 'sum(rate(container_cpu_usage_seconds_total{image!=""}[5m]) by (image)'
    direct = httpx.post(f"{prometheus_empty.url}/api/v1/query", data={"query": query}).json()
    with pytest.raises(QueryRejected) as info:
        prom.query(query)
    assert info.value.error_type == direct["errorType"] == "bad_data"
    assert direct["error"] in str(info.value)
    assert query in str(info.value)


@pytest.mark.slow
def test_real_execution_error_is_rejected(prom: PromClient) -> None:
    with pytest.raises(QueryRejected) as info:
        prom.query('label_replace(vector(1), "x", "a", "", "(")')
    assert info.value.error_type == "execution"  # HTTP 422
    assert "invalid regular expression" in str(info.value)


@pytest.mark.slow
def test_real_instant_query(prom: PromClient) -> None:
    result = prom.query("vector(1)", time=1_700_000_000)
    assert result == QueryResult("vector", (Series({}, ((1_700_000_000.0, 1.0),)),))
    scalar = prom.query("scalar(vector(NaN))")
    assert scalar.result_type == "scalar"
    assert math.isnan(scalar.series[0].values[0][1])


@pytest.mark.slow
def test_real_query_range_is_split_and_stitched(prom: PromClient) -> None:
    before = prom.stats.requests
    start, step = 1_690_000_000.0, 10.0
    result = prom.query_range("time()", start=start, end=start + 25_000 * step, step=step)
    assert prom.stats.requests - before == 3
    [series] = result.series
    assert [t for t, _ in series.values] == [start + k * step for k in range(25_001)]
    assert all(value == t for t, value in series.values)


@pytest.mark.slow
def test_real_query_range_too_many_points_unsplit_is_rejected(prometheus_empty: Server) -> None:
    # The limit we split at is the real one: one piece of 11,002 points is refused.
    config = PromConfig(prometheus_empty.url, max_points=11_002)
    with PromClient(config) as client, pytest.raises(QueryRejected, match="11,000 points"):
        client.query_range("time()", start=0, end=11_001, step=1)
    with PromClient(PromConfig(prometheus_empty.url, max_points=11_001)) as client:
        assert (
            len(client.query_range("time()", start=0, end=11_000, step=1).series[0].values)
            == 11_001
        )


@pytest.mark.slow
def test_real_metadata_endpoints(prom: PromClient) -> None:
    info = prom.buildinfo()
    assert info is not None
    assert info["version"].startswith("2.42")
    assert prom.series(["up"], start=0, end=1_700_000_000) == []
    assert prom.label_values("job", match=["up"]) == []


@pytest.fixture(scope="module")
def victoriametrics() -> Iterator[Server]:
    server = start_victoriametrics()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_real_victoriametrics_with_prefix(victoriametrics: Server) -> None:
    url = f"{victoriametrics.url}/prometheus"
    with PromClient(PromConfig(url, max_points=1000)) as client:
        result = client.query("vector(1)", time=1_700_000_000)
        assert result.series[0].values == ((1_700_000_000.0, 1.0),)
        start = 1_690_000_000.0
        ranged = client.query_range("time()", start=start, end=start + 2_500 * 60, step=60)
        assert client.stats.requests == 4
        assert [t for t, _ in ranged.series[0].values] == [start + k * 60 for k in range(2_501)]
        with pytest.raises(QueryRejected) as info:
            client.query("sum(")
        # VictoriaMetrics has its own errorType values ("422"); they are passed on as they are.
        assert info.value.error_type == "422"
        assert "sum(" in str(info.value)
        assert client.buildinfo() is None  # VictoriaMetrics 1.79 answers empty data
