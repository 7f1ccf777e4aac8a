"""The ``imagetrail`` command line: the typer app, its global options and :func:`main`.

Every query command takes the common filters and ``-o table|wide|json|csv``; answers come from
the ledger (default) or live from Prometheus (``--source prometheus``). The commands live in
the modules beside this one and are registered here, in the order ``--help`` lists them; none
of them imports this module. Errors are caught once, in :func:`main`, and printed as one line
plus a hint.
"""

from __future__ import annotations

import difflib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text
from typer.core import TyperGroup

from imagetrail import __version__, redact
from imagetrail.cli import demo, deploy, impact, report, server, sync, views
from imagetrail.cli.options import err_console
from imagetrail.errors import ImagetrailError, InputError
from imagetrail.text import printable

if TYPE_CHECKING:
    # The click typer vendors (typer._click): TyperGroup's own types.
    from typer._click.core import Command, Context


class _Commands(TyperGroup):
    """The command group: an unknown command is one ``error:`` line with a did-you-mean (exit
    2), not click's usage block."""

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            # `imagetrail version` is `imagetrail --version` first, `versions` second.
            options = [f"--{name}"] if f"--{name}" in ("--version", "--help") else []
            close = options + difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            guess = " or ".join(f"`imagetrail {c}`" for c in close)
            guess = f" (did you mean {guess}?)" if guess else ""
            raise InputError(
                f"no such command {name!r}{guess}", hint="imagetrail --help lists the commands"
            )
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="imagetrail",
    cls=_Commands,
    help="Which container image versions ran where and when, across Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    # Eager, so that `imagetrail --version` works without a command.
    if value:
        print(__version__)
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default ./imagetrail.yaml).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log requests.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Every record redacted when it is made, whichever handler writes it (uvicorn's too).
    redact.install_logging()
    # -v shows imagetrail's own requests and decisions, not every library's internals.
    logging.getLogger("imagetrail").setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"config": config}


app.callback()(_root)
for command in (
    sync.sync,
    *views.COMMANDS,
    server.serve,
    demo.demo,
    server.dashboards,
    server.rules,
):
    app.command()(command)
app.command("settings")(server.show_settings)
for command in (deploy.annotate, impact.impact, impact.capacity, impact.dora, report.report):
    app.command()(command)
app.add_typer(deploy.deploy_app, name="deploy")


def main() -> None:
    """Console entry point: one clear line on error, never a traceback for user mistakes."""
    try:
        app()
    except ImagetrailError as exc:
        # soft_wrap: one line each, however narrow the terminal (scripts grep for "error:").
        # A server's error text may hold newlines or escape sequences: print them escaped.
        err_console.print(
            Text(f"error: {printable(exc.message)}", style="bold red"), soft_wrap=True
        )
        if exc.hint:
            err_console.print(Text(f"hint: {printable(exc.hint)}", style="yellow"), soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print(Text("interrupted", style="yellow"))
        raise SystemExit(130) from None
