"""Settings: one declarative table feeds the CLI, the environment, the config file and the docs.

Resolution order, first found wins: command-line flag > ``IMAGETRAIL_<NAME>`` environment
variable > config file (``imagetrail.yaml`` in the working directory, or ``IMAGETRAIL_CONFIG``)
> default.

Code reads one typed, frozen :class:`Settings` (``settings.chunk`` is a float), with one field
per row of the table; ``tests/test_settings.py`` fails when the two disagree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from imagetrail import redact
from imagetrail.errors import ConfigError, InputError
from imagetrail.timeutil import parse_duration

ENV_PREFIX = "IMAGETRAIL_"
CONFIG_FILE = "imagetrail.yaml"


def default_ledger() -> str:
    """Where the ledger is unless configured: ``$XDG_DATA_HOME/imagetrail/ledger.db``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "imagetrail" / "ledger.db")


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise InputError(f"not a boolean: {value!r} (use true or false)")


# The settings with a fixed set of values: the parser and the typed field share one Literal.
SignalChoice = Literal["auto", "ksm", "cadvisor"]
ReportFormat = Literal["html", "markdown"]
SmtpSecurity = Literal["starttls", "tls", "none"]


def _one_of(value: str, kind: object) -> str:
    allowed: tuple[str, ...] = get_args(kind)
    if value not in allowed:
        raise InputError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _signal(value: str) -> SignalChoice:
    return cast(SignalChoice, _one_of(value, SignalChoice))


def _report_format(value: str) -> ReportFormat:
    return cast(ReportFormat, _one_of(value, ReportFormat))


def _smtp_security(value: str) -> SmtpSecurity:
    return cast(SmtpSecurity, _one_of(value, SmtpSecurity))


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise InputError(f"must be at least 1: {value!r}")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise InputError(f"must be 0 or more: {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"not a TCP port: {value!r}") from None
    if not 0 <= number <= 65535:
        raise InputError(f"not a TCP port: {value!r}")
    return number


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if origin == "*" or not origin.startswith(("http://", "https://")):
            raise InputError(f"not an origin (scheme://host[:port]): {origin!r}")
    return origins


def _seconds(value: str) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise InputError(f"must be a positive duration: {value!r}")
    return seconds


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"not a number: {value!r}") from None
    if not 0 < number < 1:
        raise InputError(f"must be between 0 and 1 (exclusive): {value!r}")
    return number


def _cron(value: str) -> str:
    from croniter import croniter  # imported here: only `serve` with a schedule needs it

    if not croniter.is_valid(value):
        raise InputError(
            f"not a cron expression: {value!r} (five fields, e.g. '0 8 * * 1' = Mondays 08:00 UTC)"
        )
    return value


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _queries(value: str) -> dict[str, dict[str, str]]:
    """Impact queries: name -> PromQL template, or name -> {query, namespace, workload} to
    scope it to a namespace regex and/or a workload pattern."""
    bad = InputError(
        "impact_queries must map names to a PromQL template or to "
        "{query: ..., namespace: REGEX, workload: PATTERN}"
    )
    try:
        raw = yaml.safe_load(value) if value.strip() else {}
    except yaml.YAMLError:
        raise bad from None
    if not isinstance(raw, dict):
        raise bad
    out: dict[str, dict[str, str]] = {}
    for name, spec in raw.items():
        if isinstance(spec, str):
            spec = {"query": spec}
        if (
            not isinstance(name, str)
            or not isinstance(spec, dict)
            or not isinstance(spec.get("query"), str)
            or not set(spec) <= {"query", "namespace", "workload"}
            or not all(isinstance(v, str) for v in spec.values())
        ):
            raise bad
        if "namespace" in spec:
            try:
                re.compile(spec["namespace"])
            except re.error:
                raise InputError(f"impact_queries.{name}.namespace is not a regex") from None
        out[name] = dict(spec)
    return out


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name, how to parse it, its default and its one-line help."""

    name: str
    help: str
    default: str | None
    parse: Callable[[str], Any] = str
    secret: bool = False
    # The command-line option that sets it, if any (most settings have none: env or file).
    cli_flag: str | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "prometheus_url",
        "Prometheus-compatible API base URL (Prometheus, Thanos, Mimir, VictoriaMetrics).",
        None,
        cli_flag="--prometheus",
    ),
    Setting(
        "ledger",
        "Ledger: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://...).",
        default_ledger(),
        cli_flag="--ledger",
    ),
    Setting(
        "signal",
        "Which signal to read: auto (ksm when present, else cadvisor), ksm, cadvisor.",
        "auto",
        _signal,
        cli_flag="--signal",
    ),
    Setting("cluster_label", "Label that names the cluster on every series.", "cluster"),
    Setting("default_cluster", "Cluster name for series without the cluster label.", "default"),
    Setting(
        "scrape_interval",
        "Scrape interval of the source; span edges are found to this precision.",
        "30s",
        _seconds,
    ),
    Setting(
        "chunk",
        "Time read and committed as one piece by sync (a killed sync resumes at a chunk "
        "border); the server holds at most one 1 h bucket of samples per series at a time.",
        "7d",
        _seconds,
        cli_flag="--chunk",
    ),
    Setting("concurrency", "Queries in flight at once against the source.", "2", _positive_int),
    Setting("timeout", "Per-request timeout against the source.", "120s", _seconds),
    Setting(
        "retries",
        "Retries of a failed source request: connect and read timeouts, connections cut "
        "before or during the answer, HTTP 5xx (but 501/505/511), 408 and 429, answers that "
        "are not valid JSON (an HTML page too), partial answers. 0: none.",
        "3",
        _count,
    ),
    Setting(
        "retry_backoff",
        "Wait before the first retry; it doubles with each retry, with jitter (a server's "
        "Retry-After is used instead, up to 60 s and within retry_budget).",
        "500ms",
        _seconds,
    ),
    Setting(
        "retry_budget",
        "Most time one source request may spend waiting to retry, all retries together.",
        "2m",
        _seconds,
    ),
    Setting(
        "follow_interval",
        "Polling interval of `sync --follow` and of `serve --prometheus`'s background sync.",
        "1m",
        _seconds,
    ),
    Setting("bearer_token", "Bearer token for the source.", None, secret=True),
    Setting("basic_auth_user", "Basic-auth user name for the source.", None),
    Setting("basic_auth_password", "Basic-auth password for the source.", None, secret=True),
    Setting("tenant", "Tenant ID sent as X-Scope-OrgID (Mimir, Cortex).", None),
    Setting("ca_file", "CA bundle to verify the source's TLS certificate.", None),
    Setting(
        "removed_after",
        "A workload absent this long before the end of its cluster's data counts as removed.",
        "1h",
        _seconds,
    ),
    Setting(
        "cluster_silent_after",
        "A cluster with no sample for this long before the end of the data is silent: its last "
        "known versions are kept, marked stale, and its silence is never a change.",
        "5m",
        _seconds,
    ),
    Setting(
        "cluster_silent_forget_after",
        "A cluster silent this long becomes one `cluster-gone` change and is no longer shown.",
        "7d",
        _seconds,
    ),
    Setting(
        "accept_partial",
        "Store answers a source marks partial (Thanos/Mimir/VictoriaMetrics `warnings`, "
        "`isPartial`) after retrying, logging the warning; by default such a chunk fails.",
        "false",
        _bool,
    ),
    Setting(
        "host",
        "Address `imagetrail serve` listens on (0.0.0.0 exposes it to the network).",
        "127.0.0.1",
        cli_flag="--host",
    ),
    Setting(
        "port",
        "Port `imagetrail serve` listens on (0: any free port).",
        "8080",
        _port,
        cli_flag="--port",
    ),
    Setting(
        "workers",
        "Web server processes of `imagetrail serve` (each one opens the ledger; with "
        "--prometheus only the first one syncs).",
        "1",
        _positive_int,
        cli_flag="--workers",
    ),
    Setting(
        "request_timeout",
        "Deadline of one web request's work; past it the request's source queries stop "
        "and it answers 504.",
        "60s",
        _seconds,
    ),
    Setting(
        "request_max_queries",
        "Most source queries (retries included) one web request may send; more answers 422.",
        "500",
        _positive_int,
    ),
    Setting(
        "request_body_timeout",
        "Longest wait for a request body to arrive (a stalled body answers 408).",
        "10s",
        _seconds,
    ),
    Setting(
        "live_max_range",
        "Longest time range a `source=prometheus` web request may read from the source "
        "(longer ranges answer 422; the ledger has no such limit).",
        "2d",
        _seconds,
    ),
    Setting(
        "live_concurrency",
        "`source=prometheus` web requests answered at once; more answer 429.",
        "2",
        _positive_int,
    ),
    Setting(
        "churn_window",
        "Window of `imagetrail_recent_changes` (exporter) and of the version-churn alert.",
        "24h",
        _seconds,
    ),
    Setting(
        "alert_rollout_stuck_after",
        "Alert rule: a workload container running more than one version this long is stuck.",
        "30m",
        _seconds,
    ),
    Setting(
        "alert_rollout_failing_after",
        "Alert rule: a rollout whose new pods cannot run (ImagePullBackOff, …) this long fails.",
        "10m",
        _seconds,
    ),
    Setting(
        "alert_drift_after",
        "Alert rule: one workload running different versions in different clusters this long.",
        "6h",
        _seconds,
    ),
    Setting(
        "alert_image_max_age",
        "Alert rule: the running image of a workload container not updated for this long.",
        "90d",
        _seconds,
    ),
    Setting(
        "alert_recent_window",
        "Alert rule: a rollback or tag re-push this recent fires its alert.",
        "1h",
        _seconds,
    ),
    Setting(
        "alert_churn_changes",
        "Alert rule: more version changes than this within `churn_window` is churn.",
        "5",
        _positive_int,
    ),
    Setting(
        "cors_origins",
        "Comma-separated origins allowed to call the JSON API from a browser (none by default).",
        None,
        _origins,
    ),
    Setting(
        "api_token",
        "Token that write endpoints (POST /api/v1/deployments) require as `Authorization: "
        "Bearer`; unset: writes are refused. Also sent by `deploy record --server`.",
        None,
        secret=True,
    ),
    Setting(
        "server_url",
        "Base URL of an `imagetrail serve` that `deploy record` posts to (unset: write the "
        "ledger directly).",
        None,
        cli_flag="--server",
    ),
    Setting("impact_before", "Impact: window compared before a change starts.", "1h", _seconds),
    Setting(
        "impact_after", "Impact: window compared after a change's rollout ends.", "1h", _seconds
    ),
    Setting(
        "impact_block",
        "Impact: samples are averaged into blocks this long before testing (tames "
        "autocorrelation).",
        "5m",
        _seconds,
    ),
    Setting(
        "impact_min_blocks",
        "Impact: fewer blocks than this on either side gives `insufficient-data`.",
        "6",
        _positive_int,
    ),
    Setting(
        "impact_alpha",
        "Impact: significance level of the Mann-Whitney U test (Holm-corrected across signals).",
        "0.05",
        _fraction,
    ),
    Setting(
        "impact_min_effect",
        "Impact: smallest |Cliff's delta| that counts as a change (0.474 = large).",
        "0.474",
        _fraction,
    ),
    Setting(
        "impact_min_change",
        "Impact: smallest relative change of the mean that counts (0.1 = 10 %).",
        "0.1",
        _fraction,
    ),
    Setting(
        "impact_queries",
        "Impact: your own signals, a mapping of name to a PromQL template (or to `{query, "
        "namespace, workload}` to scope it) using `$cluster`, `$namespace`, `$workload`, "
        "`$container`, `$pods` inside quotes and `$__block`; higher is worse.",
        None,
        _queries,
    ),
    Setting(
        "deploy_match_window",
        "A deployment event matches a detected change that starts within this long of it.",
        "1h",
        _seconds,
    ),
    Setting("grafana_url", "Grafana base URL that `annotate` pushes change annotations to.", None),
    Setting("grafana_token", "Grafana service-account token for `annotate`.", None, secret=True),
    Setting(
        "grafana_dashboard_uid",
        "Dashboard the annotations belong to (unset: organisation-wide annotations).",
        None,
    ),
    Setting(
        "report_schedule",
        "Cron expression (UTC) on which `serve` makes and delivers the report (unset: never).",
        None,
        _cron,
    ),
    Setting("report_since", "Range the scheduled report covers.", "7d", _seconds),
    Setting("report_format", "Scheduled report's file format.", "html", _report_format),
    Setting("report_output", "File the scheduled report is written to (unset: none).", None),
    Setting(
        "report_stale_after",
        "Report: images running unchanged longer than this are listed as not updated.",
        "90d",
        _seconds,
    ),
    Setting(
        "report_notify",
        "Comma-separated apprise URLs the report summary is sent to (chat webhooks).",
        None,
        _csv,
        secret=True,
    ),
    Setting("public_url", "Base URL of the web UI, for links in reports and annotations.", None),
    Setting("smtp_host", "SMTP server for the report (unset: no mail).", None),
    Setting("smtp_port", "SMTP port.", "587", _port),
    Setting(
        "smtp_tls",
        "SMTP transport security: starttls, tls (implicit) or none.",
        "starttls",
        _smtp_security,
    ),
    Setting("smtp_user", "SMTP user name (unset: no login).", None),
    Setting("smtp_password", "SMTP password.", None, secret=True),
    Setting("smtp_from", "Sender address of the report mail.", "imagetrail@localhost"),
    Setting("smtp_to", "Comma-separated recipients of the report mail.", None, _csv),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings, typed: one field per row of :data:`SETTINGS`, in the same order
    (``tests/test_settings.py`` holds the two together), plus ``origins``: where each came
    from (a flag, an environment variable, the config file's path, or ``default``).

    Code reads fields (``settings.chunk``); :attr:`values`, :meth:`get` and :meth:`redacted`
    serve what prints every setting by name."""

    prometheus_url: str | None
    ledger: str
    signal: SignalChoice
    cluster_label: str
    default_cluster: str
    scrape_interval: float
    chunk: float
    concurrency: int
    timeout: float
    retries: int
    retry_backoff: float
    retry_budget: float
    follow_interval: float
    bearer_token: str | None
    basic_auth_user: str | None
    basic_auth_password: str | None
    tenant: str | None
    ca_file: str | None
    removed_after: float
    cluster_silent_after: float
    cluster_silent_forget_after: float
    accept_partial: bool
    host: str
    port: int
    workers: int
    request_timeout: float
    request_max_queries: int
    request_body_timeout: float
    live_max_range: float
    live_concurrency: int
    churn_window: float
    alert_rollout_stuck_after: float
    alert_rollout_failing_after: float
    alert_drift_after: float
    alert_image_max_age: float
    alert_recent_window: float
    alert_churn_changes: int
    cors_origins: tuple[str, ...] | None
    api_token: str | None
    server_url: str | None
    impact_before: float
    impact_after: float
    impact_block: float
    impact_min_blocks: int
    impact_alpha: float
    impact_min_effect: float
    impact_min_change: float
    impact_queries: dict[str, dict[str, str]] | None
    deploy_match_window: float
    grafana_url: str | None
    grafana_token: str | None
    grafana_dashboard_uid: str | None
    report_schedule: str | None
    report_since: float
    report_format: ReportFormat
    report_output: str | None
    report_stale_after: float
    report_notify: tuple[str, ...] | None
    public_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_tls: SmtpSecurity
    smtp_user: str | None
    smtp_password: str | None
    smtp_from: str
    smtp_to: tuple[str, ...] | None
    origins: Mapping[str, str]

    @property
    def values(self) -> dict[str, Any]:
        """Every setting's parsed value by name, in table order."""
        return {s.name: getattr(self, s.name) for s in SETTINGS}

    def get(self, name: str) -> Any:
        """The value of the setting called ``name``; None for an unknown name."""
        return getattr(self, name) if name in BY_NAME else None

    def redacted(self) -> dict[str, Any]:
        """Values safe to print or log: secret settings masked whole, the others redacted
        (a URL's password, tokens in its query string, registered secrets)."""
        return {
            k: (redact.MASK if BY_NAME[k].secret and v is not None else _redact_value(v))
            for k, v in self.values.items()
        }


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact.redact(value)
    if isinstance(value, tuple):
        return tuple(_redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


# Settings whose value is a URL (or a list of them) that may carry user:password@ or a token.
_URL_SETTINGS = (
    "prometheus_url",
    "ledger",
    "server_url",
    "grafana_url",
    "public_url",
    "report_notify",
    "smtp_host",
)


def _register_secrets(values: Mapping[str, Any]) -> None:
    """Tell :mod:`imagetrail.redact` every secret these settings hold, so that no output,
    log line or error shows one, even when a server echoes it back (the basic-auth pair
    travels base64-encoded, so that form is registered too)."""
    for setting in SETTINGS:
        value = values.get(setting.name)
        if value is None:
            continue
        if setting.secret:
            for item in value if isinstance(value, tuple) else (value,):
                redact.register(str(item))
                # Chat webhook URLs (apprise) carry their tokens in the path: long runs
                # with digits are tokens, words are not.
                redact.register(*_token_like_parts(str(item)))
        if setting.name in _URL_SETTINGS:
            for item in value if isinstance(value, tuple) else (value,):
                redact.register_url(str(item))
    redact.register_basic_auth(values.get("basic_auth_user"), values.get("basic_auth_password"))


def _token_like_parts(value: str) -> list[str]:
    return [
        part
        for part in re.split(r"[/:@?&=#]+", value)
        if len(part) >= 12 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
    ]


def _read_config(path: Path) -> dict[str, str]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting: value")
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in BY_NAME:
            raise ConfigError(
                f"unknown setting {key!r} in {path}",
                hint="see `imagetrail settings` for the list",
            )
        if isinstance(value, dict | list):
            # Structured values (impact_queries) keep their structure as JSON text.
            out[name] = json.dumps(value)
        else:
            out[name] = "" if value is None else str(value)
    return out


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Resolve every setting: flag > environment > config file > default."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    # An empty IMAGETRAIL_CONFIG= is unset (not the path ".").
    named = env.get(ENV_PREFIX + "CONFIG", "").strip()
    explicit = config_path or (Path(named) if named else None)
    if explicit is not None and not explicit.is_file():
        what = "is not a file" if explicit.exists() else "does not exist"
        raise ConfigError(f"config file {explicit} {what}")
    path = explicit or Path(CONFIG_FILE)
    file_values = _read_config(path) if path.exists() else {}

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        raw: str | None
        if setting.name in flags:
            raw, origin = str(flags[setting.name]), setting.cli_flag or setting.flag
        elif setting.env in env:
            raw, origin = env[setting.env], setting.env
        elif setting.name in file_values:
            raw, origin = file_values[setting.name], str(path)
        else:
            raw, origin = setting.default, "default"
        if raw is None:
            values[setting.name] = None
        else:
            try:
                values[setting.name] = setting.parse(raw)
            except InputError as exc:
                raise ConfigError(f"{setting.name} (from {origin}): {exc.message}") from exc
            except ValueError as exc:
                raise ConfigError(f"{setting.name} (from {origin}): {exc}") from exc
        origins[setting.name] = origin
    _register_secrets(values)
    return Settings(**values, origins=origins)


def markdown_table() -> str:
    """The settings as a Markdown table (docs/configuration.md is made from this)."""
    lines = [
        "| setting | environment | flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = "—" if s.default is None else f"`{s.default}`"
        if s.name == "ledger":
            default = "`~/.local/share/imagetrail/ledger.db`"
        flag = f"`{s.cli_flag}`" if s.cli_flag else "—"
        lines.append(f"| `{s.name}` | `{s.env}` | {flag} | {default} | {s.help} |")
    return "\n".join(lines)
