"""The ``imagetrail`` command line.

Every query command takes the common filters and ``-o table|wide|json|csv``; answers come from
the ledger (default) or live from Prometheus (``--source prometheus``). Errors are caught once, in
:func:`main`, and printed as one line plus a hint.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from imagetrail import __version__, budget, redact
from imagetrail import settings as settings_mod
from imagetrail.errors import ImagetrailError, InputError, SourceError
from imagetrail.model import Change
from imagetrail.output import Format, render_heatmap, render_rows
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.service.shapes import CHANGE_COLUMNS, record
from imagetrail.text import printable, table_time
from imagetrail.timeutil import format_duration, parse_time

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="imagetrail",
    help="Which container image versions ran where and when, across Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

# -- shared options ---------------------------------------------------------------------------
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
SignalOpt = Annotated[
    str | None, typer.Option("--signal", help=settings_mod.BY_NAME["signal"].help)
]


def _fmt(value: str) -> Format:
    if value not in ("table", "wide", "json", "csv"):
        raise InputError(f"-o/--output must be table, wide, json or csv, not {value!r}")
    return value  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    # Eager, so that `imagetrail --version` works without a command.
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
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


def _context(ctx: typer.Context, **flags: Any) -> QueryContext:
    resolved = settings_mod.load(flags, config_path=(ctx.obj or {}).get("config"))
    return QueryContext(resolved)


def _query(
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
    if source not in ("ledger", "prometheus"):
        raise InputError(f"--source must be ledger or prometheus, not {source!r}")
    return Query(
        cluster=cluster,
        namespace=namespace,
        workload=workload,
        window=Window.from_flags(since=since, from_=from_, to=to, at=at, step=step),
        source=source,
    )


# -- commands ---------------------------------------------------------------------------------
@app.command()
def sync(
    ctx: typer.Context,
    prometheus: PromOpt = None,
    ledger: LedgerOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Backfill from here (default: all the server has)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Sync up to here (default: now); not with --follow."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep polling after the backfill.")
    ] = False,
    signal: SignalOpt = None,
    chunk: Annotated[str | None, typer.Option("--chunk", help="Time per query, e.g. 1d.")] = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Record what Prometheus holds into the ledger (resumable; --follow keeps it current)."""
    qc = _context(ctx, prometheus_url=prometheus, ledger=ledger, signal=signal, chunk=chunk)
    query = _query(cluster=cluster, namespace=namespace, workload=None)
    since_t = parse_time(since) if since else None
    until_t = parse_time(until) if until else None
    if until_t is not None and follow:
        raise InputError("give --until or --follow, not both")
    if since_t is not None and until_t is not None and since_t >= until_t:
        raise InputError("--since must be before --until")
    # Following, SIGTERM and SIGINT stop the work at its next query (the source's budget),
    # let the chunk being written commit, and end the loop (exit 0): see _StopOnSignal.
    stop = _StopOnSignal() if follow else None
    with (
        stop if stop is not None else contextlib.nullcontext(),
        budget.using(stop.budget if stop is not None else budget.current.get()),
        qc.open_ledger() as led,
        qc.prometheus_source(query) as src,
    ):
        while True:
            try:
                with _progress() as progress:
                    task = progress.add_task("sync", total=None)

                    def tick(done: int, total: int, mark: float, task: Any = task) -> None:
                        progress.update(task, completed=done, total=total or None)
                        if stop is not None:
                            stop.reached(mark)

                    result = qc.sync(led, src, since=since_t, until=until_t, progress=tick)
            except (ImagetrailError, _Stopped) as exc:
                if stop is not None and stop.signal is not None:
                    stop.report(qc.fmt_time)
                    return
                if not follow or not isinstance(exc, SourceError):
                    raise
                # Following: a source outage is reported and retried, never the end.
                err_console.print(
                    Text(f"error: {exc.message} (retrying)", style="red"), highlight=False
                )
                if stop is not None and stop.sleep(qc.settings.follow_interval):
                    stop.report(qc.fmt_time)
                    return
                continue
            err_console.print(
                Text(
                    f"synced {result.signal} through {qc.fmt_time(result.end)}: "
                    f"{result.chunks} chunks, {result.spans_written} spans written, "
                    f"{result.changes} changes, {result.seconds:.1f}s"
                )
            )
            if result.nothing_matched:
                err_console.print(
                    Text("nothing on the server matches --cluster/--namespace", style="yellow")
                )
            if stop is None:
                return
            since_t = None
            if stop.sleep(qc.settings.follow_interval):
                stop.report(qc.fmt_time)
                return


class _Stopped(Exception):
    """Raised after a chunk was written, once SIGTERM or SIGINT asked the sync to stop."""


class _StopOnSignal:
    """While entered, SIGTERM and SIGINT ask ``sync --follow`` to stop: the source's queries
    fail at once (their :class:`~imagetrail.budget.Budget` is cancelled), the chunk being
    written still commits, and the sleep between polls ends.

    The Python handler only sets a flag: it runs in the main thread, which may hold the very
    locks that cancelling takes. The signal's wakeup byte wakes a watcher thread instead,
    which cancels the budget and ends the sleep."""

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.budget = budget.Budget()
        self.signal: str | None = None
        self.mark: float | None = None
        self._woken = threading.Event()
        self._saved: dict[int, Any] = {}
        self._reader, self._writer = socket.socketpair()
        self._old_fd = -1

    def __enter__(self) -> _StopOnSignal:
        self._writer.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self._SIGNALS:
            self._saved[sig] = signal.signal(sig, self._handle)
        threading.Thread(target=self._watch, name="imagetrail-stop", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_fd)
        self._writer.close()  # the watcher reads the end of the stream and returns

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signal.Signals(signum).name

    def _watch(self) -> None:
        try:
            while data := self._reader.recv(16):
                for signum in data:
                    if signum in self._SIGNALS:
                        self.signal = signal.Signals(signum).name
                        self.budget.cancel(f"sync stopped by {self.signal}")
                        self._woken.set()
        except OSError:
            pass
        finally:
            self._reader.close()

    def reached(self, mark: float) -> None:
        """After each written chunk: remember the watermark, stop here when asked to."""
        self.mark = mark
        if self.signal is not None:
            raise _Stopped

    def sleep(self, seconds: float) -> bool:
        """Wait between polls; True when a signal ended the wait (or came before it)."""
        return self._woken.wait(seconds) or self.signal is not None

    def report(self, fmt_time: Any) -> None:
        where = "" if self.mark is None else f"; the ledger is synced through {fmt_time(self.mark)}"
        err_console.print(Text(f"stopped by {self.signal}{where}"), highlight=False)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@app.command()
def versions(
    ctx: typer.Context,
    at: AtOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Image versions running at an instant, most containers first."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(cluster=cluster, namespace=namespace, workload=workload, at=at, source=source)
    rows, instant = qc.versions(q)
    tabled = _fmt(fmt) in ("table", "wide")
    render_rows(
        [record(r) for r in rows],
        _fmt(fmt),
        columns=["image", "digest", "containers", "stale_containers"]
        if tabled
        else ["image", "digest", "containers", "workloads", "stale", "stale_containers"],
        wide=["stale", "workloads"],
        drop=["stale_containers"],
        title=f"versions at {qc.fmt_time(instant)}",
    )


@app.command()
def heatmap(
    ctx: typer.Context,
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    step: StepOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    exact_panel: Annotated[
        bool,
        typer.Option(
            "--exact-panel",
            help="Run the original Grafana panel's query live (counts pause containers).",
        ),
    ] = False,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Image x time -> containers: the original panel's picture, without its blind spots."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster,
        namespace=namespace,
        workload=workload,
        since=since,
        from_=from_,
        to=to,
        step=step,
        source="prometheus" if exact_panel else source,
    )
    render_heatmap(qc.panel_heatmap(q) if exact_panel else qc.heatmap(q), _fmt(fmt))


@app.command()
def changes(
    ctx: typer.Context,
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these kinds (repeatable).")
    ] = None,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Version changes per workload container: upgrade, downgrade, rollback, tag-repush, ..."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster,
        namespace=namespace,
        workload=workload,
        since=since,
        from_=from_,
        to=to,
        source=source,
    )
    rows = qc.changes(q, kinds=kind)
    tabled = _fmt(fmt) in ("table", "wide")
    render_rows(
        [record(r) | {"finished": _settled(r)} if tabled else record(r) for r in rows],
        _fmt(fmt),
        columns=[
            "started",
            "kind",
            "cluster",
            "namespace",
            "workload",
            "container",
            "from_image",
            "to_image",
            "finished",
        ]
        if tabled
        else CHANGE_COLUMNS,
        wide=["workload_kind", "from_digest", "to_digest"],
        key="to_image",
        drop=["from_image", "container", "namespace", "finished"],
        title="changes",
    )
    if tabled and source == "ledger" and _reads_cadvisor(qc, q):
        console.print(Text(CADVISOR_NOTE, style="dim"))


CADVISOR_NOTE = "failed rollouts need kube-state-metrics (this ledger reads cAdvisor)"


def _reads_cadvisor(qc: QueryContext, q: Query) -> bool:
    """Does the ledger hold cAdvisor-signal data for this query? That signal cannot see
    containers that never ran, so the table cannot show failed rollouts: say so, never guess."""
    w = q.window
    with qc.open_ledger(create=False) as ledger:
        found = ledger.spans(
            cluster=q.cluster,
            namespace_regex=q.namespace,
            workload=q.workload,
            start=w.start,
            end=w.end,
            signal="cadvisor",
        )
    return any(q.keeps(s.cluster) for s in found)


def _settled(change: Change) -> str:
    """The table's "finished" cell: the time, or how the rollout stands, with why its new pods
    did not run (``failed <time>: ImagePullBackOff (0/1 pods ran)``, ``stuck: …``) or how long
    they waited before they did (``… (waited 10m)``)."""
    reasons = ", ".join(change.reasons)
    if change.finished is not None:
        waited = f" (waited {format_duration(round(change.waited))})" if change.waited else ""
        return table_time(change.finished) + waited
    if change.state == "stuck":
        return f"stuck: {reasons}"
    if change.ended is not None:
        text = f"{change.state} {table_time(change.ended)}"
        if change.reasons:
            text += f": {reasons}"
        if change.pods is not None:
            text += f" ({change.pods_ran or 0}/{change.pods} pods ran)"
        return text
    return change.state.replace("-", " ")


@app.command()
def history(
    ctx: typer.Context,
    workload_name: Annotated[
        str,
        typer.Argument(
            metavar="WORKLOAD",
            help="name, namespace/name, cluster/namespace/name or the full "
            "cluster/namespace/Kind/name (kind/name and namespace/Kind/name too)",
        ),
    ],
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Every version one workload ran, per container, with when and how many."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster,
        namespace=namespace,
        workload=workload_name,
        since=since,
        from_=from_,
        to=to,
        source=source,
    )
    entries, target = qc.history(q)
    everything = ["container", "image", "digest", "first_seen", "last_seen", "containers_max"]
    render_rows(
        [record(e) for e in entries],
        _fmt(fmt),
        columns=everything[:-1] if _fmt(fmt) in ("table", "wide") else everything,
        wide=["containers_max"],
        drop=["digest", "container"],
        title=f"history of {target}",
    )


@app.command()
def audit(
    ctx: typer.Context,
    since: SinceOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Everything that ran in a time window: which image, where, from when to when."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(
        cluster=cluster,
        namespace=namespace,
        workload=workload,
        since=since,
        from_=from_,
        to=to,
        source=source,
    )
    tabled = _fmt(fmt) in ("table", "wide")
    render_rows(
        [record(e) for e in qc.audit(q)],
        _fmt(fmt),
        columns=[
            "cluster",
            "namespace",
            "workload",
            "container",
            "image",
            "first_seen",
            "last_seen",
        ]
        if tabled
        else [
            "cluster",
            "namespace",
            "workload_kind",
            "workload",
            "container",
            "image",
            "digest",
            "first_seen",
            "last_seen",
            "containers_max",
        ],
        wide=["workload_kind", "digest", "containers_max"],
        drop=["first_seen", "container", "namespace", "last_seen"],
        title="audit",
    )


@app.command()
def workloads(
    ctx: typer.Context,
    at: AtOpt = None,
    cluster: ClusterOpt = None,
    namespace: NamespaceOpt = None,
    workload: WorkloadOpt = None,
    fmt: FormatOpt = "table",
    source: SourceOpt = "ledger",
    ledger: LedgerOpt = None,
    prometheus: PromOpt = None,
) -> None:
    """Workload containers with the images they run."""
    qc = _context(ctx, ledger=ledger, prometheus_url=prometheus)
    q = _query(cluster=cluster, namespace=namespace, workload=workload, at=at, source=source)
    tabled = _fmt(fmt) in ("table", "wide")
    render_rows(
        [record(w) for w in qc.workloads(q)],
        _fmt(fmt),
        columns=[
            "cluster",
            "namespace",
            "workload",
            "container",
            "images",
            "containers",
            "last_change",
            "stale",
        ]
        if tabled
        else [
            "cluster",
            "namespace",
            "workload_kind",
            "workload",
            "container",
            "images",
            "containers",
            "last_change",
            "inferred",
            "stale",
        ],
        wide=["workload_kind", "first_seen", "last_seen", "inferred"],
        key="images",
        drop=["last_change", "stale", "container", "namespace", "containers"],
        title="workloads",
    )


HostOpt = Annotated[str | None, typer.Option("--host", help=settings_mod.BY_NAME["host"].help)]
PortOpt = Annotated[int | None, typer.Option("--port", help=settings_mod.BY_NAME["port"].help)]


def _announce(what: str) -> Any:
    def on_listen(url: str) -> None:
        console.print(Text(f"{what} at {url}  (Ctrl-C stops)", style="bold green"), soft_wrap=True)

    return on_listen


@app.command()
def serve(
    ctx: typer.Context,
    prometheus: PromOpt = None,
    ledger: LedgerOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    signal: SignalOpt = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help=settings_mod.BY_NAME["workers"].help)
    ] = None,
) -> None:
    """Web app + JSON API + /metrics; with --prometheus it keeps the ledger in sync meanwhile."""
    from imagetrail.ledger import Ledger
    from imagetrail.web import serve as run_server

    qc = _context(
        ctx,
        prometheus_url=prometheus,
        ledger=ledger,
        host=host,
        port=port,
        signal=signal,
        workers=workers,
    )
    syncing = bool(qc.settings.prometheus_url)
    led = Ledger.open(qc.settings.ledger, create=syncing)
    try:
        run_server(qc.settings, led, sync=syncing, on_listen=_announce("imagetrail serves"))
    finally:
        led.close()


@app.command()
def demo(
    ctx: typer.Context,
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Where to write the demo ledger (default: a cache file)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the web app on the demo fleet.")
    ] = True,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Simulate a realistic fleet, record it in a ledger, show the answers and serve the UI."""
    from imagetrail.service.demo import default_demo_ledger, run_demo

    path = ledger or default_demo_ledger()
    # Settings first: a bad --port fails before a minute of simulation, not after.
    resolved = settings_mod.load(
        {"ledger": str(path), "host": host, "port": port},
        config_path=(ctx.obj or {}).get("config"),
    )
    run_demo(console, ledger_path=path, seed=seed)
    if serve:
        from imagetrail.ledger import Ledger
        from imagetrail.web import serve as run_server

        led = Ledger.open(path, create=False)
        try:
            run_server(resolved, led, sync=False, on_listen=_announce("The demo fleet is served"))
        finally:
            led.close()


@app.command()
def dashboards(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the dashboard JSON to.")
    ],
    panel: Annotated[
        bool,
        typer.Option(
            "--panel/--no-panel",
            help="Also write the panel for dotdc's dashboard (leave it out of a directory "
            "Grafana provisions from).",
        ),
    ] = True,
) -> None:
    """Write the Grafana dashboards (and the panel for dotdc's namespace dashboard) as JSON."""
    from imagetrail.grafana import write_dashboards

    for path in write_dashboards(output, include_panel=panel):
        console.print(Text(f"wrote {path}"), soft_wrap=True)


@app.command()
def rules(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="prometheus (rule file) or prometheus-operator.")
    ] = "prometheus",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Prometheus alert rules on the exporter's metrics; thresholds come from the settings."""
    from imagetrail.rules import render

    text = render(settings_mod.load({}, config_path=(ctx.obj or {}).get("config")), fmt)
    if output is None:
        sys.stdout.write(text)
        return
    from imagetrail.fileio import write_atomically

    write_atomically(output, text)
    err_console.print(Text(f"wrote {output}"), soft_wrap=True)


@app.command("settings")
def show_settings(ctx: typer.Context) -> None:
    """Every setting, its value and where the value came from (secrets masked)."""
    resolved = settings_mod.load({}, config_path=(ctx.obj or {}).get("config"))
    values = resolved.redacted()
    render_rows(
        [
            {
                "setting": s.name,
                "value": _setting_text(s, values[s.name]),
                "from": resolved.origins[s.name],
                "env": s.env,
            }
            for s in settings_mod.SETTINGS
        ],
        "table",
        key="setting",
        drop=["env"],
        title="settings",
    )


_DURATION_TEXT = re.compile(r"^\d+(?:\.\d+)?(?:ms|[smhdw])(?:\d+(?:ms|[smhdw]))*$")


def _setting_text(setting: settings_mod.Setting, value: Any) -> str | None:
    """A setting's value as it is written: a duration as ``7d`` (not ``604800.0``)."""
    if value is None:
        return None
    if (
        isinstance(value, float)
        and setting.default is not None
        and _DURATION_TEXT.match(setting.default)
    ):
        return format_duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Commands kept in their own modules register themselves on `app` when imported.
from imagetrail.commands import deploy, impact, report  # noqa: E402,F401


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
