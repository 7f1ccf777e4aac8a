"""CI/CD deployment events: validation, the ledger (SQLite and PostgreSQL, and the v1 → v2
migration), matching and lead time, the API in-process and through a real ``imagetrail serve``
with ``deploy record --server``, and the workload page's markers in Chromium.

The ledger here holds one workload, ``prod/shop/Deployment/web``, whose container ``app`` moves
from nginx 1.25 to 1.26 six hours before the end of the data: that is the change the events
below must (or must not) match.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, inspect, text

import hostile
from clirun import assert_one_error, invoke
from imagetrail import settings as settings_mod
from imagetrail.analysis.leadtime import (
    lead_time,
    match_change,
    match_deployments,
    same_version,
)
from imagetrail.errors import DeploymentConflict, InputError, InvalidDeployment
from imagetrail.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from imagetrail.ledger import rows as R
from imagetrail.ledger import schema as S
from imagetrail.model import Change, ChangeKind, Deployment, Span
from imagetrail.service.deployments import (
    FIELDS,
    deployment_json,
    parse_deployment,
    record_deployment,
)
from imagetrail.service.shapes import record
from imagetrail.service.sync import rederive_changes
from imagetrail.timeutil import format_time
from imagetrail.web import create_app
from imagetrail.web.deploy_api import MAX_BODY

HOUR = 3600.0
TOKEN = "s3cret-Token_for.tests"
OLD = "docker.io/library/nginx:1.25"
NEW = "docker.io/library/nginx:1.26"
NEW_DIGEST = "sha256:" + "b" * 64
BIN = str(Path(sys.executable).with_name("imagetrail"))


# ---------------------------------------------------------------------------- data


def build_ledger(target: str | Path, *, end: float) -> tuple[Ledger, Change]:
    """The one-workload ledger described in the module docstring, and its upgrade."""
    start, switch = end - 24 * HOUR, end - 6 * HOUR

    def span(pod: str, image: str, digest: str, first: float, last: float) -> Span:
        return Span("prod", "shop", "Deployment", "web", pod, "app", image, digest, first, last)

    spans = [
        span("web-a", OLD, "sha256:" + "a" * 64, start, switch + 120),
        span("web-b", NEW, NEW_DIGEST, switch, end),
    ]
    ledger = Ledger.open(target)
    ledger.merge_spans(spans, sync_key="deploy|test|", synced_from=start, synced_until=end)
    rederive_changes(ledger, tolerance=60)
    upgrade = next(c for c in ledger.changes() if c.kind is ChangeKind.UPGRADE)
    return ledger, upgrade


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def end() -> float:
    return time.time() // 60 * 60


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    url: str = request.getfixturevalue("pg_database_url")
    return url


def event(**fields: Any) -> Deployment:
    base: dict[str, Any] = {"workload": "shop/web", "image": "nginx:1.26"}
    return parse_deployment(base | fields, now=fields.pop("_now", time.time()))


# ---------------------------------------------------------------------------- validation


def test_a_full_event_is_normalised() -> None:
    d = parse_deployment(
        {
            "id": "gha-42.1",
            "cluster": "prod",
            "namespace": "shop",
            "workload": "web",
            "container": "app",
            "image": f"nginx:1.26@{NEW_DIGEST}",
            "commit": "ABCDEF1234",
            "commit_time": "2026-11-20T10:00:00+01:00",
            "pipeline_url": "https://ci.example/o/r/actions/runs/42",
            "deployed_at": 1_795_000_000,
        },
        now=1_795_000_100,
    )
    assert (d.image, d.digest, d.commit) == (NEW, NEW_DIGEST, "abcdef1234")
    assert d.commit_time == datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
    assert (d.deployed_at, d.received_at) == (1_795_000_000, 1_795_000_100)
    assert deployment_json(d)["deployed_at"] == format_time(1_795_000_000)


def test_defaults_and_the_namespace_slash_name_form() -> None:
    d = parse_deployment({"workload": "shop/web", "image": "nginx"}, now=100.0)
    assert (d.namespace, d.workload, d.deployed_at, d.received_at) == ("shop", "web", 100, 100)
    assert len(d.id) == 32
    assert d.cluster is None
    assert d.container is None


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"image": "Nginx:1.26"}, "image: not an image reference"),
    ({"image": "nginx:1.26@sha256:abc"}, "image: not an image reference"),
    ({"image": ""}, "image: must not be empty"),
    ({"image": 5}, "image: must be a string, not a number"),
    ({"image": None, "workload": "shop/web"}, "image: is required"),
    ({"workload": "web"}, "namespace: is required"),
    ({"workload": "shop/Web"}, "workload: 'Web' is not a Kubernetes workload name"),
    ({"namespace": "a" * 64, "workload": "web"}, "namespace:"),
    ({"container": "App"}, "container:"),
    ({"cluster": "prod\n"}, "cluster:"),
    ({"commit": "xyz1234"}, "commit:"),
    ({"commit": "abc12"}, "commit:"),
    ({"commit": "a" * 65}, "commit:"),
    ({"commit_time": "yesterday"}, "commit_time: invalid time"),
    ({"commit_time": "2026-11-20T10:00:00"}, "commit_time: invalid time"),
    ({"deployed_at": True}, "deployed_at: must be a time string or unix seconds, not a boolean"),
    ({"deployed_at": 1e300}, "deployed_at: invalid time"),
    ({"deployed_at": -5}, "deployed_at: invalid time"),
    ({"pipeline_url": "javascript:alert(1)"}, "pipeline_url:"),
    ({"pipeline_url": "ftp://ci.example/x"}, "pipeline_url:"),
    ({"pipeline_url": "https://"}, "pipeline_url:"),
    ({"pipeline_url": 'https://ci.example/"><script>'}, "pipeline_url:"),
    ({"pipeline_url": "https://ci.example/" + "a" * 3000}, "pipeline_url:"),
    ({"id": "-starts-with-dash"}, "id:"),
    ({"id": "a" * 129}, "id:"),
    ({"received_at": 5}, "unknown field 'received_at' (the server sets it)"),
    ({"env": "prod"}, "unknown field 'env'"),
    ({"labels": ["a"]}, "unknown field 'labels'"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS)
def test_bad_fields_are_named(fields: dict[str, Any], message: str) -> None:
    body = {"workload": "shop/web", "image": "nginx:1.26"} | fields
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(InvalidDeployment) as info:
        parse_deployment(body, now=1000.0)
    assert info.value.message.startswith(message) or message in info.value.message
    assert info.value.http_status == 422


HOSTILE = [
    hostile.PAYLOAD,
    hostile.IMAGE_NEW,
    hostile.POD,
    hostile.CONTAINER,
    hostile.WORKLOAD,
    "\x00",
    "\ud800",
    "a\u202eb",
    "../../etc/passwd",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "field", ["namespace", "workload", "container", "image", "commit", "pipeline_url", "id"]
)
def test_hostile_strings_are_refused_by_field(field: str, value: str) -> None:
    body = {"namespace": "shop", "workload": "web", "image": "nginx:1.26", field: value}
    with pytest.raises(InvalidDeployment, match=f"^{field}: "):
        parse_deployment(body, now=1000.0)


@pytest.mark.parametrize("value", [hostile.PAYLOAD, hostile.WORKLOAD, "prod eu"])
def test_hostile_but_printable_cluster_names_are_kept_as_text(value: str) -> None:
    # Cluster names are whatever the metrics' cluster label says, so any printable text.
    d = parse_deployment({"workload": "shop/web", "image": "nginx", "cluster": value}, now=1.0)
    assert d.cluster == value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.none() | st.text(max_size=30) | st.integers()))
def test_any_json_object_is_an_event_or_an_input_error(body: dict[str, Any]) -> None:
    error: InputError | None = None
    try:
        d = parse_deployment(body, now=1000.0)
    except InputError as exc:
        error = exc
    if error is not None:  # one line, whatever the input held
        assert error.message
        assert "\n" not in error.message
        return
    assert set(body) <= set(FIELDS)
    assert d.namespace
    assert d.workload
    assert d.image


# ---------------------------------------------------------------------------- matching


def change(
    started: float,
    *,
    to_image: str | None = NEW,
    to_digest: str | None = None,
    finished: float | None = None,
    cluster: str = "prod",
    container: str = "app",
    workload: str = "web",
    namespace: str = "shop",
) -> Change:
    return Change(
        cluster, namespace, "Deployment", workload, container, OLD, None, to_image, to_digest,
        ChangeKind.UPGRADE, started, finished,
    )  # fmt: skip


def deployment(at: float, **fields: Any) -> Deployment:
    image, digest = fields.pop("image", NEW), fields.pop("digest", None)
    return Deployment(
        id=fields.pop("id", "e1"),
        namespace=fields.pop("namespace", "shop"),
        workload=fields.pop("workload", "web"),
        image=image,
        digest=digest,
        deployed_at=at,
        received_at=at,
        **fields,
    )


def test_version_equality_by_digest_then_tag() -> None:
    c = change(0, to_digest=NEW_DIGEST)
    assert same_version(NEW, None, c)  # tags
    assert same_version("docker.io/library/nginx:other", NEW_DIGEST, c)  # digest decides
    assert not same_version(NEW, "sha256:" + "c" * 64, c)  # both digests, different
    assert not same_version(f"docker.io/library/nginx@{NEW_DIGEST}", None, change(0))
    assert same_version(f"docker.io/library/nginx@{NEW_DIGEST}", NEW_DIGEST, c)
    assert not same_version("docker.io/library/redis:1.26", None, c)  # another repository
    assert not same_version(NEW, None, change(0, to_image=None))  # a removal
    assert not same_version(NEW, None, change(0, to_image="sha256:" + "d" * 64))


def test_nearest_change_within_the_window_wins() -> None:
    near, far = change(1000 + 120), change(1000 - 600)
    assert match_change(deployment(1000), [far, near], 3600) == near
    assert match_change(deployment(1000), [far], 300) is None
    assert match_change(deployment(1000), [change(1000 + 3600)], 3600) is not None
    assert match_change(deployment(1000), [change(1000 + 3601)], 3600) is None


def test_cluster_and_container_narrow_only_when_given() -> None:
    other = change(1000, cluster="staging", container="sidecar")
    assert match_change(deployment(1000), [other], 60) == other
    assert match_change(deployment(1000, cluster="prod"), [other], 60) is None
    assert match_change(deployment(1000, container="app"), [other], 60) is None
    assert match_change(deployment(1000), [change(1000, workload="api")], 60) is None
    assert match_change(deployment(1000), [change(1000, namespace="pay")], 60) is None


def test_lead_time_uses_finished_else_started() -> None:
    d = deployment(1000, commit_time=400.0)
    assert lead_time(d, change(1000, finished=1300)) == 900
    assert lead_time(d, change(1000)) == 600
    assert lead_time(replace(d, commit_time=None), change(1000)) is None
    assert lead_time(d, None) is None
    assert lead_time(replace(d, commit_time=5000.0), change(1000)) is None  # commit after


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
pick = st.sampled_from


@st.composite
def changes_strategy(draw: st.DrawFn) -> list[Change]:
    out = []
    for _ in range(draw(st.integers(0, 8))):
        out.append(
            change(
                draw(times),
                to_image=draw(pick([NEW, OLD, "docker.io/library/redis:7", None])),
                to_digest=draw(pick([None, NEW_DIGEST])),
                finished=draw(st.none() | times),
                cluster=draw(pick(["prod", "staging"])),
                container=draw(pick(["app", "sidecar"])),
                workload=draw(pick(["web", "api"])),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    changes_strategy(),
    times,
    st.floats(min_value=1, max_value=1e5),
    pick([None, "prod"]),
    pick([None, "app"]),
    st.none() | times,
    st.randoms(use_true_random=False),
)
def test_matching_properties(
    changes: list[Change],
    at: float,
    window: float,
    cluster: str | None,
    container: str | None,
    commit_time: float | None,
    rnd: random.Random,
) -> None:
    d = deployment(at, cluster=cluster, container=container, commit_time=commit_time)
    found = match_change(d, changes, window)
    shuffled = changes[:]
    rnd.shuffle(shuffled)
    assert match_change(d, shuffled, window) == found  # order does not matter
    eligible = [
        c
        for c in changes
        if abs(c.started - at) <= window
        and c.workload == "web"
        and (cluster is None or c.cluster == cluster)
        and (container is None or c.container == container)
        and same_version(d.image, d.digest, c)
    ]
    if not eligible:
        assert found is None
    else:
        assert found in eligible
        assert abs(found.started - at) == min(abs(c.started - at) for c in eligible)
    [m] = match_deployments([d], changes, window)
    assert m.change == found
    if found is None or commit_time is None:
        assert m.lead_time is None
    else:
        done = found.finished if found.finished is not None else found.started
        assert m.lead_time == (done - commit_time if done >= commit_time else None)


# ---------------------------------------------------------------------------- ledger


def test_ledger_stores_lists_and_filters(ledger_url: str, end: float) -> None:
    ledger, upgrade = build_ledger(ledger_url, end=end)
    with ledger:
        window = 3600.0
        a = event(
            id="a",
            cluster="prod",
            container="app",
            commit="abcdef1",
            commit_time=str(upgrade.started - 600),
            deployed_at=str(upgrade.started - 60),
        )
        b = event(id="b", workload="pay/api", image="redis:7", deployed_at=str(end - 2 * HOUR))
        c = event(id="c", cluster="staging", deployed_at=str(end - 30 * HOUR))
        for e in (a, b, c):
            m, created = record_deployment(ledger, e, window=window)
            assert created
        m, created = record_deployment(ledger, a, window=window)
        assert not created
        assert m.deployment == a
        assert m.change == upgrade
        expected_done = upgrade.finished if upgrade.finished is not None else upgrade.started
        assert m.lead_time == pytest.approx(expected_done - (upgrade.started - 600))
        assert [d.id for d in ledger.deployments()] == ["c", "a", "b"]
        assert ledger.deployments()[1] == a  # round trip, every field
        assert [d.id for d in ledger.deployments(cluster="prod")] == ["a", "b"]  # b: no cluster
        assert [d.id for d in ledger.deployments(namespace_regex="sh.p")] == ["c", "a"]
        assert [d.id for d in ledger.deployments(workload="api")] == ["b"]
        assert [d.id for d in ledger.deployments(workload="pay/api")] == ["b"]
        assert [d.id for d in ledger.deployments(workload="Deployment/web")] == ["c", "a"]
        assert [d.id for d in ledger.deployments(workload="prod/shop/Deployment/web")] == ["a"]
        assert [d.id for d in ledger.deployments(workload="staging/shop/X/web")] == ["c"]
        assert [d.id for d in ledger.deployments(workload="other/web")] == []
        assert [d.id for d in ledger.deployments(start=end - 3 * HOUR)] == ["b"]
        assert [d.id for d in ledger.deployments(end=end - 24 * HOUR)] == ["c"]
        with pytest.raises(DeploymentConflict):
            record_deployment(ledger, replace(a, image=OLD), window=window)
        # A retry may resolve its default time anew: still the same event.
        again, created = record_deployment(ledger, replace(a, deployed_at=end), window=window)
        assert not created
        assert again.deployment.deployed_at == a.deployed_at


@pytest.mark.parametrize("value", [hostile.PAYLOAD, hostile.WORKLOAD, hostile.IMAGE_NEW, "é"])
def test_ledger_keeps_any_text(ledger_url: str, value: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        d = deployment(1000.0, cluster=value, pipeline_url=value, workload=value, image=value)
        stored, created = ledger.record_deployment(d)
        assert created
        assert stored == d
        assert ledger.deployments() == [d]
        if "/" not in value:  # a "/" would make the filter value another --workload form
            assert ledger.deployments(workload=value) == [d]
        with pytest.raises(InputError, match="NUL"):
            ledger.record_deployment(replace(d, id="x", cluster="a\x00b"))


V1_CHANGE_COLUMNS = (
    *("cluster", "namespace", "workload_kind", "workload", "container"),
    *("from_image", "from_digest", "to_image", "to_digest", "kind", "started", "finished"),
)


def test_migration_from_v1_keeps_everything(ledger_url: str, end: float) -> None:
    v1_steps = MIGRATIONS[:1]
    with Ledger.open(ledger_url, migrations=v1_steps) as v1:
        assert v1.schema_version == 1
        start = end - 10 * HOUR
        spans = [
            Span("prod", "shop", "Deployment", "web", f"web-{i}", "app", OLD, None,
                 start + i * 60, end)
            for i in range(20)
        ]  # fmt: skip
        v1.merge_spans(spans, sync_key="k", synced_from=start, synced_until=end)
        recorded = change(start + 60, finished=start + 120)
        # Written as v1 stored it: today's change rows carry columns v1 does not have.
        row = {k: v for k, v in R.change_row(recorded).items() if k in V1_CHANGE_COLUMNS}
        with v1.engine.begin() as conn:
            conn.execute(insert(S.changes).values(**row))
        before = (v1.spans(), v1.sync_state("k"), v1.stats())
        with v1.engine.connect() as conn:
            assert "deployments" not in inspect(conn).get_table_names()
    with Ledger.open(ledger_url) as v2:
        assert v2.schema_version == SCHEMA_VERSION
        assert (v2.spans(), v2.sync_state("k"), v2.stats()) == before
        assert v2.changes() == [recorded]
        with v2.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            meta: dict[str, str] = dict(conn.execute(text("SELECT key, value FROM meta")).all())
        assert tables == set(S.TABLES)
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        assert v2.record_deployment(deployment(start))[1]
    with Ledger.open(ledger_url) as again:  # nothing is migrated twice
        assert [d.id for d in again.deployments()] == ["e1"]


# ---------------------------------------------------------------------------- API in-process


class Api:
    """The app over a ledger file, called through httpx's ASGI transport."""

    def __init__(self, path: Path, **flags: Any) -> None:
        self.settings = settings_mod.load({"ledger": str(path), **flags}, environ={})
        self.ledger = Ledger.open(path, create=False)
        self.app = create_app(self.settings, self.ledger)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(call())

    def post(self, body: Any, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        if "content" not in kwargs:
            kwargs["content"] = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return self.request("POST", "/api/v1/deployments", headers=headers, **kwargs)

    def close(self) -> None:
        self.ledger.close()


@pytest.fixture
def small(tmp_path: Path, end: float) -> tuple[Path, Change]:
    path = tmp_path / "small.db"
    ledger, upgrade = build_ledger(path, end=end)
    ledger.close()
    return path, upgrade


@pytest.fixture
def api(small: tuple[Path, Change]) -> Iterator[Api]:
    client = Api(small[0], api_token=TOKEN)
    yield client
    client.close()


def assert_error(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "hint"}
    assert isinstance(body["error"], str)
    for needle in needles:
        assert needle in body["error"], (needle, body)
    return body  # type: ignore[no-any-return]


def test_post_records_and_matches(api: Api, small: tuple[Path, Change]) -> None:
    upgrade = small[1]
    body = {
        "id": "run-7",
        "cluster": "prod",
        "namespace": "shop",
        "workload": "web",
        "container": "app",
        "image": "nginx:1.26",
        "commit": "0123abcd",
        "commit_time": format_time(upgrade.started - 1800),
        "pipeline_url": "https://ci.example/run/7",
        "deployed_at": format_time(upgrade.started - 90),
    }
    created = api.post(body)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["matched_change"] == record(upgrade)
    done = upgrade.finished if upgrade.finished is not None else upgrade.started
    assert answer["lead_time_seconds"] == pytest.approx(done - upgrade.started + 1800)
    assert {k: answer[k] for k in body if k != "image"} == {
        k: body[k] for k in body if k != "image"
    }
    assert answer["image"] == NEW
    assert answer["digest"] is None
    retried = api.post(body)
    assert retried.status_code == 200
    assert retried.json() == answer
    assert_error(api.post(body | {"image": "nginx:1.27"}), 409, "run-7")

    listed = api.request("GET", "/api/v1/deployments", params={"since": "2d"}).json()
    assert listed == [answer]
    for params, ids in [
        ({"workload": "prod/shop/Deployment/web"}, ["run-7"]),
        ({"workload": "api"}, []),
        ({"namespace": "shop"}, ["run-7"]),
        ({"namespace": "sh"}, []),
        ({"cluster": "staging"}, []),
        ({"from": format_time(upgrade.started), "to": "now"}, []),
        ({"since": "1h", "to": format_time(upgrade.started)}, ["run-7"]),
    ]:
        found = api.request("GET", "/api/v1/deployments", params=params).json()
        assert [d["id"] for d in found] == ids, params


def test_unmatched_event_lists_nulls(api: Api) -> None:
    answer = api.post({"workload": "shop/web", "image": "nginx:9.9"}).json()
    assert answer["matched_change"] is None
    assert answer["lead_time_seconds"] is None
    assert answer["deployed_at"] == answer["received_at"]


def test_token_is_required(small: tuple[Path, Change]) -> None:
    unset = Api(small[0])
    try:
        body = assert_error(unset.post({"workload": "shop/web", "image": "nginx"}), 403)
        assert "IMAGETRAIL_API_TOKEN" in body["hint"]
    finally:
        unset.close()
    api = Api(small[0], api_token=TOKEN)
    try:
        good = {"workload": "shop/web", "image": "nginx"}
        for headers in [
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
            {"Authorization": "Bearer"},
        ]:
            response = api.post(good, token=None, headers=headers)
            assert_error(response, 401, "token")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text
        assert api.post(good, token=None, headers={"Authorization": f"bearer {TOKEN}"}).is_success
        assert api.request("GET", "/api/v1/deployments").status_code == 200  # reads are open
        assert api.ledger.deployments()  # the one accepted POST
    finally:
        api.close()


def test_the_token_never_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.post({"workload": "shop/web", "image": "nginx"})
    api.post({"workload": "shop/web", "image": "nginx"}, token=TOKEN + "-wrong")
    api.post({"workload": "shop/web", "image": "Bad"})
    assert caplog.records  # something was logged, and none of it is the token
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS)
def test_api_rejects_bad_fields_with_422(api: Api, fields: dict[str, Any], message: str) -> None:
    body = {"workload": "shop/web", "image": "nginx:1.26"} | fields
    body = {k: v for k, v in body.items() if v is not None}
    assert_error(api.post(body), 422, message.split(":")[0])
    assert api.ledger.deployments() == []


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["namespace", "workload", "image", "pipeline_url"])
def test_api_rejects_hostile_strings(api: Api, field: str, value: str) -> None:
    body = {"namespace": "shop", "workload": "web", "image": "nginx:1.26", field: value}
    response = api.post(body)
    error = assert_error(response, 422, f"{field}: ")
    assert "<img" not in response.text or "\\u003c" in response.text or error
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("content", "content_type", "status", "needle"),
    [
        (b"{", "application/json", 400, "not JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'"text"', "application/json", 400, "JSON object"),
        (b"\xff\xfe", "application/json", 400, "UTF-8"),
        (b'{"image": "nginx", "image": "x", "workload": "shop/web"}', "application/json", 400,
         "twice"),
        (b'{"workload": "shop/web", "image": "nginx", "deployed_at": NaN}', "application/json",
         400, "NaN"),
        (b'{"workload": "shop/web", "image": "nginx"}', "text/plain", 415, "application/json"),
        (b'{"workload": "shop/web", "image": "nginx"}', "application/x-www-form-urlencoded",
         415, "application/json"),
        (b'{"workload": "shop/web", "image": "nginx"}', "", 415, "application/json"),
        (b"", "application/json", 400, "not JSON"),
    ],
)  # fmt: skip
def test_api_rejects_bodies_that_are_not_an_event(
    api: Api, content: bytes, content_type: str, status: int, needle: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(api.post(None, content=content, headers=headers), status, needle)
    assert api.ledger.deployments() == []


def test_api_accepts_json_with_a_charset(api: Api) -> None:
    body = json.dumps({"workload": "shop/web", "image": "nginx"}).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert api.post(None, content=body, headers=headers).status_code == 201


def test_oversized_bodies_are_refused_before_parsing(api: Api) -> None:
    big = {"workload": "shop/web", "image": "nginx", "pipeline_url": "https://x/" + "a" * MAX_BODY}
    assert_error(api.post(big), 413, str(MAX_BODY))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        yield b'{"workload": "shop/web", "image": "nginx", "cluster": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"a" * 1024
        yield b'"}'

    assert_error(api.post(None, content=chunks(), headers={"Content-Type": "application/json"}),
                 413)  # fmt: skip
    assert api.ledger.deployments() == []


def test_openapi_documents_the_endpoints(api: Api) -> None:
    spec = api.request("GET", "/openapi.json").json()
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/deployments"])


# ---------------------------------------------------------------------------- CLI, local ledger


def test_cli_records_into_the_local_ledger_and_lists(small: tuple[Path, Change]) -> None:
    path, upgrade = small
    env = {"IMAGETRAIL_LEDGER": str(path)}
    run = invoke(
        ["deploy", "record", "--workload", "shop/web", "--image", "nginx:1.26", "--cluster",
         "prod", "--commit", "abcdef12", "--commit-time", format_time(upgrade.started - 60),
         "--deployed-at", format_time(upgrade.started), "--id", "cli-1", "--format", "json"],
        env,
    )  # fmt: skip
    [row] = run.json()
    assert row["matched_change"] == record(upgrade)
    listed = invoke(["deploy", "list", "--since", "2d", "--format", "json"], env).json()
    assert listed == [row]
    rows = invoke(["deploy", "list", "--since", "2d", "--format", "csv"], env).csv()
    assert rows[0]["id"] == "cli-1"
    assert rows[0]["matched_change_kind"] == "upgrade"
    table = invoke(["deploy", "list", "--since", "2d"], env)
    assert "upgrade at" in table.out
    assert "shop/web" in table.out
    assert_one_error(
        invoke(["deploy", "record", "--workload", "web", "--image", "nginx"], env), 2, "namespace"
    )
    assert_one_error(
        invoke(["deploy", "record", "--workload", "shop/web", "--image", "nginx:bad tag"], env),
        2,
        "image: not an image reference",
    )


# ---------------------------------------------------------------------------- real serve


class Serve:
    """``imagetrail serve`` as a real process; stopped by its own pid."""

    def __init__(self, ledger: Path, cwd: Path, env: dict[str, str]) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
        self.log = cwd / "serve.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [BIN, "--verbose", "serve", "--ledger", str(ledger), "--port", "0"],
            cwd=cwd,
            env={**clean, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            for word in self.log.read_text().split():
                if word.startswith("http://127.0.0.1:"):
                    self.url = word.rstrip("/")
            if self.url:
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"serve printed no URL:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    return subprocess.run(
        [BIN, *args], env={**clean, "COLUMNS": "200", **env}, cwd=cwd, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_deploy_record_against_a_real_server(small: tuple[Path, Change], tmp_path: Path) -> None:
    path, upgrade = small
    server = Serve(path, tmp_path, {"IMAGETRAIL_API_TOKEN": TOKEN})
    try:
        env = {"IMAGETRAIL_SERVER_URL": server.url, "IMAGETRAIL_API_TOKEN": TOKEN,
               "IMAGETRAIL_LEDGER": str(tmp_path / "not-used.db")}  # fmt: skip
        args = ["deploy", "record", "--workload", "shop/web", "--image", f"nginx@{NEW_DIGEST}",
                "--container", "app", "--commit", "feedface", "--pipeline-url",
                "https://ci.example/p/1", "--commit-time", format_time(upgrade.started - 300),
                "--deployed-at", format_time(upgrade.started + 30), "--id", "e2e-1",
                "--format", "json"]  # fmt: skip
        done = cli(args, env, tmp_path)
        assert done.returncode == 0, done.stderr
        [row] = json.loads(done.stdout)
        assert row["matched_change"] == record(upgrade)  # by digest: the event has no tag
        assert row["digest"] == NEW_DIGEST
        again = cli(args, env, tmp_path)  # a retry is a no-op
        assert again.returncode == 0
        assert json.loads(again.stdout) == [row]
        assert not (tmp_path / "not-used.db").exists()
        listed = cli(["deploy", "list", "--since", "2d", "--format", "json"], env, tmp_path)
        assert json.loads(listed.stdout) == [row]
        api = httpx.get(server.url + "/api/v1/deployments", params={"since": "2d"}).json()
        assert api == [row]

        wrong = cli(args, env | {"IMAGETRAIL_API_TOKEN": "nope"}, tmp_path)
        assert wrong.returncode == 2
        assert wrong.stderr.startswith("error: the server refused the API token (401)")
        assert "nope" not in wrong.stderr
        bad = cli(["deploy", "record", "--workload", "shop/web", "--image", "nginx",
                   "--cluster", " padded "], env, tmp_path)  # fmt: skip
        assert bad.returncode == 2
        assert "cluster:" in bad.stderr
    finally:
        server.stop()
    log = server.log.read_text()
    assert server.url in log  # the log was written (with --verbose), without the token
    assert TOKEN not in log
    assert "nope" not in log
    gone_env = {"IMAGETRAIL_SERVER_URL": server.url, "IMAGETRAIL_API_TOKEN": TOKEN}
    gone = cli(
        ["deploy", "record", "--workload", "shop/web", "--image", "nginx"], gone_env, tmp_path
    )
    assert gone.returncode == 3
    assert gone.stderr.startswith("error: cannot reach the imagetrail server at")
    assert len(gone.stderr.strip().splitlines()) == 2
    assert TOKEN not in gone.stderr


@pytest.mark.slow
def test_server_without_a_token_refuses_the_cli(small: tuple[Path, Change], tmp_path: Path) -> None:
    server = Serve(small[0], tmp_path, {})
    try:
        env = {"IMAGETRAIL_SERVER_URL": server.url, "IMAGETRAIL_API_TOKEN": TOKEN}
        done = cli(["deploy", "record", "--workload", "shop/web", "--image", "nginx"], env,
                   tmp_path)  # fmt: skip
        assert done.returncode == 2
        assert "no API token is configured" in done.stderr
        assert "hint: set IMAGETRAIL_API_TOKEN" in done.stderr
    finally:
        server.stop()


# ---------------------------------------------------------------------------- the workload page


@pytest.mark.slow
def test_workload_page_draws_deployment_markers(tmp_path: Path, end: float) -> None:
    from playwright.sync_api import sync_playwright

    from browser import PageWatch, launch, new_context, open_page, screenshot, serve_ledger

    path = tmp_path / "page.db"
    ledger, upgrade = build_ledger(path, end=end)
    matched, _ = record_deployment(
        ledger,
        parse_deployment(
            {"workload": "shop/web", "image": "nginx:1.26", "container": "app",
             "commit": "c0ffee12", "commit_time": format_time(upgrade.started - 3600),
             "pipeline_url": "https://ci.example/run/9?a=1&b=2",
             "deployed_at": format_time(upgrade.started - 60), "id": "page-1"},
            now=end,
        ),
        window=3600,
    )  # fmt: skip
    # Stored directly (no API validation): what a page must survive if a ledger holds it.
    evil = deployment(
        end - 2 * HOUR, id="evil", image=hostile.IMAGE_NEW, commit=hostile.PAYLOAD,
        pipeline_url="javascript:alert(7)",
    )  # fmt: skip
    ledger.record_deployment(evil)
    ledger.close()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = new_context(browser)
            watch = PageWatch(context.new_page())
            page = watch.page
            with serve_ledger(path) as url:
                open_page(page, url + "/workload?since=2d&workload=prod/shop/Deployment/web")
                trace = page.evaluate(
                    """() => {
                        const gd = document.getElementById("timeline");
                        const t = gd.data.find((d) => d.name === "deployments");
                        return t && {x: t.x, text: t.customdata, symbol: t.marker.symbol};
                    }"""
                )
                assert trace is not None, "no deployment trace"
                assert trace["symbol"] == "triangle-down"
                assert matched.change == upgrade
                assert trace["x"] == [
                    format_time(upgrade.started - 60),
                    format_time(end - 2 * HOUR),
                ]
                assert "c0ffee12" in trace["text"][0]
                assert "upgrade" in trace["text"][0]
                assert "https://ci.example/run/9?a=1&amp;b=2" in trace["text"][0]
                assert "<img" not in trace["text"][1]
                assert "&lt;img" in trace["text"][1]
                assert "javascript" not in trace["text"][1]
                rows = page.locator("#deployments-table tbody tr")
                assert rows.count() == 2
                links = page.locator("#deployments-table a.pipeline-link")
                assert links.count() == 1
                assert links.get_attribute("href") == "https://ci.example/run/9?a=1&b=2"
                assert links.get_attribute("rel") == "noopener noreferrer"
                assert hostile.PAYLOAD in (rows.nth(0).text_content() or "")  # shown as text
                assert page.locator("#deployments-table img").count() == 0
                # Hover the hostile event's marker (the other one sits on the change's
                # diamond): its strings show in plotly's hover label as text.
                box = page.evaluate(
                    """() => {
                        const gd = document.getElementById("timeline");
                        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                        const t = gd.data.find((d) => d.name === "deployments");
                        const r = gd.querySelector(".main-svg").getBoundingClientRect();
                        return [r.left + xa._offset + xa.d2p(t.x[1]),
                                r.top + ya._offset + ya.d2p(t.y[1])];
                    }"""
                )
                page.mouse.move(box[0], box[1])
                hover = page.locator(".hoverlayer .hovertext")
                hover.first.wait_for()
                shown = hover.first.text_content() or ""
                assert f"commit {hostile.PAYLOAD}" in shown
                assert "pipeline" not in shown
                assert page.locator(".hoverlayer img").count() == 0
                screenshot(page, "workload-deployments")
            watch.check()
            context.close()
        finally:
            browser.close()
