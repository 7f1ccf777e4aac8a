"""Filter values checked against the names a ledger knows.

A typo in ``--cluster``, ``--namespace`` or ``--workload`` would otherwise answer "nothing
found": an exact name the ledger does not know is an :class:`InputError` naming the closest
known ones; a branch of a namespace regex that matches no known namespace is a warning (the
other branches still answer). A known name with nothing in the asked range is not checked
here: "nothing found" is the right answer then.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from imagetrail.errors import InputError
from imagetrail.model import WORKLOAD_FORMS, Span, Workload, matches_workload, parse_workload
from imagetrail.scope import METACHARACTERS, full_match


def check_names(
    known: Collection[Workload],
    *,
    cluster: str | None = None,
    clusters: Iterable[str] = (),
    namespace: str | None = None,
    workload: str | None = None,
) -> list[str]:
    """Warnings for ``namespace`` branches that match no known namespace; :class:`InputError`
    for a cluster, an exact namespace or a workload that names nothing in ``known`` (checked in
    that order, so the first wrong value is the one blamed). An empty ``known`` checks nothing
    (an empty ledger has its own error)."""
    if not known:
        return []
    known_clusters = sorted({w.cluster for w in known})
    for name in dict.fromkeys([*([cluster] if cluster is not None else []), *clusters]):
        if name not in known_clusters:
            raise InputError(
                f"no cluster {name!r} in the ledger{did_you_mean(name, known_clusters)}",
                hint=_known("clusters", known_clusters),
            )
    warnings = [] if namespace is None else _check_namespace(namespace, known)
    if workload is not None:
        _check_workload(workload, known)
    return warnings


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """``"; did you mean a or b?"`` with the closest candidates (difflib), or ``""``."""
    close = difflib.get_close_matches(value, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f"; did you mean {close[0]}?"
    return f"; did you mean {', '.join(close[:-1])} or {close[-1]}?"


def _known(what: str, values: list[str], limit: int = 12) -> str:
    more = f", … ({len(values)} in all)" if len(values) > limit else ""
    return f"known {what}: {', '.join(values[:limit])}{more}"


def _check_namespace(pattern: str, known: Collection[Workload]) -> list[str]:
    names = sorted({w.namespace for w in known})
    full_match(pattern, what="namespace regex")
    branches = regex_branches(pattern)
    dead = [b for b in branches if not any(_fullmatch(b, n) for n in names)]
    if not dead:
        return []
    if len(dead) == len(branches) and all(not METACHARACTERS.intersection(b) for b in dead):
        wrong = " or ".join(repr(b) for b in dead)
        hints = "".join(did_you_mean(b, names) for b in dead)
        raise InputError(
            f"no namespace {wrong} in the ledger{hints}", hint=_known("namespaces", names)
        )
    rest = ", the rest of the pattern still answers" if len(branches) > 1 else ""
    return [
        f"namespace {b!r}"
        + (f" (in --namespace {pattern!r})" if b != pattern else "")
        + f" matches no namespace in the ledger{rest}{did_you_mean(b, names)}"
        for b in dead
    ]


def _check_workload(spec: str, known: Collection[Workload]) -> None:
    parse_workload(spec)  # the form is checked first
    for w in known:
        if matches_workload(
            spec, cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name
        ):
            return
    depth = spec.count("/")
    forms = {w.name for w in known} if depth == 0 else set()
    for w in known:
        if depth == 1:
            forms |= {f"{w.namespace}/{w.name}", f"{w.kind}/{w.name}"}
        elif depth == 2:
            forms |= {f"{w.cluster}/{w.namespace}/{w.name}", f"{w.namespace}/{w.kind}/{w.name}"}
        elif depth == 3:
            forms.add(w.id)
    raise InputError(
        f"no workload matches {spec!r} in the ledger{did_you_mean(spec, forms)}",
        hint=f"`imagetrail workloads` lists them; a workload is {WORKLOAD_FORMS}",
    )


def regex_branches(pattern: str) -> list[str]:
    """The top-level alternatives of a regex (``a|(?:b|c)`` → ``a``, ``b``, ``c``): a
    group around the whole pattern is opened; ``|`` inside a class or a partial group is not
    a branch."""
    parts: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # "[]…]": a literal "]" first
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    if len(parts) == 1:
        inner = _group_inside(pattern)
        return [pattern] if inner is None else regex_branches(inner)
    return [b for part in parts for b in regex_branches(part)]


def _group_inside(pattern: str) -> str | None:
    """What a plain or non-capturing group around the whole pattern holds, else ``None``."""
    for opener in ("(?:", "("):
        if not (pattern.startswith(opener) and pattern.endswith(")")):
            continue
        if opener == "(" and pattern.startswith("(?"):
            return None  # look-arounds, flags, named groups: leave them whole
        inner = pattern[len(opener) : -1]
        try:
            full_match(inner)
        except InputError:
            return None  # "(a)|(b)" split badly: the outer parentheses are not one group
        depth = 0
        for j, ch in enumerate(inner):  # the group must close at the very end
            if ch == "(" and (j == 0 or inner[j - 1] != "\\"):
                depth += 1
            elif ch == ")" and (j == 0 or inner[j - 1] != "\\"):
                depth -= 1
                if depth < 0:
                    return None
        return inner
    return None


def _fullmatch(branch: str, name: str) -> bool:
    try:
        return full_match(branch)(name)
    except InputError:
        return True  # a fragment that does not compile alone: never blamed


def one_workload(spans: Collection[Span], pattern: str) -> Workload:
    """The one workload ``spans`` belong to; :class:`InputError` for none or several."""
    targets = sorted({s.workload_ref for s in spans})
    if not targets:
        raise InputError(
            f"no workload matches {pattern!r} in the range",
            hint=f"`imagetrail workloads` lists them; a workload is {WORKLOAD_FORMS}",
        )
    if len(targets) > 1:
        names = ", ".join(t.id for t in targets[:5])
        forms = ", ".join(_unique_form(t, targets) for t in targets[:5])
        raise InputError(
            f"{pattern!r} matches {len(targets)} workloads: {names}",
            hint=f"narrow it to one: {forms} (or add --cluster)",
        )
    return targets[0]


def _unique_form(target: Workload, among: Collection[Workload]) -> str:
    """The shortest workload form that names ``target`` and no other of ``among``."""
    t = target
    for form in (
        t.name,
        f"{t.namespace}/{t.name}",
        f"{t.cluster}/{t.namespace}/{t.name}",
        f"{t.namespace}/{t.kind}/{t.name}",
    ):
        named = [
            w
            for w in among
            if matches_workload(
                form, cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name
            )
        ]
        if named == [target]:
            return form
    return t.id
