"""``imagetrail report``: the version report of a range, once: to a file, stdout, mail or
chat (``serve`` sends it on a schedule, see :mod:`imagetrail.web.scheduler`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from imagetrail.cli.options import RangeFilters, Stores, err_console, with_blocks
from imagetrail.errors import InputError
from imagetrail.text import printable


@with_blocks
def report(
    ctx: typer.Context,
    *,
    filters: RangeFilters,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="html or markdown (default: the --output file's extension; markdown on "
            "stdout; else report_format).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write, - for stdout (the default without --mail or --notify).",
        ),
    ] = None,
    mail: Annotated[
        bool, typer.Option("--mail", help="Mail it (smtp_host, smtp_to, ... settings).")
    ] = False,
    notify: Annotated[
        bool,
        typer.Option("--notify", help="Send a summary to the report_notify apprise URLs."),
    ] = False,
    impact: Annotated[
        bool,
        typer.Option(
            "--impact/--no-impact",
            help="Judge each change's impact (needs --prometheus; without it the report "
            "says impact is not available).",
        ),
    ] = True,
    stores: Stores,
) -> None:
    """The version report of a range (default report_since, 7d): summary, notable changes,
    heatmap, stale and latest-tagged images, per namespace."""
    from imagetrail.report import deliver, make_report
    from imagetrail.report.deliver import check_settings, render_file

    if fmt is not None and fmt not in ("html", "markdown"):
        raise InputError(f"--format must be html or markdown, not {fmt!r}")
    if not (output or mail or notify):
        output = "-"  # nowhere else to deliver it: Markdown (or --format) to stdout
    context = stores.context(ctx, report_format=fmt or _by_name(output))
    chosen = context.settings.report_format
    check_settings(context.settings, mail=mail, chat=notify)
    # Without --since/--from the range is report_since before --to (or now).
    made = make_report(context, filters.query(), impact=impact)
    err_console.print(
        Text(
            f"report of {made.summary.changes} changes "
            f"({context.fmt_time(round(made.start))} to {context.fmt_time(round(made.end))}); "
            f"{made.impact_note}"
        ),
        soft_wrap=True,
    )
    to_stdout = output == "-"
    if to_stdout:
        sys.stdout.write(render_file(made, chosen))
        sys.stdout.flush()
    result = deliver(
        made,
        context.settings,
        output=None if to_stdout or not output else Path(output),
        fmt=chosen,
        mail=mail,
        chat=notify,
    )
    for line in result.done:
        err_console.print(Text(printable(line)), soft_wrap=True)
    if result.errors:
        for extra in result.errors[1:]:
            err_console.print(
                Text(f"error: {printable(extra.message)}", style="red"), soft_wrap=True
            )
        raise result.errors[0]


_EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def _by_name(output: str | None) -> str | None:
    """The format the output file's name asks for (``x.md``: Markdown; ``-``, stdout: Markdown);
    None when the name does not say (then ``report_format`` decides)."""
    if output is None:
        return None
    if output == "-":
        return "markdown"
    return _EXTENSIONS.get(Path(output).suffix.lower())
