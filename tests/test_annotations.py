"""Detected changes pushed to Grafana as annotations, against a local server that implements
Grafana's annotations HTTP API as documented and checks every request against it.

Checked against grafana/grafana docs/sources/developers/http_api/annotations.md (the
"Annotations HTTP API" page, Grafana 10-12):

* ``POST /api/annotations``, JSON body; required ``text`` (string); optional ``dashboardUID``
  (string), ``panelId``, ``time`` and ``timeEnd`` ("epoch numbers in millisecond
  resolution"), ``tags`` (array of strings). Answer ``{"message": "Annotation added", "id": N}``.
* ``GET /api/annotations`` with ``from``/``to`` (epoch ms), ``limit`` (default 100), ``type``
  (``alert`` | ``annotation``), ``dashboardUID``, and ``tags`` repeated for an AND filter;
  answers a JSON array of annotations with ``id``, ``time``, ``timeEnd``, ``text``, ``tags``.
* Authentication here: ``Authorization: Bearer <service-account token>``; a bad token gets 401
  ``{"message": "Unauthorized"}`` as Grafana answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import hostile
from clirun import assert_one_error, invoke
from imagetrail.errors import ConfigError, GrafanaError
from imagetrail.grafana.annotate import (
    GrafanaTarget,
    annotation_for,
    change_id,
    push_annotations,
)
from imagetrail.ledger import Ledger
from imagetrail.model import Change, ChangeKind, Span
from imagetrail.service.sync import rederive_changes
from servers import free_port

TOKEN = "glsa_testTOKEN_0123456789"
POST_FIELDS = {"dashboardUID": str, "panelId": int, "time": int, "timeEnd": int, "tags": list,
               "text": str, "dashboardId": int}  # fmt: skip
GET_PARAMS = {"from", "to", "limit", "alertId", "dashboardId", "dashboardUID", "panelId",
              "userId", "type", "tags"}  # fmt: skip


class FakeGrafana:
    """Grafana's annotations API in memory; ``problems`` lists every request that broke it."""

    def __init__(self, *, status: int | None = None) -> None:
        self.annotations: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.status = status  # answer every request with this error status
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"message": "Unauthorized"})
                    return False
                return True

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

            def do_PUT(self) -> None:
                fake.handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, h: Any, method: str) -> None:
        parts = urlsplit(h.path)
        with self.lock:
            self.requests.append((method, h.path))
        if parts.path != "/api/annotations" or method not in ("GET", "POST"):
            self.problems.append(f"{method} {parts.path}: not in the annotations API")
            h._send(404, {"message": "Not found"})
            return
        if not h._auth():
            return
        if self.status is not None:
            h._send(self.status, {"message": "Internal Server Error"})
            return
        if method == "GET":
            self.find(h, parse_qs(parts.query, keep_blank_values=True))
        else:
            self.create(h)

    def find(self, h: Any, query: dict[str, list[str]]) -> None:
        for key, values in query.items():
            if key not in GET_PARAMS:
                self.problems.append(f"GET: unknown parameter {key!r}")
            if key != "tags" and len(values) != 1:
                self.problems.append(f"GET: {key} given {len(values)} times")
        for key in ("from", "to", "limit"):
            if key in query and not query[key][0].isdigit():
                self.problems.append(f"GET: {key}={query[key][0]!r} is not epoch ms / a number")
        if "type" in query and query["type"][0] not in ("alert", "annotation"):
            self.problems.append(f"GET: type={query['type'][0]!r}")
        tags = query.get("tags", [])
        start = int(query["from"][0]) if "from" in query else None
        end = int(query["to"][0]) if "to" in query else None
        limit = int(query["limit"][0]) if "limit" in query else 100
        uid = query.get("dashboardUID", [None])[0]
        found = []
        with self.lock:
            for a in sorted(self.annotations, key=lambda a: -a["time"]):
                if not all(t in a["tags"] for t in tags):
                    continue
                if uid is not None and a.get("dashboardUID") != uid:
                    continue
                a_end = a.get("timeEnd", a["time"])
                if (end is not None and a["time"] > end) or (start is not None and a_end < start):
                    continue
                found.append(a)
        h._send(200, found[:limit])

    def create(self, h: Any) -> None:
        if h.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self.problems.append(f"POST: content type {h.headers.get('Content-Type')!r}")
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        try:
            body = json.loads(raw)
        except ValueError:
            self.problems.append("POST: body is not JSON")
            h._send(400, {"message": "bad request data"})
            return
        if not isinstance(body, dict):
            self.problems.append("POST: body is not an object")
            h._send(400, {"message": "bad request data"})
            return
        for key, value in body.items():
            want = POST_FIELDS.get(key)
            if want is None:
                self.problems.append(f"POST: unknown field {key!r}")
            elif not isinstance(value, want) or isinstance(value, bool):
                self.problems.append(f"POST: {key} is {type(value).__name__}, not {want.__name__}")
        if not isinstance(body.get("text"), str):
            self.problems.append("POST: text (required) is missing")
        if not all(isinstance(t, str) for t in body.get("tags", [])):
            self.problems.append("POST: tags must be strings")
        for key in ("time", "timeEnd"):
            # Milliseconds: a seconds value would sit in January 1970.
            if isinstance(body.get(key), int) and body[key] < 10**12:
                self.problems.append(f"POST: {key}={body[key]} is not epoch milliseconds")
        if "timeEnd" in body and body["timeEnd"] < body.get("time", 0):
            self.problems.append("POST: timeEnd before time")
        with self.lock:
            annotation = {"id": len(self.annotations) + 1, "tags": [], **body}
            self.annotations.append(annotation)
        h._send(200, {"message": "Annotation added", "id": annotation["id"]})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    yield server
    server.stop()
    assert not server.problems, server.problems


HOUR = 3600.0
END = 1_795_000_000.0


def make_change(i: int, *, finished: bool = True, **fields: Any) -> Change:
    started = END - (10 - i) * HOUR
    base = {
        "cluster": "prod", "namespace": "shop", "workload_kind": "Deployment",
        "workload": f"web{i}", "container": "app", "from_image": "docker.io/library/nginx:1.25",
        "from_digest": None,
        "to_image": "docker.io/library/nginx:1.26", "to_digest": None, "kind": ChangeKind.UPGRADE,
        "started": started, "finished": started + 90.5 if finished else None,
    }  # fmt: skip
    return Change(**(base | fields))


def target(g: FakeGrafana, **kw: Any) -> GrafanaTarget:
    return GrafanaTarget(g.url, TOKEN, **kw)


def test_push_twice_adds_each_change_once(grafana: FakeGrafana) -> None:
    changes = [make_change(i) for i in range(5)] + [make_change(5, finished=False)]
    first = push_annotations(changes, target(grafana))
    assert len(first.posted) == 6
    assert not first.skipped
    second = push_annotations(changes, target(grafana))
    assert not second.posted
    assert len(second.skipped) == 6
    assert len(grafana.annotations) == 6
    ids = sorted(t for a in grafana.annotations for t in a["tags"] if t.startswith("change:"))
    assert ids == sorted(f"change:{change_id(c)}" for c in changes)
    by_id = {a["tags"][-1]: a for a in grafana.annotations}
    unfinished = by_id[f"change:{change_id(changes[5])}"]
    assert "timeEnd" not in unfinished
    assert "dashboardUID" not in unfinished
    done = by_id[f"change:{change_id(changes[0])}"]
    assert (done["time"], done["timeEnd"]) == (
        round(changes[0].started * 1000),
        round(changes[0].finished * 1000),  # type: ignore[operator]
    )
    assert done["tags"][:4] == ["imagetrail", "upgrade", "namespace:shop", "workload:web0"]
    # A new change later: only it is added.
    third = push_annotations([*changes, make_change(7)], target(grafana))
    assert len(third.posted) == 1
    assert len(grafana.annotations) == 7


def test_the_change_id_ignores_the_rollout_end() -> None:
    a, b = make_change(1), make_change(1, finished=False)
    assert change_id(a) == change_id(b) != change_id(make_change(2))
    assert change_id(a) != change_id(make_change(1, to_digest="sha256:" + "a" * 64))


def test_dashboard_uid_only_when_set(grafana: FakeGrafana) -> None:
    push_annotations([make_change(1)], target(grafana, dashboard_uid="imagetrail-fleet"))
    assert grafana.annotations[0]["dashboardUID"] == "imagetrail-fleet"
    gets = [p for m, p in grafana.requests if m == "GET"]
    assert "dashboardUID=imagetrail-fleet" in gets[0]


def test_text_is_escaped_and_links_to_the_ui(grafana: FakeGrafana) -> None:
    evil = make_change(1, workload=hostile.WORKLOAD, to_image=hostile.IMAGE_NEW)
    push_annotations([evil], target(grafana), public_url="https://imagetrail.example/")
    text = grafana.annotations[0]["text"]
    assert "<script" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(2)" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert text.count("<a ") == 1
    assert 'href="https://imagetrail.example/workload?workload=prod%2Fshop%2FDeployment%2F' in text


def test_tags_are_cut_to_grafanas_column_size() -> None:
    long = make_change(1, workload="w" * 250)
    tags = annotation_for(long)["tags"]
    assert max(len(t) for t in tags) == 100


def test_dry_run_posts_nothing(grafana: FakeGrafana) -> None:
    result = push_annotations([make_change(1)], target(grafana), dry_run=True)
    assert len(result.posted) == 1
    assert result.dry_run
    assert grafana.annotations == []
    assert all(m == "GET" for m, _ in grafana.requests)
    offline = push_annotations([make_change(1)], None, dry_run=True)
    assert offline.posted == result.posted
    with pytest.raises(ConfigError, match="no Grafana URL"):
        push_annotations([make_change(1)], None)


def test_a_cut_off_list_falls_back_to_one_query_per_change(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagetrail.grafana import annotate

    changes = [make_change(i) for i in range(4)]
    push_annotations(changes[:3], target(grafana))
    monkeypatch.setattr(annotate, "LIST_LIMIT", 2)
    result = push_annotations(changes, target(grafana))
    assert len(result.posted) == 1
    assert len(result.skipped) == 3
    assert len(grafana.annotations) == 4


def test_wrong_token_is_a_clear_error(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaError) as info:
        push_annotations([make_change(1)], GrafanaTarget(grafana.url, "wrong-token"))
    assert info.value.message == "Grafana refused the token (401 Unauthorized): Unauthorized"
    assert "IMAGETRAIL_GRAFANA_TOKEN" in (info.value.hint or "")
    assert "wrong-token" not in info.value.message + (info.value.hint or "")
    assert grafana.annotations == []


@pytest.mark.parametrize("status", [403, 500, 503])
def test_grafana_errors_are_clear(status: int) -> None:
    server = FakeGrafana(status=status)
    try:
        with pytest.raises(GrafanaError) as info:
            push_annotations([make_change(1)], target(server))
    finally:
        server.stop()
    assert str(status) in info.value.message
    assert TOKEN not in info.value.message


def test_unreachable_grafana_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GrafanaError, match=f"^cannot reach Grafana at {url}/api/annotations"):
        push_annotations([make_change(1)], GrafanaTarget(url, TOKEN, timeout=5))


@pytest.mark.parametrize("bad", ["", "with space", "line\nbreak", "tök"])
def test_tokens_that_cannot_be_sent_are_refused_unshown(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        push_annotations([make_change(1)], GrafanaTarget("http://127.0.0.1:9", bad))
    assert (bad not in info.value.message) or not bad


# ---------------------------------------------------------------------------- the command


@pytest.fixture
def ledger_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ledger.db"
    end = 1_795_000_000.0
    spans = [
        Span("prod", "shop", "Deployment", "web", "a", "app", "docker.io/library/nginx:1.25",
             None, end - 20 * HOUR, end - 5 * HOUR + 60),
        Span("prod", "shop", "Deployment", "web", "b", "app", "docker.io/library/nginx:1.26",
             None, end - 5 * HOUR, end),
    ]  # fmt: skip
    with Ledger.open(path) as ledger:
        ledger.merge_spans(spans, sync_key="k", synced_from=end - 20 * HOUR, synced_until=end)
        rederive_changes(ledger, tolerance=60)
    return path


def test_annotate_command(grafana: FakeGrafana, ledger_path: Path) -> None:
    env = {"IMAGETRAIL_LEDGER": str(ledger_path), "IMAGETRAIL_GRAFANA_URL": grafana.url,
           "IMAGETRAIL_GRAFANA_TOKEN": TOKEN}  # fmt: skip
    window = ["--from", "1794900000", "--to", "1795000001"]
    dry = invoke(["annotate", *window, "--dry-run"], env)
    assert [b["tags"][1] for b in dry.json()] == ["upgrade"]
    assert grafana.annotations == []
    run = invoke(["annotate", *window], env)
    assert run.code == 0
    assert "posted 1 annotations; 0 changes already annotated" in run.err
    again = invoke(["annotate", *window], env)
    assert "posted 0 annotations; 1 changes already annotated" in again.err
    assert len(grafana.annotations) == 1
    assert TOKEN not in run.out + run.err + again.out + again.err
    wrong = invoke(["annotate", *window], env | {"IMAGETRAIL_GRAFANA_TOKEN": "nope"})
    line = assert_one_error(wrong, 3, "Grafana refused the token (401 Unauthorized)")
    assert "nope" not in line
    gone = invoke(["annotate", *window], env | {"IMAGETRAIL_GRAFANA_URL": "http://127.0.0.1:9"})
    assert_one_error(gone, 3, "cannot reach Grafana at http://127.0.0.1:9")
    no_token = invoke(["annotate", *window], env | {"IMAGETRAIL_GRAFANA_TOKEN": None})
    assert_one_error(no_token, 2, "no Grafana token")


# ---------------------------------------------------------------------------- serve's sync loop


def test_serve_pushes_new_changes_after_each_sync_pass(
    grafana: FakeGrafana, tmp_path: Path
) -> None:
    from imagetrail.service.query import QueryContext
    from imagetrail.settings import load
    from imagetrail.web.syncer import BackgroundSync

    now = time.time() // 60 * 60
    path = tmp_path / "recent.db"
    spans = [
        Span("prod", "shop", "Deployment", "web", "a", "app", "docker.io/library/nginx:1.25",
             None, now - 20 * HOUR, now - 5 * HOUR + 60),
        Span("prod", "shop", "Deployment", "web", "b", "app", "docker.io/library/nginx:1.26",
             None, now - 5 * HOUR, now),
    ]  # fmt: skip
    with Ledger.open(path) as ledger:
        ledger.merge_spans(spans, sync_key="k", synced_from=now - 20 * HOUR, synced_until=now)
        rederive_changes(ledger, tolerance=60)
    settings = {"ledger": str(path), "grafana_url": grafana.url, "grafana_token": TOKEN}
    syncer = BackgroundSync(QueryContext(load(settings, environ={})))
    syncer.after_pass()
    syncer.after_pass()  # a second pass adds nothing
    assert len(grafana.annotations) == 1
    assert grafana.annotations[0]["tags"][:2] == ["imagetrail", "upgrade"]
    assert syncer.status.annotations_posted == 1
    assert syncer.status.annotate_error is None

    down = BackgroundSync(
        QueryContext(load(settings | {"grafana_url": "http://127.0.0.1:9"}, environ={}))
    )
    down.after_pass()  # recorded, not raised: serving goes on
    assert down.status.annotate_error is not None
    assert "cannot reach Grafana" in down.status.annotate_error
    assert TOKEN not in down.status.annotate_error
