"""Secrets never leave: one redaction for every URL, header and error text we show or log.

:func:`redact` masks, wherever they appear in a text:

- the password of a URL's userinfo, any scheme (``postgresql+psycopg://u:***@db/x``; the
  user name stays),
- the value of ``Authorization`` and ``Proxy-Authorization`` headers (and a few other
  credential headers) in ``Name: value``, JSON, Python ``repr`` or Go ``map[...]`` form, and
  ``Basic``/``Bearer`` credentials on their own,
- secret-looking parameters of query strings and DSNs (``token=``, ``password=``, ``key=``,
  ``X-Amz-Signature=``...) and of JSON objects (``"password": "..."``),
- every **registered** secret (:func:`register`), in clear, URL-encoded or JSON-escaped form.

Settings register their secrets when they load (tokens, passwords, the basic-auth pair's
base64 ``user:pass``), so a server that echoes our request back cannot make us print them.
The CLI calls :func:`install_logging` once so that every log record (message, arguments,
exception text) is redacted whichever handler writes it, uvicorn's own included.

This module is the lowest layer: it imports nothing from imagetrail.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "***"
# Shorter values are not registered: masking "abc" everywhere would mangle ordinary text.
MIN_SECRET_LENGTH = 4
# Registered values shorter than this are masked only where they stand alone (not inside a
# word), so a short password like "hunter2" does not eat into other words.
_WHOLE_WORD_BELOW = 8

# -- patterns ---------------------------------------------------------------------------------
# scheme://user:password@ — the password runs to the last "@" of the authority.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:\"'<>]*):([^\s/?#\"'<>]*)@")

_CREDENTIAL_HEADERS = (
    r"(?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token"
    r"|private-token|x-vault-token|x-amz-security-token"
)
# Authorization: Basic xyz / 'authorization': 'Bearer xyz' / "Authorization":"..." /
# Authorization:[Basic xyz] (Go's header map). A scheme's one token is masked; credentials
# in parameters (Digest, AWS4-HMAC-SHA256) are masked to the end of the line or quoted string.
_HEADER = re.compile(
    r"(?i)(?<![\w-])(" + _CREDENTIAL_HEADERS + r")([\"']?\s*[:=]\s*[\[\"']?)([^\r\n\"'\]}]*)"
)
_SCHEME = re.compile(r"([A-Za-z][\w!#$%&*+.^`|~-]*)\s+\S")
# "Scheme token" or a bare token: masked alone, the rest of the text stays.
_CREDENTIALS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][\w!#$%&*+.^`|~-]*)\s+(?=\S))?(?P<token>[^\s,;\"'\]}]+)"
)
_BARE_TOKEN = re.compile(r"(?P<token>[^\s,;\"'\]}]+)")
_KNOWN_SCHEMES = frozenset(
    {"aws4-hmac-sha256", "scram-sha-1", "scram-sha-256", "privatetoken", "dpop", "gnap"}
)
# "Basic <base64 of user:pass>" anywhere (checked by decoding: "Basic auth" stays).
_BASIC = re.compile(r"(?i)\b(basic)(\s+)([A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])")
# "Bearer <token>" anywhere, when the token looks like one (a digit or punctuation, 8+ chars):
# "bearer token for the source" stays.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/]{8,}=*)")

_SENSITIVE_NAMES = (
    r"[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|signature|credential)[\w.-]*"
    r"|key|sig|pass|auth"
)
# token=abc in a query string or a DSN (host=db password=abc); a quoted value only for the
# DSN's password='a b' (PromQL's {key="v"} and {key=~"v"} matchers stay).
_PARAM = re.compile(r"(?i)(?<![\w.-])(" + _SENSITIVE_NAMES + r")(=)(?![~=])([^\s&;#\"'<>,)}\]]+)")
_DSN_QUOTED = re.compile(r"(?i)(?<![\w.-])([\w.-]*(?:password|passwd|pwd))(=)('(?:[^'\\]|\\.)*')")
# "password": "abc" in JSON, also 'password': 'abc' in a Python repr.
_JSON_FIELD = re.compile(
    r"(?i)([\"'](?:" + _SENSITIVE_NAMES + r")[\"']\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*')"
)


# -- the registry -----------------------------------------------------------------------------
_lock = threading.Lock()
_registered: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Remember values that must never be shown (tokens, passwords...), process-wide.

    ``None``, empty and short values (under :data:`MIN_SECRET_LENGTH`) are ignored; each value
    is also masked in its URL-encoded and JSON-escaped forms.
    """
    global _pattern
    forms: set[str] = set()
    for value in values:
        if not value or len(value) < MIN_SECRET_LENGTH:
            continue
        forms.update({value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]})
    with _lock:
        if forms <= _registered:
            return
        _registered.update(forms)
        _pattern = None


def register_basic_auth(user: str | None, password: str | None) -> None:
    """Register a basic-auth password and the header's base64 ``user:password``."""
    if not password:
        return
    register(password, basic_credentials(user or "", password))


def register_url(url: str | None) -> None:
    """Register the secrets inside a URL: its userinfo password (and the basic-auth form
    ``user:password`` a client sends for it), and secret-looking query parameters."""
    for secret in url_secrets(url):
        register(secret)
    parts = _split(url)
    if parts is not None and parts.password:
        register_basic_auth(unquote(parts.username or ""), unquote(parts.password))


def registered() -> frozenset[str]:
    """The registered values (for tests)."""
    with _lock:
        return frozenset(_registered)


def forget_all() -> None:
    """Forget every registered value (for tests)."""
    global _pattern
    with _lock:
        _registered.clear()
        _pattern = None


def _registry_pattern() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _registered:
            alternatives = []
            # Longest first, so a value never leaves a longer one half-masked.
            for value in sorted(_registered, key=len, reverse=True):
                escaped = re.escape(value)
                if len(value) < _WHOLE_WORD_BELOW:
                    escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
                alternatives.append(escaped)
            _pattern = re.compile("|".join(alternatives))
        return _pattern


# -- redaction --------------------------------------------------------------------------------
def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret masked as ``***`` (see the module docstring); ``secrets``
    adds values to mask in this call only (short ones are ignored)."""
    if not text:
        return text
    extra = [s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH]
    for value in sorted(extra, key=len, reverse=True):
        text = text.replace(value, MASK)
    pattern = _registry_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _USERINFO.sub(_mask_userinfo, text)
    text = _HEADER.sub(_mask_header, text)
    text = _BASIC.sub(_mask_basic, text)
    text = _BEARER.sub(_mask_bearer, text)
    text = _DSN_QUOTED.sub(_mask_param, text)
    text = _PARAM.sub(_mask_param, text)
    return _JSON_FIELD.sub(_mask_json_field, text)


def redact_url(url: str) -> str:
    """A URL fit to show: the userinfo password and secret query parameters masked (the user
    name, host, path and other parameters stay), registered secrets masked."""
    return redact(url)


def strip_userinfo(url: str) -> str:
    """The URL without ``user:password@`` (to keep as a base URL once the credentials have
    been taken out of it); anything else unchanged."""
    parts = _split(url)
    if parts is None or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The secrets written in a URL: the userinfo password (decoded and as written) and the
    values of secret-looking query parameters."""
    parts = _split(url)
    if parts is None:
        return ()
    found: list[str] = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    for match in _PARAM.finditer(parts.query):
        value = match.group(3)
        found += [value, unquote(value)]
    return tuple(dict.fromkeys(found))


def basic_credentials(user: str, password: str) -> str:
    """The base64 ``user:password`` an ``Authorization: Basic`` header carries."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _split(url: str | None) -> SplitResult | None:
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return None
    return parts if parts.scheme and parts.netloc else None


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.groups()
    if password == MASK:
        return match.group(0)
    return f"{scheme}{user}:{MASK}@"


def _mask_header(match: re.Match[str]) -> str:
    name, separator, value = match.groups()
    stripped = value.lstrip()
    if not stripped or stripped.startswith(MASK):
        return match.group(0)
    lead = value[: len(value) - len(stripped)]
    found = _CREDENTIALS.match(stripped)
    scheme = found.group("scheme") if found else None
    if found is None or (scheme is not None and not _is_scheme(scheme)):
        # Not "scheme token": a bare token, masked alone.
        found, scheme = _BARE_TOKEN.match(stripped), None
    token = found.group("token") if found else ""
    # "username=" right before a quote is Digest's parameter, not base64 padding.
    ends = found is not None and found.end() == len(stripped)
    quoted = ends and match.string[match.end() : match.end() + 1] in ("'", '"')
    if not token or "=" in token.rstrip("=") or (token.endswith("=") and quoted):
        # Credentials in parameters (Digest, AWS4-HMAC-SHA256): mask the rest.
        shown = f"{scheme} {MASK}" if scheme else MASK
        return f"{name}{separator}{lead}{shown}"
    assert found is not None
    rest = stripped[found.end() :]
    return f"{name}{separator}{lead}{scheme + ' ' if scheme else ''}{MASK}{rest}"


def _is_scheme(word: str) -> bool:
    return word.lower() in _KNOWN_SCHEMES or word.isalpha()


def _mask_basic(match: re.Match[str]) -> str:
    word, space, token = match.groups()
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return match.group(0)
    return f"{word}{space}{MASK}" if ":" in text and text.isprintable() else match.group(0)


def _mask_bearer(match: re.Match[str]) -> str:
    word, space, token = match.groups()
    if token.isalpha():  # a word, not a token
        return match.group(0)
    return f"{word}{space}{MASK}"


def _mask_param(match: re.Match[str]) -> str:
    key, equals, value = match.groups()
    if value in (MASK, f"'{MASK}'"):
        return match.group(0)
    return f"{key}{equals}{MASK}"


def _mask_json_field(match: re.Match[str]) -> str:
    prefix, value = match.groups()
    quote_char = value[0]
    if value[1:-1] in ("", MASK):
        return match.group(0)
    return f"{prefix}{quote_char}{MASK}{quote_char}"


# -- logging ----------------------------------------------------------------------------------
_exception_formatter = logging.Formatter()


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a log record in place: its message with the arguments merged in, its exception
    text (formatted now, so formatters use the redacted text) and its stack."""
    if getattr(record, "_imagetrail_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it later, keep the record
        return record
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = _exception_formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record.__dict__["_imagetrail_redacted"] = True
    return record


class RedactingFilter(logging.Filter):
    """A handler (or logger) filter that redacts every record it passes; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_factory_lock = threading.Lock()


def install_logging() -> None:
    """Redact every log record of this process when it is made, whatever logger or handler
    writes it (uvicorn configures its own handlers when it starts), and put a
    :class:`RedactingFilter` on the root logger's handlers. Idempotent."""
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "_imagetrail_redacting", False):

            def factory(*args: object, **kwargs: object) -> logging.LogRecord:
                return redact_record(current(*args, **kwargs))

            factory._imagetrail_redacting = True  # type: ignore[attr-defined]
            logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "RedactingFilter",
    "basic_credentials",
    "forget_all",
    "install_logging",
    "redact",
    "redact_record",
    "redact_url",
    "register",
    "register_basic_auth",
    "register_url",
    "registered",
    "strip_userinfo",
    "url_secrets",
]
