"""Delivering the report: to a file, by SMTP, and to chat webhooks through apprise.

Delivery errors say what was refused by whom (``host:port``, the URL's scheme and host) and
never carry a password or a whole apprise URL: those hold tokens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import ssl
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from imagetrail.errors import ConfigError, DeliveryError, ImagetrailError
from imagetrail.fileio import write_atomically
from imagetrail.report.model import Report
from imagetrail.report.render import (
    HEATMAP_CID,
    render_html,
    render_markdown,
    render_summary,
    title,
)
from imagetrail.settings import Settings

log = logging.getLogger("imagetrail.report")

ReportFormat = Literal["html", "markdown"]
SMTP_TIMEOUT = 30.0


# -- files ----------------------------------------------------------------------------------
def heatmap_path(path: Path) -> Path:
    """Where a Markdown report's heatmap goes: ``report.md`` -> ``report.heatmap.png``."""
    return (
        path.with_name(path.stem + ".heatmap.png")
        if path.suffix
        else Path(str(path) + ".heatmap.png")
    )


def render_file(report: Report, fmt: ReportFormat, *, heatmap: str | None = None) -> str:
    """The report as the text of a file; HTML has its heatmap inline."""
    if fmt == "html":
        return render_html(report, inline_images=True)
    return render_markdown(report, heatmap=heatmap)


def write_report(report: Report, path: Path, fmt: ReportFormat) -> list[Path]:
    """Write the report to ``path`` atomically (and a Markdown report's heatmap beside it);
    the files written."""
    written = []
    link = None
    if fmt == "markdown" and report.heatmap_png is not None:
        png = heatmap_path(path)
        write_bytes_atomically(png, report.heatmap_png)
        written.append(png)
        link = png.name
    write_atomically(path, render_file(report, fmt, heatmap=link))
    return [path, *written]


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Like :func:`imagetrail.fileio.write_atomically`, for bytes (the heatmap PNG)."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


# -- mail -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how the report is mailed (from the ``smtp_*`` settings)."""

    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None  # extra CA bundle for a private mail server's certificate

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """None when ``smtp_host`` is unset; ConfigError when mail is half configured."""
        host = settings.smtp_host
        if not host:
            return None
        recipients = tuple(settings.smtp_to or ())
        if not recipients:
            raise ConfigError(
                "smtp_host is set but smtp_to names no recipient",
                hint="set IMAGETRAIL_SMTP_TO=ops@example.com (comma-separated)",
            )
        return cls(
            host=host,
            port=settings.smtp_port,
            security=settings.smtp_tls,
            sender=settings.smtp_from,
            recipients=recipients,
            user=settings.smtp_user,
            password=settings.smtp_password,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def subject(report: Report) -> str:
    """The mail subject: numbers and dates only, no cluster string (headers stay clean)."""
    s = report.summary
    parts = [f"{s.changes} changes", f"{s.rollbacks} rollbacks"]
    if s.regressions is not None:
        parts.append(f"{s.regressions} regressions")
    return f"{title(report)}: " + ", ".join(parts)


def build_message(report: Report, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """multipart/alternative: Markdown text, then HTML with the heatmap as a related part
    (``cid:``), so that mail clients that block remote and data: images still show it."""
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(report.generated, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="imagetrail")
    msg.set_content(render_markdown(report))
    msg.add_alternative(render_html(report, inline_images=False), subtype="html")
    if report.heatmap_png is not None:
        html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
        html_part.add_related(
            report.heatmap_png,
            maintype="image",
            subtype="png",
            cid=f"<{HEATMAP_CID}>",
            filename="heatmap.png",
            disposition="inline",
        )
    return msg


def send_mail(report: Report, config: SmtpConfig) -> None:
    """Mail the report; ConfigError when the server refuses us, DeliveryError when it
    cannot be reached or fails."""
    msg = build_message(report, config.sender, config.recipients)
    with _smtp(config) as smtp:
        try:
            refused = smtp.send_message(msg, config.sender, list(config.recipients))
        except smtplib.SMTPRecipientsRefused as exc:
            raise ConfigError(
                f"the mail server {config.where} refused every recipient: "
                + ", ".join(f"{r} ({_code(c)})" for r, c in exc.recipients.items()),
                hint="check smtp_to",
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise ConfigError(
                f"the mail server {config.where} refused the sender {config.sender} "
                f"({exc.smtp_code} {_text(exc.smtp_error)})",
                hint="check smtp_from",
            ) from exc
        except smtplib.SMTPException as exc:
            raise DeliveryError(
                f"the mail server {config.where} did not take the report: {_describe(exc)}"
            ) from exc
    if refused:
        log.warning(
            "the mail server %s refused some recipients: %s", config.where, ", ".join(refused)
        )


@contextlib.contextmanager
def _smtp(config: SmtpConfig) -> Iterator[smtplib.SMTP]:
    context = ssl.create_default_context(cafile=config.ca_file)
    smtp: smtplib.SMTP | None = None
    try:
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=SMTP_TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT)
        if config.security == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise ConfigError(
                    f"the mail server {config.where} does not offer STARTTLS",
                    hint="set smtp_tls to tls (implicit TLS, port 465) or, on a trusted "
                    "network only, none",
                )
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.user:
            smtp.login(config.user, config.password or "")
    except smtplib.SMTPAuthenticationError as exc:
        _quit(smtp)
        raise ConfigError(
            f"the mail server {config.where} refused the login of {config.user} "
            f"({exc.smtp_code} {_text(exc.smtp_error)})",
            hint="check smtp_user and smtp_password",
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        _quit(smtp)
        raise ConfigError(
            f"the mail server {config.where} does not support login ({_describe(exc)})",
            hint="unset smtp_user, or use smtp_tls starttls/tls: servers offer AUTH over TLS",
        ) from exc
    except ssl.SSLError as exc:
        _quit(smtp)
        raise DeliveryError(
            f"TLS with the mail server {config.where} failed: {exc.reason or exc}",
            hint="smtp_tls tls is for port 465, starttls for 587",
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        _quit(smtp)
        raise DeliveryError(
            f"cannot reach the mail server {config.where}: {_describe(exc)}",
            hint="check smtp_host and smtp_port",
        ) from exc
    except ConfigError:
        _quit(smtp)
        raise
    try:
        yield smtp
    finally:
        _quit(smtp)


def _quit(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _code(value: tuple[int, bytes]) -> str:
    return f"{value[0]} {_text(value[1])}"


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- chat -----------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """An apprise URL as it may be shown: its scheme, and its host when that looks like a
    host name (for some services the "host" is a token or holds one: then ``…``)."""
    parts = urlsplit(url.strip())
    if not parts.scheme:
        return "a URL without a scheme"
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # "token:secret@..." style values, or a token where the port goes
        port, host = None, ""
    looks_like_host = bool(host) and not parts.username and (host == "localhost" or "." in host)
    if not looks_like_host:
        return f"{parts.scheme}://…"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def notify(report: Report, urls: Sequence[str]) -> None:
    """Send the chat summary to each apprise URL; DeliveryError naming (only the scheme and
    host of) every URL that failed, ConfigError for URLs apprise does not understand."""
    apprise = _apprise()
    body = render_summary(report)
    failed = []
    for number, url in enumerate(urls, 1):
        shown = redact_url(url)
        sender = apprise.Apprise()
        if not sender.add(url):
            raise ConfigError(
                f"report_notify URL {number} ({shown}) is not a URL apprise understands",
                hint="see https://github.com/caronc/apprise/wiki for the URL forms",
            )
        ok = sender.notify(
            body=body, title=title(report), body_format=apprise.NotifyFormat.MARKDOWN
        )
        if not ok:
            failed.append(f"{number} ({shown})")
    if failed:
        raise DeliveryError(
            "the report summary could not be sent to report_notify URL " + ", ".join(failed),
            hint="the warnings above (from apprise) say why",
        )


def _apprise() -> Any:
    # apprise's PGP support imports the stdlib's imghdr, deprecated since 3.11 (a warning
    # at the first notify, an error under -W error): import it once with the warning muted.
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import imghdr  # noqa: F401
    import apprise

    return apprise


# -- all of it --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivered:
    """What one delivery did: where it went, and what failed (messages hold no secrets)."""

    done: tuple[str, ...]
    errors: tuple[ImagetrailError, ...]


def deliver(
    report: Report,
    settings: Settings,
    *,
    output: Path | None,
    fmt: ReportFormat,
    mail: bool,
    chat: bool,
) -> Delivered:
    """Every delivery asked for, each independent of the others' failure."""
    done: list[str] = []
    errors: list[ImagetrailError] = []
    steps: list[tuple[str, Callable[[], list[str]]]] = []
    if output is not None:
        steps.append(("file", lambda: [f"wrote {p}" for p in write_report(report, output, fmt)]))
    if mail:
        steps.append(("mail", lambda: [_mail(report, settings)]))
    if chat:
        steps.append(("notify", lambda: [_chat(report, settings)]))
    for _, step in steps:
        try:
            done.extend(step())
        except ImagetrailError as exc:
            errors.append(exc)
    return Delivered(tuple(done), tuple(errors))


def check_settings(settings: Settings, *, mail: bool, chat: bool) -> None:
    """ConfigError now, before a report is built, when mail or chat is asked for but not
    configured."""
    if mail:
        _smtp_config(settings)
    if chat:
        _notify_urls(settings)


def _smtp_config(settings: Settings) -> SmtpConfig:
    config = SmtpConfig.from_settings(settings)
    if config is None:
        raise ConfigError(
            "no mail server: smtp_host is unset",
            hint="set IMAGETRAIL_SMTP_HOST and IMAGETRAIL_SMTP_TO",
        )
    return config


def _notify_urls(settings: Settings) -> tuple[str, ...]:
    urls = tuple(settings.report_notify or ())
    if not urls:
        raise ConfigError(
            "no chat webhook: report_notify is unset",
            hint="set IMAGETRAIL_REPORT_NOTIFY to apprise URLs (comma-separated)",
        )
    return urls


def _mail(report: Report, settings: Settings) -> str:
    config = _smtp_config(settings)
    send_mail(report, config)
    return f"mailed to {', '.join(config.recipients)} via {config.where}"


def _chat(report: Report, settings: Settings) -> str:
    urls = _notify_urls(settings)
    notify(report, urls)
    return "sent the summary to " + ", ".join(redact_url(u) for u in urls)
