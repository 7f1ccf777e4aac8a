"""Secrets never leave: planted secrets must appear in no output channel.

Distinct, recognisable secrets are planted through the environment (a ledger DSN password,
a Prometheus URL's ``user:password@``, a bearer token, a basic-auth password, the Grafana
and API tokens, the SMTP password, tokens in webhook and public URLs). A fake source answers
every request with an error that echoes the request's ``Authorization`` header and URL, as
some proxies and gateways do. Then every channel is read — ``imagetrail settings``, failing
``versions --source prometheus`` and ``sync`` runs with ``-v`` logs, and a real
``imagetrail serve --prometheus`` process (its log, ``/api/v1/status``, ``/metrics``, the
pages and the error bodies) — and none may hold a secret in clear, URL-encoded or base64
form (``base64(user:password)`` is what a basic-auth header carries). Unit tests check
:func:`imagetrail.redact.redact` pattern by pattern and that ordinary text stays as it is.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest

from imagetrail import redact
from imagetrail.errors import ImagetrailError, PartialAnswer, SourceUnavailable
from imagetrail.settings import load

# -- the planted secrets ----------------------------------------------------------------------
DB_PASSWORD = "DbPassw0rd"
URL_PASSWORD = "UrlPa55word"
BEARER = "BearerT0ken-8f3e2a"
BASIC_PASSWORD = "BasicPa55-7c1d"
GRAFANA_TOKEN = "glsa_GrafT0ken123"
GRAFANA_URL_PASSWORD = "GrafUrlPa55"
SMTP_PASSWORD = "SmtpPa55word"
API_TOKEN = "ApiT0ken-4d2b9"
WEBHOOK_TOKEN = "WebHookT0ken99"
PUBLIC_URL_TOKEN = "PublicT0ken77"

URL_USER, BASIC_USER = "bob", "alice"
SECRETS = (
    DB_PASSWORD,
    URL_PASSWORD,
    BEARER,
    BASIC_PASSWORD,
    GRAFANA_TOKEN,
    GRAFANA_URL_PASSWORD,
    SMTP_PASSWORD,
    API_TOKEN,
    WEBHOOK_TOKEN,
    PUBLIC_URL_TOKEN,
)
USERS = ("u", URL_USER, BASIC_USER, "admin", "mailer", "imagetrail")

# Settings every run gets (the source's own auth is added per case).
PLANTED_ENV = {
    "IMAGETRAIL_GRAFANA_URL": f"https://admin:{GRAFANA_URL_PASSWORD}@grafana.example",
    "IMAGETRAIL_GRAFANA_TOKEN": GRAFANA_TOKEN,
    "IMAGETRAIL_SMTP_USER": "mailer",
    "IMAGETRAIL_SMTP_PASSWORD": SMTP_PASSWORD,
    "IMAGETRAIL_API_TOKEN": API_TOKEN,
    "IMAGETRAIL_REPORT_NOTIFY": f"json://hooks.example/notify?token={WEBHOOK_TOKEN}",
    "IMAGETRAIL_PUBLIC_URL": f"https://imagetrail.example/?access_token={PUBLIC_URL_TOKEN}",
    "IMAGETRAIL_RETRIES": "0",
}


def forbidden_forms(secrets: tuple[str, ...] = SECRETS) -> dict[str, str]:
    """Every form in which a secret must not show: clear, URL-encoded, base64 alone and
    base64 of ``user:secret`` for every planted user name."""
    forms: dict[str, str] = {}
    for secret in secrets:
        forms[secret] = secret
        forms.setdefault(quote(secret, safe=""), f"{secret} url-encoded")
        forms.setdefault(quote_plus(secret), f"{secret} url-encoded")
        forms[base64.b64encode(secret.encode()).decode()] = f"{secret} base64"
        for user in USERS:
            pair = base64.b64encode(f"{user}:{secret}".encode()).decode()
            forms[pair] = f"base64({user}:{secret})"
    return forms


def assert_clean(channel: str, text: str, secrets: tuple[str, ...] = SECRETS) -> None:
    leaked = sorted({what for form, what in forbidden_forms(secrets).items() if form in text})
    assert not leaked, f"{channel} leaks {leaked}:\n{text[-4000:]}"


def _source_auth(mode: str, port: int) -> tuple[str, dict[str, str]]:
    """The Prometheus URL and environment for one way of authenticating to the source."""
    if mode == "url":
        return f"http://{URL_USER}:{URL_PASSWORD}@127.0.0.1:{port}", {}
    url = f"http://127.0.0.1:{port}"
    if mode == "basic":
        return url, {
            "IMAGETRAIL_BASIC_AUTH_USER": BASIC_USER,
            "IMAGETRAIL_BASIC_AUTH_PASSWORD": BASIC_PASSWORD,
        }
    return url, {"IMAGETRAIL_BEARER_TOKEN": BEARER}


# -- a source that echoes the request in its error text ---------------------------------------
class EchoSource:
    """Answers every request with a Prometheus-shaped error whose text quotes the request's
    ``Authorization`` header (whole and its credentials alone) and its URL."""

    def __init__(self, status: int = 400, error_type: str = "bad_data") -> None:
        self.status, self.error_type = status, error_type
        self.seen_auth: list[str] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                auth = self.headers.get("Authorization", "")
                source.seen_auth.append(auth)
                credentials = auth.split(" ", 1)[-1]
                error = (
                    f"access denied: Authorization: {auth} (credentials {credentials}) "
                    f"for {self.command} {self.path} {body[:200]}"
                )
                payload = json.dumps(
                    {"status": "error", "errorType": source.error_type, "error": error}
                ).encode()
                self.send_response(source.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._httpd.server_address[1]
        return port

    def __enter__(self) -> EchoSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


# -- running the real command -----------------------------------------------------------------
def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``imagetrail ARGS`` as a process (``python -m imagetrail``: the code on sys.path)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
    return subprocess.run(
        [sys.executable, "-m", "imagetrail", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "250", "XDG_CACHE_HOME": str(cwd / "cache"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_command_shows_no_secret(tmp_path: Path) -> None:
    env = {
        **PLANTED_ENV,
        "IMAGETRAIL_LEDGER": f"postgresql+psycopg://u:{DB_PASSWORD}@db.example:5432/imagetrail",
        "IMAGETRAIL_PROMETHEUS_URL": f"http://{URL_USER}:{URL_PASSWORD}@prom.example:9090",
        "IMAGETRAIL_BEARER_TOKEN": BEARER,
        "IMAGETRAIL_BASIC_AUTH_USER": BASIC_USER,
        "IMAGETRAIL_BASIC_AUTH_PASSWORD": BASIC_PASSWORD,
    }
    run = run_cli(["settings"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_clean("`imagetrail settings`", run.stdout + run.stderr)
    # Still useful: who and where stay visible.
    assert "postgresql+psycopg://u:***@db.example:5432/imagetrail" in run.stdout
    assert f"http://{URL_USER}:***@prom.example:9090" in run.stdout
    assert "https://admin:***@grafana.example" in run.stdout
    assert "access_token=***" in run.stdout


def test_settings_from_a_config_file_show_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "imagetrail.yaml"
    config.write_text(
        f"ledger: postgresql+psycopg://u:{DB_PASSWORD}@db.example/x\n"
        f"prometheus_url: https://{URL_USER}:{URL_PASSWORD}@prom.example\n"
        f"smtp_password: {SMTP_PASSWORD}\n"
        f"report_notify: json://hooks.example/notify?token={WEBHOOK_TOKEN}\n"
    )
    run = run_cli(["settings"], {}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_clean("`imagetrail settings` (config file)", run.stdout + run.stderr)


@pytest.mark.parametrize("auth", ["url", "basic", "bearer"])
@pytest.mark.parametrize(
    ("status", "error_type"), [(400, "bad_data"), (401, "unauthorized"), (503, "unavailable")]
)
def test_a_failing_live_query_shows_no_secret(
    tmp_path: Path, auth: str, status: int, error_type: str
) -> None:
    with EchoSource(status, error_type) as source:
        url, env = _source_auth(auth, source.port)
        run = run_cli(
            ["-v", "versions", "--source", "prometheus", "--prometheus", url],
            {**PLANTED_ENV, **env},
            tmp_path,
        )
    assert run.returncode != 0
    assert source.seen_auth, "the source saw no request"
    assert all(source.seen_auth), "the source saw no credentials"
    assert "error:" in run.stderr
    assert_clean("versions --source prometheus", run.stdout + run.stderr)
    if status != 503:  # the 4xx error text is shown: the echo arrives, masked
        assert "Authorization: ***" in run.stderr or "Authorization: B" in run.stderr


@pytest.mark.parametrize("auth", ["url", "basic", "bearer"])
def test_a_failing_sync_shows_no_secret(tmp_path: Path, auth: str) -> None:
    with EchoSource(400, "bad_data") as source:
        url, env = _source_auth(auth, source.port)
        run = run_cli(
            ["-v", "sync", "--prometheus", url, "--ledger", str(tmp_path / "ledger.db")],
            {**PLANTED_ENV, **env},
            tmp_path,
        )
    assert run.returncode != 0
    assert source.seen_auth
    assert all(source.seen_auth)
    assert "access denied" in run.stderr, run.stderr
    assert_clean("sync", run.stdout + run.stderr)


# -- the real server --------------------------------------------------------------------------
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")


class Served:
    """A running ``imagetrail serve`` with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")}
        self.log = cwd / "serve.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imagetrail", *args],
            cwd=cwd,
            env={**clean, "XDG_CACHE_HOME": str(cwd / "cache"), **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = URL_LINE.search(self.log.read_text())
            if found:
                self.url = found.group(1).rstrip("/")
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"serve printed no URL:\n{self.log.read_text()}")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["url", "bearer"])
def test_serve_shows_no_secret(tmp_path: Path, pg_database_url: str, auth: str) -> None:
    db_password = urlsplit(pg_database_url).password or ""
    secrets = (*SECRETS, db_password)
    with EchoSource(400, "bad_data") as source:
        url, env = _source_auth(auth, source.port)
        served = Served(
            ["-v", "serve", "--prometheus", url, "--ledger", pg_database_url, "--port", "0"],
            {**PLANTED_ENV, **env, "IMAGETRAIL_FOLLOW_INTERVAL": "1s"},
            tmp_path,
        )
        try:
            deadline = time.monotonic() + 60
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                status = served.get("/api/v1/status").json()
                if status["sync"]["failures"] >= 1:
                    break
                time.sleep(0.2)
            assert status["sync"]["last_error"], status
            assert "access denied" in status["sync"]["last_error"]
            answers = {"/api/v1/status": json.dumps(status)}
            paths = [
                "/metrics",
                "/",
                "/versions",
                "/workload",
                "/changes",
                "/capacity",
                "/docs",
                "/openapi.json",
                "/healthz",
                "/readyz",
                "/api/v1/versions?source=prometheus",
                "/api/v1/changes?source=prometheus&since=1h",
                "/api/v1/nothing-here",
            ]
            for path in paths:
                response = served.get(path)
                answers[path] = f"{response.status_code} {response.headers} {response.text}"
            live_error = served.get("/api/v1/versions?source=prometheus")
            assert live_error.status_code == 502, live_error.text
            assert "access denied" in live_error.json()["error"]
        finally:
            log = served.stop()
    assert source.seen_auth
    assert all(source.seen_auth)
    assert "sync failed" in log, log
    for channel, text in answers.items():
        assert_clean(channel, text, secrets)
    assert_clean("serve's log", log, secrets)
    assert status["ledger"].startswith("postgresql+psycopg://imagetrail:***@")


# -- the channels' mechanics, in-process --------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    redact.forget_all()
    yield
    redact.forget_all()


def test_errors_redact_message_hint_and_warnings() -> None:
    redact.register(BEARER)
    pair = redact.basic_credentials("bob", URL_PASSWORD)
    exc = ImagetrailError(
        f"http://bob:{URL_PASSWORD}@prom/api/v1/query: Authorization: Basic {pair}",
        hint=f"the token {BEARER} was refused",
    )
    for text in (exc.message, exc.hint or "", str(exc), repr(exc), *map(str, exc.args)):
        assert_clean("an error", text)
    assert exc.message == "http://bob:***@prom/api/v1/query: Authorization: Basic ***"
    partial = PartialAnswer("partial", warnings=(f"store said Bearer {BEARER}",))
    assert partial.warnings == ("store said Bearer ***",)
    assert isinstance(SourceUnavailable(f"x?token={WEBHOOK_TOKEN}").message, str)
    assert WEBHOOK_TOKEN not in SourceUnavailable(f"x?token={WEBHOOK_TOKEN}").message


def test_loading_settings_registers_their_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "imagetrail.yaml"
    empty.write_text("")
    settings = load(
        {},
        environ={
            **PLANTED_ENV,
            "IMAGETRAIL_PROMETHEUS_URL": f"http://{URL_USER}:{URL_PASSWORD}@prom.example",
            "IMAGETRAIL_LEDGER": f"postgresql+psycopg://u:{DB_PASSWORD}@db/x",
            "IMAGETRAIL_BASIC_AUTH_USER": BASIC_USER,
            "IMAGETRAIL_BASIC_AUTH_PASSWORD": BASIC_PASSWORD,
            "IMAGETRAIL_BEARER_TOKEN": BEARER,
        },
        config_path=empty,
    )
    # Planted without any pattern around them: only the registry can catch these.
    bare = (
        " ".join(SECRETS)
        + " "
        + " ".join(
            redact.basic_credentials(user, secret)
            for user, secret in ((URL_USER, URL_PASSWORD), (BASIC_USER, BASIC_PASSWORD))
        )
    )
    assert_clean("a redacted text", redact.redact(bare))
    assert_clean("Settings.redacted()", repr(settings.redacted()))
    shown = settings.redacted()
    assert shown["prometheus_url"] == f"http://{URL_USER}:***@prom.example"
    assert shown["ledger"] == "postgresql+psycopg://u:***@db/x"
    assert shown["grafana_token"] == "***"
    assert shown["signal"] == "auto"


def test_short_values_are_not_registered_and_short_secrets_mask_whole_words() -> None:
    redact.register("abc", "", None, "pass", "hunter22")
    assert "abc" not in redact.registered()
    assert redact.redact("abc passport pass password") == "abc passport *** password"
    assert redact.redact("xhunter22x") == "x***x"  # 8+ characters: masked anywhere


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"postgresql+psycopg://u:{DB_PASSWORD}@db:5432/x",
            "postgresql+psycopg://u:***@db:5432/x",
        ),
        ("http://bob:pa:ss@host/p?q=1", "http://bob:***@host/p?q=1"),
        ("smtp://me:p@ss@mail.example:587", "smtp://me:***@mail.example:587"),
        ("https://:tok3n@host", "https://:***@host"),
        ("Authorization: Basic Ym9iOlVybFBhNTV3b3Jk", "Authorization: Basic ***"),
        (
            "denied: Authorization: Basic Ym9iOlVybFBhNTV3b3Jk for POST /api/v1/query",
            "denied: Authorization: Basic *** for POST /api/v1/query",
        ),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=AK/1, Signature=ab",
            "Authorization: AWS4-HMAC-SHA256 ***",
        ),
        ("proxy-authorization: Bearer abc.def", "proxy-authorization: Bearer ***"),
        ("Authorization: Negotiate YIIabc==", "Authorization: Negotiate ***"),
        ("Authorization: s3cr3t", "Authorization: ***"),
        ("{'Authorization': 'Bearer abc'}", "{'Authorization': 'Bearer ***'}"),
        ('{"authorization":"Basic Ym9iOng="}', '{"authorization":"Basic ***"}'),
        (
            "map[Authorization:[Basic Ym9iOng=] Accept:[*/*]]",
            "map[Authorization:[Basic ***] Accept:[*/*]]",
        ),
        ("Cookie: session=abc123", "Cookie: ***"),
        ("X-Api-Key: k-123456", "X-Api-Key: ***"),
        ("bad credentials Basic Ym9iOlVybFBhNTV3b3Jk here", "bad credentials Basic *** here"),
        ("got Bearer eyJhbGciOi.eyJzdWIi.sig here", "got Bearer *** here"),
        ("https://h/x?token=abc&a=1", "https://h/x?token=***&a=1"),
        ("https://h/x?access_token=abc", "https://h/x?access_token=***"),
        ("https://h/x?a=1&password=abc#f", "https://h/x?a=1&password=***#f"),
        ("https://h/x?passwd=abc&secret=def", "https://h/x?passwd=***&secret=***"),
        (
            "https://h/x?api_key=abc&apikey=def&key=ghi",
            "https://h/x?api_key=***&apikey=***&key=***",
        ),
        ("https://h/x?sig=abc&signature=def", "https://h/x?sig=***&signature=***"),
        (
            "https://s3/b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab12&X-Amz-Expires=60",
            "https://s3/b/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60",
        ),
        ("host=db user=u password=abc dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password='a b' user=u", "host=db password=*** user=u"),
        (
            "postgresql://db/x?sslpassword=abc&sslmode=require",
            "postgresql://db/x?sslpassword=***&sslmode=require",
        ),
        ('{"password": "abc", "user": "u"}', '{"password": "***", "user": "u"}'),
        ('{"client_secret":"abc"}', '{"client_secret":"***"}'),
    ],
)
def test_redact_masks(text: str, expected: str) -> None:
    assert redact.redact(text) == expected
    assert redact.redact(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "nginx@sha256:3f1c0a6d2b8e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a",
        "registry.example:5000/team/app:1.2.3@sha256:abcdef0123456789",
        "ssh git@github.com:org/repo and mail bob@example.com",
        "http://bob@prom.example:9090/api/v1/query",
        "http://prom.example:9090/api/v1/query_range?query=up&start=1&end=2&step=30",
        'sum by (key) (rate(http_requests_total{key="abc", token=~"x.*", sig!="y"}[5m]))',
        "kube_pod_container_info{image_spec=~'.*:1.2'} > 0",
        "use either a bearer token or basic auth, not both",
        "Basic authentication failed; a Bearer token is required",
        "the Authorization header was missing",
        "exit code=3, keys=4, monkey=5",
        "2024-05-01T12:00:00Z deployment/api: 0/3 pods ran (ImagePullBackOff)",
        "",
    ],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert redact.redact(text) == text


def test_redact_url_and_strip_userinfo() -> None:
    url = f"https://bob:{URL_PASSWORD}@prom.example:9090/base?token=abc&x=1"
    assert redact.redact_url(url) == "https://bob:***@prom.example:9090/base?token=***&x=1"
    assert redact.strip_userinfo(url) == "https://prom.example:9090/base?token=abc&x=1"
    assert redact.strip_userinfo("http://prom:9090") == "http://prom:9090"
    assert redact.url_secrets(url) == (URL_PASSWORD, "abc")
    assert redact.url_secrets("/var/lib/ledger.db") == ()


def test_url_encoded_passwords_are_registered_in_both_forms() -> None:
    redact.register_url("http://bob:p%40ss%2Fword@host")
    assert redact.redact("p@ss/word and p%40ss%2Fword") == "*** and ***"
    assert redact.redact(redact.basic_credentials("bob", "p@ss/word")) == "***"


def _record_text(logger: logging.Logger, stream: io.StringIO) -> str:
    try:
        raise RuntimeError(
            f"boom with Authorization: Basic {redact.basic_credentials('bob', URL_PASSWORD)}"
        )
    except RuntimeError:
        logger.warning("GET %s failed: %s", f"http://bob:{URL_PASSWORD}@h/", BEARER, exc_info=True)
    return stream.getvalue()


def test_the_logging_filter_redacts_message_arguments_and_exceptions() -> None:
    redact.register(BEARER)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.RedactingFilter())
    logger = logging.getLogger("imagetrail.test_secrets.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        text = _record_text(logger, stream)
    finally:
        logger.removeHandler(handler)
    assert "GET http://bob:***@h/ failed: ***" in text
    assert "boom with Authorization: Basic ***" in text
    assert_clean("a log record", text)


def test_installed_logging_covers_uvicorns_own_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn configures its own handlers when it starts; records there are redacted too."""
    import uvicorn

    redact.register(BEARER)
    previous = logging.getLogRecordFactory()
    try:
        redact.install_logging()
        redact.install_logging()  # idempotent
        uvicorn.Config(lambda scope: None, log_level="warning")  # configures uvicorn's logging
        logger = logging.getLogger("uvicorn.error")
        try:
            raise RuntimeError(f"Bearer {BEARER} rejected")
        except RuntimeError:
            logger.error("Exception in ASGI application %s", f"?token={BEARER}", exc_info=True)
    finally:
        logging.setLogRecordFactory(previous)
    err = capsys.readouterr().err
    assert "Exception in ASGI application ?token=***" in err
    assert "RuntimeError: Bearer *** rejected" in err
    assert_clean("uvicorn's log", err)
