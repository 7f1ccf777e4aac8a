"""Running the app: bind the socket ourselves (clear errors, port 0), then uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from imagetrail.errors import ConfigError, ImagetrailError
from imagetrail.ledger import Ledger
from imagetrail.settings import Settings
from imagetrail.web.app import create_app

log = logging.getLogger("imagetrail.web")

HARD_STOP = 6.0
"""Seconds after SIGTERM/SIGINT when the process exits even with work still running."""
GRACEFUL_SHUTDOWN = 10
"""uvicorn's own wait for the requests in progress: longer than :data:`HARD_STOP`, whose
one warning line ends a stuck shutdown before uvicorn would cancel the requests' tasks (a
traceback each)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use is a clear error, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listener says it is TCP; without it a keep-alive response waits ~40 ms (delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot listen on {host}:{port}: the port is in use",
                hint="pick another with --port (0 picks any free port)",
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):  # noqa: S104 (reading the bound address, not binding)
        shown = "127.0.0.1"
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, so the process would
    die of the signal; a server asked to stop that stopped cleanly exits 0 instead.

    On the signal the app's work is stopped at once (``on_stop``: every request's budget
    and the background threads), not after uvicorn's graceful wait: the requests then end
    at their next source query and answer 503 within that wait. A request blocked inside
    one slow source query cannot be interrupted, and Python would wait for its thread at
    exit, so :data:`HARD_STOP` seconds after the signal the process exits regardless.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_stop: Callable[[], None],
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_stop = on_stop
        self._on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and not self._stopping:
            self._stopping = True
            # Not here: a signal handler may interrupt code holding the locks on_stop takes.
            self._loop.call_soon_threadsafe(self._stop_work)

    def _stop_work(self) -> None:
        self._on_stop()
        timer = threading.Timer(HARD_STOP, _abandon)
        timer.daemon = True
        timer.start()

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _abandon() -> None:
    """The last resort of a shutdown: threads still blocked in source queries are left."""
    log.warning(
        "requests still waiting for their source %gs after the stop signal; exiting anyway",
        HARD_STOP,
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(
    settings: Settings,
    ledger: Ledger,
    *,
    sync: bool,
    on_listen: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM shut down gracefully); with ``workers`` > 1
    in that many processes sharing the socket (see :func:`_serve_workers`)."""
    sock = bind(settings.host, settings.port)
    if settings.workers > 1:
        _serve_workers(settings, ledger, sock, sync=sync, on_listen=on_listen)
        return
    if on_listen is not None:
        on_listen(url_of(sock))
    _run(settings, ledger, sock, sync=sync, scheduled=True)


def _run(
    settings: Settings,
    ledger: Ledger,
    sock: socket.socket,
    *,
    sync: bool,
    scheduled: bool,
    on_started: Callable[[], None] | None = None,
) -> None:
    """One server process on ``sock`` until its stop signal."""
    app = create_app(settings, ledger, sync=sync, scheduled=scheduled)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    server = _Server(config, on_stop=app.state.begin_shutdown, on_started=on_started)
    server.run(sockets=[sock])


RESTART_DELAY = 1.0
"""Seconds before a worker process that ended on its own is started again."""


def _serve_workers(
    settings: Settings,
    ledger: Ledger,
    sock: socket.socket,
    *,
    sync: bool,
    on_listen: Callable[[str], None] | None,
) -> None:
    """Fork ``workers`` processes that accept on the one socket; supervise them.

    Python answers a request on one core at a time (the GIL), so one process cannot use a
    second core; several can (docs/operations.md has the figures). Each worker opens the
    ledger itself (a database connection must not cross a fork) and keeps its own span
    index; worker 0 alone syncs (``--prometheus``) and sends the scheduled report. The
    parent only supervises: a worker that ends on its own is started again, and SIGTERM or
    SIGINT is passed on to every worker, each stopping as one ``serve`` does.
    """
    ledger.close()  # the workers open their own; nothing of it may be shared across fork
    workers: dict[int, tuple[int, int]] = {}  # pid -> worker number, its "started" pipe
    stopping = False

    def start(number: int) -> None:
        ready, told = os.pipe()  # the worker writes a byte once it serves
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready)
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)  # the server installs its own
                own = Ledger.open(settings.ledger, create=False)
                try:
                    _run(
                        settings,
                        own,
                        sock,
                        sync=sync and number == 0,
                        scheduled=number == 0,
                        on_started=functools.partial(_tell, told),
                    )
                finally:
                    own.close()
            except ImagetrailError as exc:
                log.error("worker %d: %s", number, exc.message)
                code = 1
            except Exception:
                log.exception("worker %d failed", number)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(told)
        os.set_blocking(ready, False)
        workers[pid] = (number, ready)

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    failed: str | None = None
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(settings.workers):
            start(number)
        if on_listen is not None:
            on_listen(url_of(sock))
        while workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in workers:
                continue
            number, ready = workers.pop(pid)
            had_started = _read_byte(ready)
            os.close(ready)
            if stopping:
                continue
            if not had_started:
                # It never got going (the ledger cannot be opened...): starting it again
                # would fail again, once a second, for ever.
                stop(signal.SIGTERM, None)
                failed = f"worker {number} ended before it served ({_ended(status)})"
                continue
            log.warning(
                "worker %d (pid %d) ended (%s); starting it again",
                number,
                pid,
                _ended(status),
            )
            time.sleep(RESTART_DELAY)
            if not stopping:
                start(number)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if failed is not None:
        raise ImagetrailError(failed, hint="its error is in the log above")


def _tell(fd: int) -> None:
    os.write(fd, b"1")
    os.close(fd)


def _read_byte(fd: int) -> bool:
    try:
        return os.read(fd, 1) != b""
    except BlockingIOError:
        return False


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
