"""The report as HTML (for mail clients and browsers), as Markdown, and as a chat summary.

Every string that came from a cluster (image references, workload, namespace and container
names) is attacker-controlled: the HTML template autoescapes everything, and Markdown
escapes every character that could start markup. The HTML holds no script at all and
only inline styles in table layouts, because that is what mail clients show faithfully.
"""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from imagetrail.model import Change
from imagetrail.report.model import Report, ReportChange
from imagetrail.text import printable, transition
from imagetrail.timeutil import format_duration, format_time

TEMPLATES = Path(__file__).parent / "templates"
HEATMAP_CID = "heatmap@imagetrail"
SUMMARY_CHANGES = 5  # notable changes listed in a chat message

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(t: float) -> str:
    """A time as people read it in a report: ``2024-05-06 08:00 UTC``."""
    text = format_time(t)
    return f"{text[:10]} {text[11:16]} UTC"


def workload_of(change: Change) -> str:
    return f"{change.cluster}/{change.namespace}/{change.workload_kind}/{change.workload}"


def what_changed(change: Change) -> str:
    """``repo  1.2 → 1.3`` (or both references), printable."""
    return printable(transition(change))


def breakable(text: str) -> Markup:
    """Escaped, printable text that may wrap after each ``/`` (long workload ids and image
    references would otherwise widen the table beyond a mail client's window)."""
    return Markup("/<wbr>").join(escape(part) for part in printable(text).split("/"))


def verdict_text(item: ReportChange) -> str:
    return item.verdict or "—"


def state_text(change: Change) -> str:
    """How the rollout stands, when not plainly finished: ``in progress``, or ``aborted 23:11``
    / ``superseded 23:11`` (the time it was given up; with its date when that is not the day
    the change started)."""
    state = change.state
    if state == "finished":
        return ""
    if state == "in-progress" or change.ended is None:
        return state.replace("-", " ")
    ended = when(change.ended)
    return f"{state} {ended[11:16] if ended[:10] == when(change.started)[:10] else ended}"


def kind_text(change: Change) -> str:
    """The kind, with the rollout's state when it did not finish: ``upgrade, aborted 23:11``."""
    state = state_text(change)
    return f"{change.kind.value}, {state}" if state else change.kind.value


def pods_text(change: Change) -> str:
    """How many of the rollout's pods ran its new version: ``0 of 1 ran``."""
    if change.pods is None:
        return "—"
    return f"{change.pods_ran or 0} of {change.pods} ran"


def reasons_text(change: Change) -> str:
    """Why its new pods did not run, printable: ``ErrImagePull, ImagePullBackOff``."""
    return printable(", ".join(change.reasons)) or "—"


def given_up_text(change: Change, end: float) -> str:
    """How long until the rollout was given up (``after 25m``), or ``stuck`` with how long it
    had been failing at ``end`` (the report's "now")."""
    if change.state == "stuck":
        return f"stuck ({format_duration(round(max(0.0, end - change.started)))} so far)"
    if change.ended is None:
        return change.state.replace("-", " ")
    return f"after {format_duration(round(max(0.0, change.ended - change.started)))}"


_env.filters["when"] = when
_env.filters["duration"] = format_duration
_env.filters["printable"] = printable
_env.filters["breakable"] = breakable
_env.globals.update(
    workload_of=workload_of,
    what_changed=what_changed,
    state_text=state_text,
    pods_text=pods_text,
    reasons_text=reasons_text,
    given_up_text=given_up_text,
)


def title(report: Report) -> str:
    return f"imagetrail report {when(report.start)} – {when(report.end)}"


def render_html(report: Report, *, inline_images: bool) -> str:
    """Self-contained HTML: no script, inline styles; the heatmap as a ``data:`` URI when
    ``inline_images``, else as ``cid:heatmap@imagetrail`` (the mail's related part)."""
    src: str | None = None
    if report.heatmap_png is not None:
        if inline_images:
            src = "data:image/png;base64," + base64.b64encode(report.heatmap_png).decode("ascii")
        else:
            src = "cid:" + HEATMAP_CID
    return _env.get_template("report.html.j2").render(
        report=report, title=title(report), heatmap_src=src
    )


# Characters that can start Markdown (CommonMark + GFM tables/strikethrough) or HTML.
_MD_SPECIAL = set("\\`*_[]<>|~&!#")


def md(text: str) -> str:
    """A cluster string as Markdown text: control characters (newlines) shown as escapes,
    every markup character backslash-escaped, so it renders exactly as the string."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in printable(text))


def _md_change_row(item: ReportChange) -> str:
    c = item.change
    return (
        f"| {when(c.started)} | {kind_text(c)} | {md(workload_of(c))} | {md(c.container)} "
        f"| {md(transition(c))} | {verdict_text(item)} |"
    )


_CHANGE_HEAD = (
    "| started | kind | workload | container | change | verdict |\n|---|---|---|---|---|---|"
)


def render_markdown(report: Report, *, heatmap: str | None = None) -> str:
    """The report as Markdown; ``heatmap``: the (relative) file name of the heatmap PNG to
    link, None when it is not written beside the file."""
    s = report.summary
    out = [
        f"# {title(report)}",
        "",
        f"Scope: {md(report.scope)} · generated {when(report.generated)}",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---:|",
        f"| Changes | {s.changes} |",
        f"| Workloads changed | {s.workloads_changed} |",
        f"| Rollbacks | {s.rollbacks} |",
        f"| Failed rollouts | {s.failed_rollouts} |",
        f"| Regressions | {'n/a' if s.regressions is None else s.regressions} |",
        f"| Images not updated for {format_duration(report.stale_after)} | {s.stale_images} |",
        f"| Images with a latest tag or no tag | {s.floating_images} |",
        "",
        f"_{md(report.impact_note)}_",
        "",
    ]
    if report.link:
        out += [f"Open the web UI: <{report.link}>", ""]
    out += ["## Heatmap", ""]
    if report.heatmap_png is None:
        out += ["No containers ran in this range.", ""]
    elif heatmap is None:
        out += ["The heatmap picture is in the HTML report.", ""]
    else:
        out += [f"![image × time heatmap]({_md_link(heatmap)})", ""]
        if report.heatmap_rows_hidden:
            out += [f"{report.heatmap_rows_hidden} quieter images are not drawn.", ""]
    out += _md_failed(report)
    out += [f"## Notable changes ({len(report.notable)} of {report.notable_total})", ""]
    if report.notable:
        out += [_CHANGE_HEAD, *(_md_change_row(i) for i in report.notable), ""]
    else:
        out += ["No changes in this range.", ""]
    out += [
        f"## Images not updated for {format_duration(report.stale_after)} "
        f"({report.summary.stale_images})",
        "",
    ]
    if report.stale:
        out += ["| workload | container | image | running since |", "|---|---|---|---|"]
        for st in report.stale:
            wl = f"{st.cluster}/{st.namespace}/{st.workload_kind}/{st.workload}"
            out.append(
                f"| {md(wl)} | {md(st.container)} | {md(st.image)} | {when(st.running_since)} |"
            )
        if len(report.stale) < report.summary.stale_images:
            out.append(f"\n…and {report.summary.stale_images - len(report.stale)} more.")
        out.append("")
    else:
        out += ["None.", ""]
    out += ["## Images with a latest tag or no tag", ""]
    if report.floating:
        out += ["| image | problem | containers | workloads |", "|---|---|---:|---|"]
        for f in report.floating:
            names = ", ".join(md(w) for w in f.workloads)
            out.append(f"| {md(f.image)} | {f.problem} | {f.containers} | {names} |")
        out.append("")
    else:
        out += ["None.", ""]
    out += ["## Per namespace", ""]
    for sec in report.namespaces:
        out += [f"### {md(sec.cluster)} / {md(sec.namespace)}", ""]
        out += [f"Changes: {sec.changes_total}", ""]
        if sec.changes:
            out += [_CHANGE_HEAD, *(_md_change_row(i) for i in sec.changes), ""]
        out += [f"Versions running ({sec.versions_total}):", ""]
        if sec.versions:
            out += ["| image | containers |", "|---|---:|"]
            out += [f"| {md(v.image)} | {v.containers} |" for v in sec.versions]
        else:
            out.append("None.")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _md_failed(report: Report) -> list[str]:
    out = [f"## Failed rollouts ({report.summary.failed_rollouts})", ""]
    if not report.failed:
        return [*out, "None.", ""]
    out += [
        "| started | workload | container | version tried | reasons | pods | given up |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.failed:
        out.append(
            f"| {when(c.started)} | {md(workload_of(c))} | {md(c.container)} "
            f"| {md(c.to_image or '')} | {md(', '.join(c.reasons)) or '—'} | {pods_text(c)} "
            f"| {given_up_text(c, report.end)} |"
        )
    if len(report.failed) < report.summary.failed_rollouts:
        out.append(f"\n…and {report.summary.failed_rollouts - len(report.failed)} more.")
    return [*out, ""]


def _md_link(target: str) -> str:
    # A file name we chose, but it may hold spaces or parentheses: the <...> form takes them.
    return "<" + target.replace("<", "%3C").replace(">", "%3E") + ">"


def render_summary(report: Report) -> str:
    """A short Markdown message for chat webhooks: the numbers, the top notable changes,
    and a link to the web UI when ``public_url`` is set."""
    s = report.summary
    regressions = "n/a" if s.regressions is None else str(s.regressions)
    lines = [
        f"**{title(report)}** ({md(report.scope)})",
        "",
        f"- {s.changes} changes in {s.workloads_changed} workloads",
        f"- {s.rollbacks} rollbacks, {regressions} regressions",
        *(
            [f"- {s.failed_rollouts} failed rollouts ({s.stuck_rollouts} stuck)"]
            if s.failed_rollouts
            else []
        ),
        f"- {s.stale_images} images not updated for {format_duration(report.stale_after)}",
        f"- {s.floating_images} images with a latest tag or no tag",
    ]
    top = [i for i in report.notable if i.reason != "other"][:SUMMARY_CHANGES]
    if top:
        lines += ["", "Notable:"]
        for item in top:
            c = item.change
            verdict = f", {item.verdict}" if item.verdict else ""
            state = f" ({state_text(c)})" if state_text(c) else ""
            if c.reasons:
                state += f": {md(', '.join(c.reasons))}, {pods_text(c)}"
            lines.append(
                f"- {item.reason}: {md(workload_of(c))} {md(transition(c))}{state}{verdict}"
            )
    if s.regressions is None:
        lines += ["", f"_{md(report.impact_note)}_"]
    if report.link:
        lines += ["", f"[Open imagetrail]({report.link}changes)"]
    return "\n".join(lines) + "\n"
