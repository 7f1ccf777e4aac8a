"""What the commands share: the consoles, the option types, the option blocks and the helpers
that turn flags into settings, a :class:`~imagetrail.service.query.Query` and an output format.

An option block is a frozen dataclass whose fields are options (:class:`Filters`,
:class:`Answer`). A command names the fields it takes, in the order ``--help`` lists them, with
``Annotated[Filters, Pick(...)]``; :func:`with_blocks` spreads them into the signature typer
reads and gathers them back into one value, so each option is written once.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.text import Text

from imagetrail import settings as settings_mod
from imagetrail.cli.render import Format
from imagetrail.errors import InputError
from imagetrail.service.query import Query, QueryContext, Window

console = Console()
err_console = Console(stderr=True)

LedgerOpt = Annotated[
    str | None,
    typer.Option("--ledger", help=settings_mod.BY_NAME["ledger"].help, show_default=False),
]
PromOpt = Annotated[
    str | None,
    typer.Option("--prometheus", help=settings_mod.BY_NAME["prometheus_url"].help),
]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="Only this cluster.")]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace regex (matched fully).")
]
WorkloadOpt = Annotated[
    str | None,
    typer.Option(
        "--workload",
        "-w",
        help="Workload: name, kind/name, namespace/name, cluster/namespace/name, "
        "namespace/kind/name or cluster/namespace/kind/name.",
    ),
]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Range ending now: 7d, 2h, ...")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Range start: RFC 3339, unix, 7d.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Range end (default now).")]
AtOpt = Annotated[str | None, typer.Option("--at", help="Instant (default: latest data).")]
StepOpt = Annotated[
    str | None, typer.Option("--step", help="Bucket width, e.g. 5m (default fits the range).")
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        "--format",
        "-f",
        help="table, wide (full digests, more columns), json or csv.",
    ),
]
SourceOpt = Annotated[
    str, typer.Option("--source", help="ledger (recorded) or prometheus (live, no ledger).")
]
KindOpt = Annotated[
    list[str] | None, typer.Option("--kind", help="Only these change kinds (repeatable).")
]
SignalOpt = Annotated[
    str | None, typer.Option("--signal", help=settings_mod.BY_NAME["signal"].help)
]
HostOpt = Annotated[str | None, typer.Option("--host", help=settings_mod.BY_NAME["host"].help)]
PortOpt = Annotated[int | None, typer.Option("--port", help=settings_mod.BY_NAME["port"].help)]


def output_format(value: str) -> Format:
    """``-o/--output`` checked: table, wide, json or csv."""
    if value not in ("table", "wide", "json", "csv"):
        raise InputError(f"-o/--output must be table, wide, json or csv, not {value!r}")
    return value  # type: ignore[return-value]


def columns(names: str) -> tuple[str, ...]:
    """Column names written as one string, space-separated (a table's layout reads on one
    line)."""
    return tuple(names.split())


def config_path(ctx: typer.Context) -> Path | None:
    """The ``--config`` given to ``imagetrail`` itself (None: ./imagetrail.yaml if any)."""
    path: Path | None = (ctx.obj or {}).get("config")
    return path


def load_settings(ctx: typer.Context, **flags: Any) -> settings_mod.Settings:
    """The settings: these flags over the environment, the config file and the defaults."""
    return settings_mod.load(flags, config_path=config_path(ctx))


def query_context(ctx: typer.Context, **flags: Any) -> QueryContext:
    """The query context of a command: its settings (these flags first) and what they open."""
    return QueryContext(load_settings(ctx, **flags))


def make_query(
    *,
    cluster: str | None,
    namespace: str | None,
    workload: str | None,
    since: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    at: str | None = None,
    step: str | None = None,
    source: str = "ledger",
) -> Query:
    """The query of a command's filters, the time window checked once, here."""
    if source not in ("ledger", "prometheus"):
        raise InputError(f"--source must be ledger or prometheus, not {source!r}")
    return Query(
        cluster=cluster,
        namespace=namespace,
        workload=workload,
        window=Window.from_flags(since=since, from_=from_, to=to, at=at, step=step),
        source=source,
    )


def progress_bar() -> Progress:
    """A progress bar on stderr, shown only on a terminal and gone when done."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def announce(what: str) -> Callable[[str], None]:
    """What the web server calls once it listens: one line with its URL."""

    def on_listen(url: str) -> None:
        console.print(Text(f"{what} at {url}  (Ctrl-C stops)", style="bold green"), soft_wrap=True)

    return on_listen


# -- option blocks ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Pick:
    """The fields of an option block a command takes, in the order its --help lists them."""

    names: tuple[str, ...]

    def __init__(self, *names: str) -> None:
        object.__setattr__(self, "names", names)


@dataclasses.dataclass(frozen=True)
class Filters:
    """Which spans an answer reads: the time window and where (fields a command does not
    take stay None)."""

    since: SinceOpt = None
    from_: FromOpt = None
    to: ToOpt = None
    at: AtOpt = None
    step: StepOpt = None
    cluster: ClusterOpt = None
    namespace: NamespaceOpt = None
    workload: WorkloadOpt = None
    kind: KindOpt = None  # of a change: not a span filter, the answer's own

    def query(self, *, source: str = "ledger", workload: str | None = None) -> Query:
        """The query of these filters (``workload`` for a command that takes it as its
        argument)."""
        fields = dataclasses.asdict(self)
        del fields["kind"]
        if workload is not None:
            fields["workload"] = workload
        return make_query(**fields, source=source)


@dataclasses.dataclass(frozen=True)
class Answer:
    """Where an answer comes from (--source, --ledger, --prometheus) and how it is shown."""

    fmt: FormatOpt = "table"
    source: SourceOpt = "ledger"
    ledger: LedgerOpt = None
    prometheus: PromOpt = None

    @property
    def format(self) -> Format:
        """``-o`` checked."""
        return output_format(self.fmt)

    @property
    def tabled(self) -> bool:
        """Shown as a table (``-o table`` or ``-o wide``), not as JSON or CSV."""
        return self.format in ("table", "wide")

    def context(self, ctx: typer.Context, **flags: Any) -> QueryContext:
        """The query context with this ledger and Prometheus (and ``flags``)."""
        return query_context(ctx, ledger=self.ledger, prometheus_url=self.prometheus, **flags)


RangeFilters = Annotated[Filters, Pick("since", "from_", "to", "cluster", "namespace", "workload")]
# The range's changes of these kinds (changes, impact).
ChangeFilters = Annotated[
    Filters, Pick("since", "from_", "to", "cluster", "namespace", "workload", "kind")
]
StepFilters = Annotated[
    Filters, Pick("since", "from_", "to", "step", "cluster", "namespace", "workload")
]
AtFilters = Annotated[Filters, Pick("at", "cluster", "namespace", "workload")]
# A workload's own range: the workload is the command's argument.
RangePlace = Annotated[Filters, Pick("since", "from_", "to", "cluster", "namespace")]
Place = Annotated[Filters, Pick("cluster", "namespace")]
Shown = Annotated[Answer, Pick("fmt", "source", "ledger", "prometheus")]
# Answers that measure with Prometheus (impact, capacity, dora): always read from the ledger.
Measured = Annotated[Answer, Pick("fmt", "ledger", "prometheus")]
Stores = Annotated[Answer, Pick("ledger", "prometheus")]


def with_blocks(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with each option-block parameter spread into its picked options (what
    typer reads) and gathered back into the block's value when it runs."""
    hints = typing.get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    blocks: dict[str, tuple[type[Any], tuple[str, ...]]] = {}
    for param in inspect.signature(command).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        pick = next(
            (m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Pick)), None
        )
        if pick is None:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
            continue
        block: type[Any] = typing.get_args(annotation)[0]
        types = typing.get_type_hints(block, include_extras=True)
        defaults = {f.name: f.default for f in dataclasses.fields(block)}
        params += [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=defaults[n], annotation=types[n]
            )
            for n in pick.names
        ]
        blocks[param.name] = (block, pick.names)
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: an option is taken twice: {names}")

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        for name, (block, picked) in blocks.items():
            kwargs[name] = block(**{n: kwargs.pop(n) for n in picked})
        command(**kwargs)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
