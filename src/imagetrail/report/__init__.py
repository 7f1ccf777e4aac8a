"""The weekly version report: built from the ledger, rendered as HTML or Markdown, delivered
to a file, by mail and to chat webhooks (see docs/report.md)."""

from imagetrail.errors import DeliveryError
from imagetrail.report.build import build_report, gather_impacts, make_report, report_query
from imagetrail.report.deliver import (
    Delivered,
    SmtpConfig,
    build_message,
    deliver,
    notify,
    redact_url,
    send_mail,
    write_report,
)
from imagetrail.report.model import (
    FloatingImage,
    NamespaceSection,
    Report,
    ReportChange,
    StaleImage,
    Summary,
)
from imagetrail.report.render import md, render_html, render_markdown, render_summary

__all__ = [
    "Delivered",
    "DeliveryError",
    "FloatingImage",
    "NamespaceSection",
    "Report",
    "ReportChange",
    "SmtpConfig",
    "StaleImage",
    "Summary",
    "build_message",
    "build_report",
    "deliver",
    "gather_impacts",
    "make_report",
    "md",
    "notify",
    "redact_url",
    "render_html",
    "render_markdown",
    "render_summary",
    "report_query",
    "send_mail",
    "write_report",
]
