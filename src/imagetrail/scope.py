"""What an answer covers, and the one regex grammar every filter is read with.

A :class:`Scope` (clusters, namespace regex, workload) is built once at the edge — the CLI's
flags, the API's parameters, the settings — and validated there, so a refused value gets the
same one-line error whichever back-end would have answered. The ledger turns it into SQL
conditions, the web's span index into a mask, the Prometheus source into label matchers; all
three read a namespace regex the way Prometheus does.

**One grammar: RE2's.** Prometheus matches ``=~`` label values with Go's ``regexp`` (RE2
syntax), anchored at both ends (``^(?:…)$``); :func:`full_match` compiles a pattern with the
RE2 library under the same rules, and every
path that matches a user's regex in Python (the ledger, the span index, the names check)
matches with it. A pattern RE2 refuses (a lookahead such as ``(?!kube-).*``, a
backreference, a possessive quantifier) is refused everywhere with the same message; the
database's own regex engine is never used (PostgreSQL's ``~`` reads ``\\b`` as a
backspace), so an answer cannot depend on where the ledger lives.

``.`` does not match a newline, as in Prometheus 2 and VictoriaMetrics (the servers the tests
run); Prometheus 3 wraps patterns in ``(?s:…)``. The two differ only on label values holding a
newline, which Kubernetes names cannot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import re2  # type: ignore[import-untyped]  # google-re2: no type information

from imagetrail.errors import InputError
from imagetrail.model import Span, check_workload_spec, matches_workload

Matcher = Callable[[str], bool]
"""Does this whole text match? (a compiled :func:`full_match` pattern)."""

# Constructs RE2 (C++) accepts that Go's regexp, and so Prometheus, refuses.
_GO_REFUSES = {"\\C": "\\C (any byte)"}
# What a refused pattern probably tried, named for the error (RE2 says "invalid perl
# operator: (?!"); the refusal itself is RE2's.
_NAMED = (
    (re.compile(r"\(\?="), "lookahead"),
    (re.compile(r"\(\?!"), "negative lookahead"),
    (re.compile(r"\(\?<="), "lookbehind"),
    (re.compile(r"\(\?<!"), "negative lookbehind"),
    (re.compile(r"\(\?P="), "named backreference"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\[1-9g]"), "backreference"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"\(\?\("), "conditional group"),
    (re.compile(r"\(\?#"), "comment group"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\Z"), "\\Z anchor (RE2 spells it \\z)"),
    (re.compile(r"[*+?}]\+"), "possessive quantifier"),
    (re.compile(r"\{(?:\d*,)?\d{4,}\}|\{1\d{3}|\{[2-9]\d{3}"), "repeat count of more than 1000"),
    (re.compile(r"\(\?[imsU-]*[^imsU\-:)<P!=#>(]"), "flag group"),
)
_HINT = "RE2 has no lookarounds, backreferences, atomic groups or possessive quantifiers"


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refusal to stderr as well
    return options


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Matcher | str:
    """The pattern's full-match predicate, or RE2's reason for refusing it."""
    for construct, what in _GO_REFUSES.items():
        if _unescaped(pattern, construct):
            return f"{what} is not in Prometheus' grammar"
    try:
        regex = re2.compile(pattern, options=_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    match = regex.fullmatch
    return lambda text: match(text) is not None


def full_match(pattern: str, *, what: str = "regex") -> Matcher:
    """``pattern`` as Prometheus reads an ``=~`` value: RE2 syntax, matching the whole text,
    ``.`` matching newlines. :class:`InputError` naming ``what`` when RE2 refuses it."""
    compiled = _compiled(pattern)
    if isinstance(compiled, str):
        named = next((name for found, name in _NAMED if found.search(pattern)), None)
        if named is not None:
            article = "an" if named[0] in "aeiou" else "a"
            raise InputError(
                f"{what} {pattern!r} uses {article} {named}, which Prometheus' regex engine (RE2) "
                f"does not support ({compiled})",
                hint=_HINT,
            )
        raise InputError(f"{what} {pattern!r} is invalid: {compiled}", hint=_HINT)
    return compiled


def check_regex(pattern: str, *, what: str = "regex") -> str:
    """``pattern`` unchanged when RE2 accepts it (see :func:`full_match`)."""
    full_match(pattern, what=what)
    return pattern


def is_plain(pattern: str) -> bool:
    """Whether ``pattern`` matches exactly itself (no regex syntax): then it is a name."""
    return bool(pattern) and not METACHARACTERS.intersection(pattern)


METACHARACTERS = frozenset("\\.+*?()|[]{}^$")
"""The characters with a meaning in RE2 outside a class; every other one matches itself."""


def _unescaped(pattern: str, construct: str) -> bool:
    start = 0
    while (i := pattern.find(construct, start)) >= 0:
        backslashes = len(pattern[:i]) - len(pattern[:i].rstrip("\\"))
        if backslashes % 2 == 0:
            return True
        start = i + 1
    return False


@dataclass(frozen=True, slots=True)
class Scope:
    """Which workload containers an answer covers: ``cluster`` (exactly this one, the CLI's
    flag), ``clusters`` (any of these, the web's multi-select; both may be given), a
    ``namespace`` regex (RE2, matching the whole name) and a ``workload`` in one of the forms
    of :data:`imagetrail.model.WORKLOAD_FORMS`. Validated when made."""

    cluster: str | None = None
    clusters: tuple[str, ...] = ()
    namespace: str | None = None
    workload: str | None = None

    def __post_init__(self) -> None:
        if self.namespace is not None:
            full_match(self.namespace, what="namespace regex")
        if self.workload is not None:
            check_workload_spec(self.workload)

    @property
    def namespace_name(self) -> str | None:
        """The namespace itself when the regex is a plain name (SQL can use its index)."""
        if self.namespace is None or not is_plain(self.namespace):
            return None
        return self.namespace

    def keeps_cluster(self, cluster: str) -> bool:
        return (self.cluster is None or cluster == self.cluster) and (
            not self.clusters or cluster in self.clusters
        )

    def keeps_namespace(self, namespace: str) -> bool:
        return self.namespace is None or full_match(self.namespace)(namespace)

    def namespace_test(self) -> Matcher:
        """:meth:`keeps_namespace` as one function that remembers each namespace's answer:
        the rows of a read repeat a few names many times."""
        if self.namespace is None:
            return lambda _namespace: True
        matches = full_match(self.namespace)
        seen: dict[str, bool] = {}

        def keeps(namespace: str) -> bool:
            found = seen.get(namespace)
            if found is None:
                found = seen[namespace] = matches(namespace)
            return found

        return keeps

    def keeps_workload(self, *, cluster: str, namespace: str, kind: str, name: str) -> bool:
        return self.workload is None or matches_workload(
            self.workload, cluster=cluster, namespace=namespace, kind=kind, name=name
        )

    def keeps_span(self, span: Span) -> bool:
        """Is this span's workload container in scope?"""
        return self.keeps(
            cluster=span.cluster,
            namespace=span.namespace,
            kind=span.workload_kind,
            name=span.workload,
        )

    def keeps(self, *, cluster: str, namespace: str, kind: str, name: str) -> bool:
        """Is this workload in scope? (the rule every back-end's narrowing must agree with)"""
        return (
            self.keeps_cluster(cluster)
            and self.keeps_namespace(namespace)
            and self.keeps_workload(cluster=cluster, namespace=namespace, kind=kind, name=name)
        )
