"""Real servers for tests and benchmarks: Prometheus, VictoriaMetrics, PostgreSQL.

Every server starts from a Debian-packaged binary (``make test-deps``) on 127.0.0.1 and a
free port, in its own temporary directory, and is stopped by its process id::

    with start_prometheus(cached_tsdb("demo", write_files)) as prom:
        httpx.get(f"{prom.url}/api/v1/query", params={"query": "up"})

Processes are started through ``setpriv --pdeathsig TERM`` so that a killed test run does
not leave servers behind; note that this ties a server's life to the *thread* that started
it. Nothing here depends on imagetrail itself, so bench/ scripts can import it too.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parents[1]
INSTALL_HINT = "install the real test servers with `make test-deps` (Debian packages)"
DEFAULT_TSDB_CACHE = REPO / ".cache" / "tsdb"

_PROMETHEUS_CONFIG = "global:\n  evaluation_interval: 30s\nscrape_configs: []\n"
_PROMTOOL_BACKFILL = "tsdb create-blocks-from openmetrics --quiet --max-block-duration=168h"
_INITDB_FLAGS = "--auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-sync"
_POSTGRES_ROLE = "imagetrail"
_POSTGRES_DB = "imagetrail"


class ServerError(RuntimeError):
    """A test server could not be prepared, started or fed."""


class MissingBinary(ServerError):
    """A server binary is not installed; the message carries the install hint."""


class ServerStartError(ServerError):
    """A server did not come up; the message ends with its log tail."""


class BackfillError(ServerError):
    """promtool refused an OpenMetrics file; the message carries promtool's stderr."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (starters retry on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str, *globs: str) -> str:
    """The path of ``name`` on PATH or under one of ``globs``, else :class:`MissingBinary`."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in globs:
        # Newest version directory first (/usr/lib/postgresql/16 before 15).
        for candidate in sorted(glob.glob(pattern), reverse=True):
            if os.access(candidate, os.X_OK):
                return candidate
    raise MissingBinary(f"`{name}` is not installed; {INSTALL_HINT}")


@dataclass(eq=False)
class Server:
    """A running server process; ``stop()`` ends it by pid and removes its workdir."""

    url: str
    pid: int
    workdir: Path
    name: str = "server"
    log_path: Path | None = None
    stop_signal: int = signal.SIGTERM
    remove_workdir: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _final_log: str | None = field(default=None, repr=False)

    def running(self) -> bool:
        """True while the process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 30.0, *, remove_workdir: bool | None = None) -> None:
        """Stop the process (its stop signal, SIGKILL after ``timeout``) and reap it.

        Idempotent. The log tail stays readable after the workdir is gone.
        """
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._proc.wait()
        _LIVE.discard(self)
        if self._final_log is None:
            self._final_log = self._read_log_tail(200)
        if self.remove_workdir if remove_workdir is None else remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's output."""
        if self._final_log is not None and (self.log_path is None or not self.log_path.exists()):
            return "\n".join(self._final_log.splitlines()[-lines:])
        return self._read_log_tail(lines)

    def _read_log_tail(self, lines: int) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Servers still running when the interpreter exits (a bench script that forgot stop()).
_LIVE: set[Server] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()


def _postgres_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise MissingBinary(
            f"running as root but there is no `postgres` user; {INSTALL_HINT}"
        ) from None


def _command_prefix(user: pwd.struct_passwd | None) -> list[str]:
    """``setpriv`` exec()s the server itself, so the pid we hold is the server's pid."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise MissingBinary("`setpriv` (util-linux) is needed to run PostgreSQL as root")
        return []
    prefix = [setpriv, "--pdeathsig", "TERM"]
    if user is not None:
        prefix += ["--reuid", str(user.pw_uid), "--regid", str(user.pw_gid), "--init-groups"]
    return [*prefix, "--"]


def _chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


def launch(
    name: str,
    workdir: Path,
    argv: Callable[[int], list[str]],
    url: Callable[[int], str],
    ready: Callable[[Server], bool],
    *,
    timeout: float,
    stop_signal: int = signal.SIGTERM,
    user: pwd.struct_passwd | None = None,
    attempts: int = 3,
) -> Server:
    """Start ``argv(port)`` and poll ``ready`` until it holds or ``timeout`` passes.

    The port is chosen just before the start, so another process may grab it first:
    then the server logs "address already in use" and we retry on a new port.
    """
    log_path = workdir / f"{name}.log"
    for attempt in range(1, attempts + 1):
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*_command_prefix(user), *argv(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        server = Server(
            url=url(port),
            pid=proc.pid,
            workdir=workdir,
            name=name,
            log_path=log_path,
            stop_signal=stop_signal,
            _proc=proc,
        )
        _LIVE.add(server)
        problem = _wait_ready(server, ready, timeout)
        if problem is None:
            return server
        tail = server.log_tail(40)
        server.stop(remove_workdir=False)
        if "address already in use" in tail.lower() and attempt < attempts:
            continue
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServerStartError(f"{name} on port {port} {problem}; log tail:\n{tail}")
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(server: Server, ready: Callable[[Server], bool], timeout: float) -> str | None:
    """None once ready, else a description of why it is not."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    last_error = "no answer yet"
    while True:
        assert server._proc is not None
        code = server._proc.poll()
        if code is not None:
            return f"exited with code {code} before it was ready"
        try:
            if ready(server):
                return None
            last_error = "not ready yet"
        except (httpx.HTTPError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # psycopg's errors are not OSError
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return f"was not ready within {timeout:.0f}s ({last_error})"
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _http_ok(path: str) -> Callable[[Server], bool]:
    def probe(server: Server) -> bool:
        return httpx.get(f"{server.url}{path}", timeout=2.0).status_code == 200

    return probe


# --- Prometheus -------------------------------------------------------------------------


def backfill_prometheus_tsdb(
    openmetrics_files: Sequence[Path], tsdb_dir: Path, *, timeout: float | None = None
) -> None:
    """Turn OpenMetrics files into TSDB blocks in ``tsdb_dir`` with promtool, one at a time.

    One file at a time because promtool holds a whole file's samples in memory
    (about 150–200 MB per million samples); split long histories into files per day.
    """
    promtool = find_binary("promtool")
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    for path in openmetrics_files:
        result = subprocess.run(
            [promtool, *_PROMTOOL_BACKFILL.split(), str(path), str(tsdb_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip())[-4000:]
            raise BackfillError(
                f"promtool could not backfill {path} (exit {result.returncode}):\n{detail}"
            )


_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def cached_tsdb(
    key: str,
    make_files: Callable[[Path], list[Path]],
    cache_root: Path = DEFAULT_TSDB_CACHE,
) -> Path:
    """The TSDB directory for ``key``, built once by ``make_files(tmpdir)`` plus a backfill.

    The build happens in a temporary sibling directory that is renamed into place, so a
    killed build never leaves a half-made cache and concurrent builders do not collide.
    Treat the result as read-only: start Prometheus on it with ``copy_tsdb=True``.
    """
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"cache key must match {_KEY_RE.pattern}: {key!r}")
    final = cache_root / key
    if final.is_dir():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache_root))
    try:
        sources = build / "openmetrics"
        sources.mkdir()
        files = make_files(sources)
        tsdb = build / "tsdb"
        backfill_prometheus_tsdb(files, tsdb)
        try:
            tsdb.rename(final)
        except OSError:
            # Another process finished the same key first; its result is as good as ours.
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return final


def _copy_blocks(src: Path, dst: Path) -> None:
    """Hard-link block data (never modified in place) and copy the small mutable files."""
    dst.mkdir(parents=True, exist_ok=True)
    for block in sorted(src.iterdir()):
        if not (block / "meta.json").is_file():
            continue  # wal/, lock, queries.active of a server that ran on the cache
        for item in block.rglob("*"):
            target = dst / block.name / item.relative_to(block)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.name in ("meta.json", "tombstones"):
                shutil.copy2(item, target)
                continue
            try:
                os.link(item, target)
            except OSError:  # another filesystem, or links not allowed
                shutil.copy2(item, target)


def start_prometheus(
    tsdb_dir: Path | None = None,
    *,
    config_yaml: str | None = None,
    copy_tsdb: bool = True,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> Server:
    """Start Prometheus on ``tsdb_dir`` (or an empty TSDB); ready when ``/-/ready`` is 200.

    With ``copy_tsdb`` the blocks are linked into the server's own data dir so the cache
    stays pristine; without it Prometheus writes into ``tsdb_dir`` itself.
    """
    binary = find_binary("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-prometheus-"))
    config = workdir / "prometheus.yml"
    config.write_text(_PROMETHEUS_CONFIG if config_yaml is None else config_yaml)
    data = workdir / "data"
    if tsdb_dir is None:
        data.mkdir()
    elif copy_tsdb:
        _copy_blocks(tsdb_dir, data)
    else:
        data = tsdb_dir

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=10y",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra_args,
        ]

    return launch(
        "prometheus",
        workdir,
        argv,
        lambda port: f"http://127.0.0.1:{port}",
        _http_ok("/-/ready"),
        timeout=timeout,
    )


# --- Alertmanager -----------------------------------------------------------------------

_ALERTMANAGER_CONFIG = """\
route:
  receiver: default
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
"""


def start_alertmanager(*, config_yaml: str | None = None, timeout: float = 60.0) -> Server:
    """Start Debian's Alertmanager 0.25 (no clustering); ready when ``/-/ready`` is 200."""
    binary = find_binary("prometheus-alertmanager", "/usr/bin/alertmanager")
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-alertmanager-"))
    config = workdir / "alertmanager.yml"
    config.write_text(_ALERTMANAGER_CONFIG if config_yaml is None else config_yaml)

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]

    return launch(
        "alertmanager",
        workdir,
        argv,
        lambda port: f"http://127.0.0.1:{port}",
        _http_ok("/-/ready"),
        timeout=timeout,
    )


# --- VictoriaMetrics --------------------------------------------------------------------


def start_victoriametrics(
    import_files: Sequence[Path] = (),
    *,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> Server:
    """Start single-node VictoriaMetrics (ready at ``/health``) and import ``import_files``.

    The files are Prometheus text format with *millisecond* timestamps (see
    :func:`openmetrics_to_vm_import`).
    """
    binary = find_binary("victoria-metrics")
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-victoriametrics-"))

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            # Imported history must be visible at once and identical on every query.
            "-search.latencyOffset=0s",
            "-search.disableCache",
            *extra_args,
        ]

    server = launch(
        "victoria-metrics",
        workdir,
        argv,
        lambda port: f"http://127.0.0.1:{port}",
        _http_ok("/health"),
        timeout=timeout,
    )
    try:
        import_into_victoriametrics(server, import_files)
    except BaseException:
        server.stop()
        raise
    return server


def import_into_victoriametrics(server: Server, files: Sequence[Path]) -> None:
    """POST each file to ``/api/v1/import/prometheus`` and flush so queries see it."""
    with httpx.Client(base_url=server.url, timeout=300.0) as client:
        for path in files:
            with path.open("rb") as body:
                response = client.post("/api/v1/import/prometheus", content=body)
            if response.status_code >= 300:
                raise ServerError(
                    f"VictoriaMetrics refused {path}: HTTP {response.status_code} "
                    f"{response.text[:2000]}"
                )
        client.get("/internal/force_flush").raise_for_status()


def split_sample_line(line: str) -> tuple[str, str, str | None]:
    """Split an exposition-format sample into (series, value, timestamp or None).

    The series part (name and ``{labels}``) is returned verbatim; label values may hold
    spaces, braces and escaped quotes. An OpenMetrics exemplar (`` # {...} v``) is dropped.
    """
    text = line.strip()
    i = 0
    while i < len(text) and text[i] not in "{ \t":
        i += 1
    if i < len(text) and text[i] == "{":
        in_quotes = False
        i += 1
        while i < len(text):
            char = text[i]
            if in_quotes and char == "\\":
                i += 2
                continue
            if char == '"':
                in_quotes = not in_quotes
            elif char == "}" and not in_quotes:
                break
            i += 1
        else:
            raise ValueError(f"unterminated label set: {line!r}")
        i += 1
    series = text[:i]
    rest = text[i:].split("#", 1)[0].split()
    if not series or not rest or len(rest) > 2:
        raise ValueError(f"not a sample line: {line!r}")
    return series, rest[0], rest[1] if len(rest) == 2 else None


def openmetrics_to_vm_import(src: Path, dst: Path) -> None:
    """Rewrite an OpenMetrics file (seconds) as VictoriaMetrics import text (milliseconds).

    Comments, ``# EOF`` and blank lines are dropped; samples keep their order.
    """
    # newline="\n": a raw \r is legal inside a label value and must not split the line.
    with (
        src.open(encoding="utf-8", newline="\n") as inp,
        dst.open("w", encoding="utf-8", newline="\n") as out,
    ):
        for number, line in enumerate(inp, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                series, value, stamp = split_sample_line(line)
                if stamp is None:
                    out.write(f"{series} {value}\n")
                    continue
                millis = int((Decimal(stamp) * 1000).to_integral_value())
            except (ValueError, InvalidOperation) as exc:
                raise ValueError(f"{src}:{number}: {exc}") from exc
            out.write(f"{series} {value} {millis}\n")


# --- PostgreSQL -------------------------------------------------------------------------


def _psycopg_conninfo(url: str) -> str:
    """psycopg wants ``postgresql://``; SQLAlchemy's ``+psycopg`` driver tag must go."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def start_postgres(*, timeout: float = 60.0) -> Server:
    """A private PostgreSQL cluster on 127.0.0.1 with a password role and its database.

    ``url`` is ``postgresql+psycopg://imagetrail:<password>@127.0.0.1:<port>/imagetrail``;
    the role may create databases (see :func:`temporary_database`). As root, initdb and
    postgres run as the ``postgres`` user, because PostgreSQL refuses to run as root.
    """
    initdb = find_binary("initdb", "/usr/lib/postgresql/*/bin/initdb")
    postgres = find_binary("postgres", "/usr/lib/postgresql/*/bin/postgres")
    user = _postgres_user()
    workdir = Path(tempfile.mkdtemp(prefix="imagetrail-postgres-"))
    try:
        data, sockets = workdir / "data", workdir / "sockets"
        sockets.mkdir()
        superuser_password = secrets.token_hex(16)
        pwfile = workdir / "pwfile"
        pwfile.write_text(superuser_password + "\n")
        if user is not None:
            _chown_tree(workdir, user)
        result = subprocess.run(
            [
                *_command_prefix(user),
                initdb,
                f"--pgdata={data}",
                "--username=postgres",
                f"--pwfile={pwfile}",
                *_INITDB_FLAGS.split(),
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(sockets),
        # A throwaway cluster: durability only costs time here.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }

    def argv(port: int) -> list[str]:
        options = {**settings, "port": str(port)}
        return [postgres, "-D", str(data), *(f"-c{k}={v}" for k, v in options.items())]

    def superuser_dsn(server: Server) -> str:
        port = server.url.rsplit(":", 1)[1]
        return f"postgresql://postgres:{superuser_password}@127.0.0.1:{port}/postgres"

    def ready(server: Server) -> bool:
        import psycopg

        with psycopg.connect(superuser_dsn(server), connect_timeout=2):
            return True

    server = launch(
        "postgres",
        workdir,
        argv,
        lambda port: f"127.0.0.1:{port}",
        ready,
        timeout=timeout,
        stop_signal=signal.SIGINT,  # "fast" shutdown: ends sessions, then a clean stop
        user=user,
    )
    try:
        server.url = _create_role_and_database(superuser_dsn(server), server.url)
    except BaseException:
        server.stop()
        raise
    return server


def _create_role_and_database(superuser_dsn: str, hostport: str) -> str:
    import psycopg
    from psycopg import sql

    password = secrets.token_hex(16)
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(_POSTGRES_ROLE), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(_POSTGRES_DB), sql.Identifier(_POSTGRES_ROLE)
            )
        )
    return f"postgresql+psycopg://{_POSTGRES_ROLE}:{password}@{hostport}/{_POSTGRES_DB}"


@contextlib.contextmanager
def temporary_database(url: str, prefix: str = "test") -> Iterator[str]:
    """Create a fresh database next to ``url``'s, yield its URL, drop it afterwards."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{secrets.token_hex(6)}"
    base, _, _ = url.rpartition("/")
    with psycopg.connect(_psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_psycopg_conninfo(url), autocommit=True) as conn:
            # FORCE: a test that leaked a connection must not make the drop fail.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
