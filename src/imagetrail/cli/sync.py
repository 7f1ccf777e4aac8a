"""``imagetrail sync``: what Prometheus holds, recorded into the ledger, chunk by chunk;
``--follow`` keeps it current until SIGTERM or SIGINT stops it cleanly."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import Annotated, Any

import typer
from rich.text import Text

from imagetrail import budget
from imagetrail.cli.options import (
    LedgerOpt,
    Place,
    PromOpt,
    SignalOpt,
    err_console,
    progress_bar,
    query_context,
    with_blocks,
)
from imagetrail.errors import ImagetrailError, InputError, SourceError
from imagetrail.text import printable
from imagetrail.timeutil import parse_time


@with_blocks
def sync(
    ctx: typer.Context,
    *,
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
    place: Place,
) -> None:
    """Record what Prometheus holds into the ledger (resumable; --follow keeps it current)."""
    context = query_context(
        ctx, prometheus_url=prometheus, ledger=ledger, signal=signal, chunk=chunk
    )
    query = place.query()
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
        context.open_ledger() as ledger_store,
        context.prometheus_source(query) as prometheus_source,
    ):
        while True:
            try:
                with progress_bar() as progress:
                    task = progress.add_task("sync", total=None)

                    def tick(done: int, total: int, mark: float, task: Any = task) -> None:
                        progress.update(task, completed=done, total=total or None)
                        if stop is not None:
                            stop.reached(mark)

                    result = context.sync(
                        ledger_store, prometheus_source, since=since_t, until=until_t, progress=tick
                    )
            except (ImagetrailError, _Stopped) as exc:
                if stop is not None and stop.signal is not None:
                    stop.report(context.fmt_time)
                    return
                if not follow or not isinstance(exc, SourceError):
                    raise
                # Following: a source outage is reported and retried, never the end.
                # One line, whatever the width (scripts grep for "error:").
                err_console.print(
                    Text(f"error: {printable(exc.message)} (retrying)", style="red"),
                    highlight=False,
                    soft_wrap=True,
                )
                if stop is not None and stop.sleep(context.settings.follow_interval):
                    stop.report(context.fmt_time)
                    return
                continue
            err_console.print(
                Text(
                    f"synced {result.signal} through {context.fmt_time(result.end)}: "
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
            if stop.sleep(context.settings.follow_interval):
                stop.report(context.fmt_time)
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
