"""User PromQL templates with ``$namespace``-style variables, substituted safely.

Label values come from the cluster and are attacker-controlled, so a value is only ever
placed *inside* a double-quoted string literal of the template, escaped for it: a value can
never end the string and add a selector of its own. Inside a string that follows ``=~`` or
``!~`` the value is also regex-escaped, so it matches only itself (``$pods`` is the one
variable that is a regex by design: an alternation of escaped pod names). A variable outside
a string is refused, except ``$__block``, a duration imagetrail writes itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagetrail.errors import ConfigError
from imagetrail.sources.promql import duration, quote, regex_literal

VARIABLES = ("cluster", "namespace", "workload", "container", "pods")
_BARE = "__block"  # allowed outside strings: it is a PromQL duration, not a label value


def _escaped(value: str) -> str:
    return quote(value)[1:-1]


def _read_name(template: str, i: int) -> tuple[str, int]:
    """The variable name starting after ``$`` at ``i`` and the index after it."""
    if template.startswith("{", i):
        close = template.find("}", i)
        name = template[i + 1 : close]
        if close == -1 or not name.replace("_", "a").isalnum():
            raise ConfigError(f"unclosed ${{...}} in PromQL template {template!r}")
        return name, close + 1
    j = i
    while j < len(template) and (template[j].isalnum() or template[j] == "_"):
        j += 1
    return template[i:j], j


def substitute(template: str, values: Mapping[str, str], *, block: float) -> str:
    """``template`` with every ``$var`` / ``${var}`` replaced; :class:`ConfigError` when a
    variable is unknown or stands outside a double-quoted string."""
    out: list[str] = []
    i, n = 0, len(template)
    quote_char: str | None = None
    regex_string = False
    while i < n:
        ch = template[i]
        if quote_char is None:
            if ch == "#":  # a comment runs to the end of the line
                end = template.find("\n", i)
                end = n if end == -1 else end
                out.append(template[i:end])
                i = end
                continue
            if ch in "\"'`":
                quote_char = ch
                # A string after =~ / !~ is a regex (the output so far differs from the
                # template only by $__block, which never ends in an operator).
                regex_string = ch == '"' and template[:i].rstrip().endswith(("=~", "!~"))
                out.append(ch)
                i += 1
                continue
            if ch == "$":
                name, i = _read_name(template, i + 1)
                if name != _BARE:
                    raise ConfigError(
                        f"${name} stands outside a quoted string in PromQL template {template!r}",
                        hint='write it inside double quotes, e.g. namespace="$namespace"',
                    )
                out.append(duration(block))
                continue
            out.append(ch)
            i += 1
            continue
        # inside a string literal
        if ch == "\\" and quote_char != "`" and i + 1 < n:
            out.append(template[i : i + 2])
            i += 2
            continue
        if ch == quote_char:
            quote_char = None
            out.append(ch)
            i += 1
            continue
        if ch == "$":
            name, i = _read_name(template, i + 1)
            if quote_char != '"':
                raise ConfigError(
                    f"${name} in a {quote_char}-quoted string of PromQL template {template!r}",
                    hint="use double quotes around variables",
                )
            if name == _BARE:
                out.append(duration(block))
                continue
            if name not in values:
                raise ConfigError(
                    f"unknown variable ${name} in PromQL template {template!r}",
                    hint="variables: " + ", ".join("$" + v for v in VARIABLES) + ", $__block",
                )
            value = values[name]
            if regex_string and name != "pods":
                value = regex_literal(value)
            out.append(_escaped(value))
            continue
        out.append(ch)
        i += 1
    if quote_char is not None:
        raise ConfigError(f"unterminated string in PromQL template {template!r}")
    return "".join(out)


def pods_regex(pods: list[str]) -> str:
    """An RE2 alternation that matches exactly these pod names."""
    return "|".join(regex_literal(p) for p in sorted(set(pods))) or "$^"
