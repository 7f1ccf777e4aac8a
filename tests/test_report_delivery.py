"""Delivering the report to real servers on loopback: an aiosmtpd mail server (plain, with
login, with STARTTLS and a certificate made here) and an HTTP receiver for apprise's
``json://`` and Mattermost (``mmost://``) webhooks."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from clirun import invoke
from fakeserver import FakeServer, Reply
from imagetrail.errors import ConfigError
from imagetrail.report import DeliveryError, Report, SmtpConfig, make_report, notify, send_mail
from imagetrail.report.deliver import subject
from imagetrail.report.render import HEATMAP_CID
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.query import Query, QueryContext
from imagetrail.settings import load
from servers import free_port

USER, PASSWORD = "reporter", "s3cret-pa55word"
SENDER, RECIPIENTS = "imagetrail@example.test", ("ops@example.test", "sre@example.test")


@dataclass
class Mailbox:
    """aiosmtpd handler that keeps what it is sent."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def mail_server(**smtp_options: Any) -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    path = tmp_path_factory.mktemp("delivery") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    qc = QueryContext(load({"ledger": str(path), "public_url": "https://it.example/"}, environ={}))
    made = make_report(qc, Query())
    assert made.heatmap_png is not None
    return made


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (cert, key)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def config(port: int, **changes: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": SENDER,
        "recipients": RECIPIENTS,
    }
    return SmtpConfig(**{**values, **changes})


def check_message(msg: EmailMessage, report: Report) -> None:
    """multipart/alternative (text, multipart/related (html, png with the CID))."""
    assert msg.get_content_type() == "multipart/alternative"
    text, related = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert text.get_content().startswith("# imagetrail report ")
    assert related.get_content_type() == "multipart/related"
    html, png = list(related.iter_parts())
    assert html.get_content_type() == "text/html"
    body = html.get_content()
    assert f'src="cid:{HEATMAP_CID}"' in body
    assert "data:image" not in body
    assert "<script" not in body.lower()
    assert png.get_content_type() == "image/png"
    assert png["Content-ID"] == f"<{HEATMAP_CID}>"
    assert png.get_content() == report.heatmap_png
    assert msg["Subject"] == subject(report)
    assert msg["From"] == SENDER
    assert [a.strip() for a in msg["To"].split(",")] == list(RECIPIENTS)


# ----------------------------------------------------------------------------- SMTP
def test_mail_without_tls_has_the_mime_structure_and_the_cid_image(report: Report) -> None:
    with mail_server() as (box, port):
        send_mail(report, config(port))
    assert len(box.messages) == 1
    mail_from, rcpt, msg = box.messages[0]
    assert mail_from == SENDER
    assert rcpt == list(RECIPIENTS)
    check_message(msg, report)
    assert "changes" in msg["Subject"]
    assert "rollbacks" in msg["Subject"]


def test_mail_with_login(report: Report) -> None:
    with mail_server(authenticator=authenticator, auth_require_tls=False) as (box, port):
        send_mail(report, config(port, user=USER, password=PASSWORD))
    assert len(box.messages) == 1


def test_refused_login_is_a_clear_error_without_the_password(report: Report) -> None:
    with (
        mail_server(authenticator=authenticator, auth_require_tls=False) as (box, port),
        pytest.raises(ConfigError) as caught,
    ):
        send_mail(report, config(port, user=USER, password="wrong-" + PASSWORD))
    assert f"127.0.0.1:{port} refused the login of {USER}" in caught.value.message
    assert "535" in caught.value.message
    assert PASSWORD not in caught.value.message
    assert "wrong-" not in caught.value.message
    assert not box.messages


def test_starttls_with_login(report: Report, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with mail_server(tls_context=tls, require_starttls=True, authenticator=authenticator) as (
        box,
        port,
    ):
        send_mail(
            report,
            config(port, security="starttls", ca_file=str(cert), user=USER, password=PASSWORD),
        )
        # The same server without the certificate's CA: the client must not trust it.
        with pytest.raises(DeliveryError, match="TLS with the mail server"):
            send_mail(report, config(port, security="starttls"))
    assert len(box.messages) == 1
    check_message(box.messages[0][2], report)


def test_starttls_asked_but_not_offered(report: Report) -> None:
    with (
        mail_server() as (box, port),
        pytest.raises(ConfigError, match="does not offer STARTTLS"),
    ):
        send_mail(report, config(port, security="starttls"))
    assert not box.messages


def test_unreachable_mail_server(report: Report) -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as caught:
        send_mail(report, config(port))
    assert (
        caught.value.message == f"cannot reach the mail server 127.0.0.1:{port}: Connection refused"
    )


def test_cli_mails_the_report(report: Report, tmp_path: Path) -> None:
    ledger = tmp_path / "demo.db"
    build_demo_ledger(ledger)[0].close()
    with mail_server(authenticator=authenticator, auth_require_tls=False) as (box, port):
        run = invoke(
            ["report", "--ledger", str(ledger), "--mail"],
            env={
                "IMAGETRAIL_SMTP_HOST": "127.0.0.1",
                "IMAGETRAIL_SMTP_PORT": str(port),
                "IMAGETRAIL_SMTP_TLS": "none",
                "IMAGETRAIL_SMTP_USER": USER,
                "IMAGETRAIL_SMTP_PASSWORD": PASSWORD,
                "IMAGETRAIL_SMTP_FROM": SENDER,
                "IMAGETRAIL_SMTP_TO": ",".join(RECIPIENTS),
            },
        )
    assert run.code == 0, run.err
    assert f"mailed to {', '.join(RECIPIENTS)} via 127.0.0.1:{port}" in run.err
    assert PASSWORD not in run.err + run.out
    assert len(box.messages) == 1
    assert box.messages[0][2].get_content_type() == "multipart/alternative"


# ---------------------------------------------------------------------------- apprise
def test_json_webhook_gets_the_summary(report: Report, fake_server: FakeServer) -> None:
    fake_server.script("/hook/tok3n", Reply(200, b"{}"))
    notify(report, [f"json://127.0.0.1:{fake_server.port}/hook/tok3n"])
    (request,) = fake_server.requests_to("/hook/tok3n")
    assert request.method == "POST"
    body = json.loads(request.body)
    assert body["title"].startswith("imagetrail report ")
    message = body["message"]
    s = report.summary
    assert f"{s.changes} changes in {s.workloads_changed} workloads" in message
    assert "[Open imagetrail](https://it.example/changes)" in message


def test_mattermost_webhook_gets_the_summary(report: Report, fake_server: FakeServer) -> None:
    fake_server.script("/hooks/mmtoken123", Reply(200, b"ok"))
    notify(report, [f"mmost://127.0.0.1:{fake_server.port}/mmtoken123"])
    (request,) = fake_server.requests_to("/hooks/mmtoken123")
    assert request.headers["content-type"].startswith("application/json")
    text = json.loads(request.body)["text"]
    assert f"{report.summary.changes} changes" in text
    assert "rollbacks" in text
    assert "https://it.example/changes" in text


def test_failed_webhook_names_scheme_and_host_only(report: Report, fake_server: FakeServer) -> None:
    fake_server.script("/hook/very-secret-token", Reply(500, b"down"))
    ok_url = f"json://127.0.0.1:{fake_server.port}/ok"
    fake_server.script("/ok", Reply(200, b"{}"))
    bad_url = f"json://127.0.0.1:{fake_server.port}/hook/very-secret-token"
    with pytest.raises(DeliveryError) as caught:
        notify(report, [ok_url, bad_url])
    assert caught.value.message.endswith(f"URL 2 (json://127.0.0.1:{fake_server.port})")
    assert "very-secret-token" not in caught.value.message
    assert len(fake_server.requests_to("/ok")) == 1  # the good one was still sent


def test_url_apprise_does_not_know_is_a_config_error(report: Report) -> None:
    with pytest.raises(ConfigError, match=r"URL 1 \(nosuchservice://…\)"):
        notify(report, ["nosuchservice://token-abc/def"])


def test_cli_notify(report: Report, tmp_path: Path, fake_server: FakeServer) -> None:
    ledger = tmp_path / "demo.db"
    build_demo_ledger(ledger)[0].close()
    fake_server.script("/hooks/tkn", Reply(200, b"ok"))
    run = invoke(
        ["report", "--ledger", str(ledger), "--notify"],
        env={"IMAGETRAIL_REPORT_NOTIFY": f"mmost://127.0.0.1:{fake_server.port}/tkn"},
    )
    assert run.code == 0, run.err
    assert f"sent the summary to mmost://127.0.0.1:{fake_server.port}" in run.err
    assert "tkn" not in run.err
    assert len(fake_server.requests_to("/hooks/tkn")) == 1
