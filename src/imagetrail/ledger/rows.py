"""Conversions between domain values and ledger rows, and the filters the queries share.

Pure functions (no connection): validation, span identity hashing, in-batch merging and the
SQL conditions for the common ``--workload`` forms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, or_

from imagetrail.errors import InputError
from imagetrail.ledger.schema import DEPLOYMENT_ID_MAX, prefix_eq
from imagetrail.model import (
    Change,
    ChangeKind,
    CutShort,
    Deployment,
    EventCount,
    Impact,
    Signal,
    SignalResult,
    Span,
    Wait,
    WorkloadName,
    check_workload_spec,
    parse_workload,
)

SIGNALS: frozenset[str] = frozenset({"ksm", "cadvisor"})
Row = dict[str, Any]


def _check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise InputError(f"{what} contains a NUL character, which the ledger cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode (lone surrogate)") from exc


def _check_time(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite unix time, got {value!r}")


_KEY_TEXT_FIELDS = ("cluster", "namespace", "pod", "pod_uid", "container", "image", "workload")


def key_hash(span: Span, *extra: str) -> str:
    """SHA-256 of :meth:`Span.key` (and ``extra`` fields: a wait's reason); ``None`` and ``""``
    digests hash differently.

    Fields are joined with NUL, which no stored string may contain, so the encoding is
    unambiguous. Raises :class:`InputError` for NUL or lone surrogates in a key field.
    """
    digest = "-" if span.digest is None else "+" + span.digest
    fields = (span.signal, *(getattr(span, name) for name in _KEY_TEXT_FIELDS), digest, *extra)
    for value in fields:
        if "\x00" in value:
            raise InputError("a span field contains a NUL character, which the ledger cannot store")
    try:
        encoded = "\x00".join(fields).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("a span field is not valid Unicode (lone surrogate)") from exc
    return hashlib.sha256(encoded).hexdigest()


def sync_key_hash(key: str) -> str:
    """SHA-256 of a sync key (its primary key: keys may be longer than an index entry)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def span_row(span: Span) -> Row:
    """Validate ``span`` and return its ``spans`` row."""
    if span.signal not in SIGNALS:
        raise InputError(f"unknown signal {span.signal!r} (expected ksm or cadvisor)")
    hashed = key_hash(span)  # also validates every key field
    _check_text(span.workload_kind, "span workload_kind")
    first, last = span.first_seen, span.last_seen
    if not (math.isfinite(first) and math.isfinite(last)):
        raise InputError(f"span times must be finite unix times, got {first!r}, {last!r}")
    if first > last:
        raise InputError(f"span of pod {span.pod!r} ends before it starts ({first} > {last})")
    return {
        "key_hash": hashed,
        "signal": span.signal,
        "cluster": span.cluster,
        "namespace": span.namespace,
        "workload_kind": span.workload_kind,
        "workload": span.workload,
        "workload_inferred": bool(span.workload_inferred),
        "pod": span.pod,
        "pod_uid": span.pod_uid,
        "container": span.container,
        "image": span.image,
        "digest": span.digest,
        "first_seen": float(first),
        "last_seen": float(last),
    }


def wait_row(wait: Wait) -> Row:
    """Validate ``wait`` and return its ``waits`` row: its span's row, the reason, and a
    ``key_hash`` over :meth:`Wait.key`."""
    if not isinstance(wait.reason, str):
        raise InputError(f"wait reason must be a string, got {wait.reason!r}")
    row = span_row(wait.span)
    row["key_hash"] = key_hash(wait.span, wait.reason)  # also validates the reason
    row["reason"] = wait.reason
    return row


def merge_rows(spans: Iterable[Span]) -> list[Row]:
    """Validate and merge spans that share a key; rows sorted by ``key_hash``.

    The merge is the same lattice the SQL upsert applies, so the result does not depend on
    order or chunking: widest ``[first_seen, last_seen]``; for the workload kind, an owner read
    from kube-state-metrics beats an inferred one, and ties go to the smallest kind by code point.
    Sorting gives concurrent writers one lock order (no deadlocks on PostgreSQL).
    """
    return _merged(span_row(span) for span in spans)


def merge_wait_rows(waits: Iterable[Wait]) -> list[Row]:
    """:func:`merge_rows` for waits (merged by :meth:`Wait.key`, the same lattice)."""
    return _merged(wait_row(wait) for wait in waits)


def _merged(rows: Iterable[Row]) -> list[Row]:
    merged: dict[str, Row] = {}
    for row in rows:
        old = merged.get(row["key_hash"])
        if old is None:
            merged[row["key_hash"]] = row
            continue
        old["first_seen"] = min(old["first_seen"], row["first_seen"])
        old["last_seen"] = max(old["last_seen"], row["last_seen"])
        if (row["workload_inferred"], row["workload_kind"]) < (
            old["workload_inferred"],
            old["workload_kind"],
        ):
            old["workload_inferred"] = row["workload_inferred"]
            old["workload_kind"] = row["workload_kind"]
    return [merged[k] for k in sorted(merged)]


def row_span(row: Any) -> Span:
    """Build a :class:`Span` from a ``spans`` row."""
    return Span(
        cluster=row.cluster,
        namespace=row.namespace,
        workload_kind=row.workload_kind,
        workload=row.workload,
        pod=row.pod,
        pod_uid=row.pod_uid,
        container=row.container,
        image=row.image,
        digest=row.digest,
        first_seen=float(row.first_seen),
        last_seen=float(row.last_seen),
        signal=cast(Signal, row.signal),
        workload_inferred=bool(row.workload_inferred),
    )


def row_wait(row: Any) -> Wait:
    """Build a :class:`Wait` from a ``waits`` row."""
    return Wait(row_span(row), row.reason)


WorkloadKey = tuple[str, str, str, str, str]


def change_key(change: Change) -> WorkloadKey:
    """``(cluster, namespace, workload_kind, workload, container)`` of a change."""
    return (
        change.cluster,
        change.namespace,
        change.workload_kind,
        change.workload,
        change.container,
    )


def change_row(change: Change) -> Row:
    """Validate ``change`` and return its ``changes`` row."""
    for name in (
        "cluster",
        "namespace",
        "workload_kind",
        "workload",
        "container",
        "from_image",
        "from_digest",
        "to_image",
        "to_digest",
    ):
        value = getattr(change, name)
        if value is not None:
            _check_text(value, f"change {name}")
    _check_time(change.started, "change started")
    if change.finished is not None:
        _check_time(change.finished, "change finished")
    if change.ended is not None:
        _check_time(change.ended, "change ended")
    if change.waited is not None:
        _check_time(change.waited, "change waited")
    for reason in change.reasons:
        _check_text(reason, "change reason")
    for name in ("pods", "pods_ran"):
        count = getattr(change, name)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise InputError(f"change {name} must be a whole number, got {count!r}")
    return {
        "cluster": change.cluster,
        "namespace": change.namespace,
        "workload_kind": change.workload_kind,
        "workload": change.workload,
        "container": change.container,
        "from_image": change.from_image,
        "from_digest": change.from_digest,
        "to_image": change.to_image,
        "to_digest": change.to_digest,
        "kind": ChangeKind(change.kind).value,
        "started": float(change.started),
        "finished": None if change.finished is None else float(change.finished),
        "cut_short": None if change.cut_short is None else CutShort(change.cut_short).value,
        "ended": None if change.ended is None else float(change.ended),
        "identity": change.identity_hash(),
        "reasons": reasons_text(change.reasons),
        "pods": change.pods,
        "pods_ran": change.pods_ran,
        "waited": None if change.waited is None else float(change.waited),
    }


def reasons_text(reasons: Iterable[str]) -> str:
    """``changes.reasons``: ``""`` for none (what v4 rows got), else a JSON list of strings.

    JSON rather than a separator: a reason is free text to the ledger (any character but NUL).
    """
    listed = list(reasons)
    return json.dumps(listed, ensure_ascii=False) if listed else ""


def text_reasons(text: str) -> tuple[str, ...]:
    """The inverse of :func:`reasons_text`."""
    return tuple(json.loads(text)) if text else ()


def row_change(row: Any) -> Change:
    """Build a :class:`Change` from a ``changes`` row."""
    return Change(
        cluster=row.cluster,
        namespace=row.namespace,
        workload_kind=row.workload_kind,
        workload=row.workload,
        container=row.container,
        from_image=row.from_image,
        from_digest=row.from_digest,
        to_image=row.to_image,
        to_digest=row.to_digest,
        kind=ChangeKind(row.kind),
        started=float(row.started),
        finished=None if row.finished is None else float(row.finished),
        cut_short=None if row.cut_short is None else CutShort(row.cut_short),
        ended=None if row.ended is None else float(row.ended),
        reasons=text_reasons(row.reasons),
        pods=row.pods,
        pods_ran=row.pods_ran,
        waited=None if row.waited is None else float(row.waited),
    )


def change_kinds(kinds: Iterable[str]) -> list[str]:
    """Validate change kind names; :class:`InputError` names the unknown one."""
    out = []
    for kind in kinds:
        try:
            out.append(ChangeKind(kind).value)
        except ValueError:
            known = ", ".join(k.value for k in ChangeKind)
            raise InputError(f"unknown change kind {kind!r} (known: {known})") from None
    return sorted(set(out))


def workload_condition(table: Table, spec: str) -> ColumnElement[bool]:
    """SQL condition for ``--workload``: any reading of :func:`parse_workload` (the one
    grammar); kinds match case-insensitively."""
    c = table.c

    def reading(r: WorkloadName) -> ColumnElement[bool]:
        conds: list[ColumnElement[bool]] = [c.workload == r.name]
        if r.cluster is not None:
            conds.append(prefix_eq(c.cluster, r.cluster))
        if r.namespace is not None:
            conds.append(prefix_eq(c.namespace, r.namespace))
        if r.kind is not None:
            conds.append(func.lower(c.workload_kind) == r.kind.lower())
        return and_(*conds)

    readings = parse_workload(spec)
    if len(readings) == 1:
        return reading(readings[0])
    return or_(*(reading(r) for r in readings))


def deployment_row(deployment: Deployment) -> Row:
    """Validate ``deployment`` for storage and return its ``deployments`` row.

    Field grammar is checked where events arrive
    (:func:`imagetrail.service.deployments.parse_deployment`); here only what the ledger
    itself cannot hold: NUL, lone surrogates, infinite times.
    """
    d = deployment
    for name in ("id", "cluster", "namespace", "workload", "container", "image", "digest"):
        value = getattr(d, name)
        if value is not None:
            _check_text(value, f"deployment {name}")
    for name in ("commit", "pipeline_url"):
        value = getattr(d, name)
        if value is not None:
            _check_text(value, f"deployment {name}")
    for name in ("deployed_at", "received_at", "commit_time"):
        value = getattr(d, name)
        if value is not None:
            _check_time(value, f"deployment {name}")
    if not d.id or len(d.id) > DEPLOYMENT_ID_MAX:
        raise InputError(f"deployment id must be 1 to {DEPLOYMENT_ID_MAX} characters")
    return {
        "id": d.id,
        "cluster": d.cluster,
        "namespace": d.namespace,
        "workload": d.workload,
        "container": d.container,
        "image": d.image,
        "digest": d.digest,
        "commit_sha": d.commit,
        "commit_time": None if d.commit_time is None else float(d.commit_time),
        "pipeline_url": d.pipeline_url,
        "deployed_at": float(d.deployed_at),
        "received_at": float(d.received_at),
    }


def row_deployment(row: Any) -> Deployment:
    """Build a :class:`Deployment` from a ``deployments`` row."""
    return Deployment(
        id=row.id,
        cluster=row.cluster,
        namespace=row.namespace,
        workload=row.workload,
        container=row.container,
        image=row.image,
        digest=row.digest,
        commit=row.commit_sha,
        commit_time=None if row.commit_time is None else float(row.commit_time),
        pipeline_url=row.pipeline_url,
        deployed_at=float(row.deployed_at),
        received_at=float(row.received_at),
    )


# Controller kinds a two-part ``--workload KIND/NAME`` may start with (events carry no kind).
_KINDS = frozenset(
    {"deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob", "pod", "rollout"}
)


def deployment_matches(spec: str, deployment: Deployment) -> bool:
    """Does a ``--workload`` value name this event's workload? Kinds are not checked (events
    have none); an event without a cluster matches any cluster part."""
    parts = check_workload_spec(spec)
    d = deployment
    if parts[-1] != d.workload:
        return False
    if len(parts) == 2:
        return parts[0] == d.namespace or parts[0].lower() in _KINDS
    if len(parts) == 3:  # namespace/kind/name or cluster/namespace/name
        cluster_ok = d.cluster is None or parts[0] == d.cluster
        return parts[0] == d.namespace or (parts[1] == d.namespace and cluster_ok)
    if len(parts) == 4:
        return parts[1] == d.namespace and (d.cluster is None or parts[0] == d.cluster)
    return True


# -- impact verdicts ----------------------------------------------------------------------------


def impact_row(impact: Impact, *, method: str, computed_at: float) -> Row:
    return {
        "change_key": impact.change.identity_hash(with_finished=True),
        "method": method,
        "verdict": impact.verdict,
        "reason": impact.reason,
        "before_from": impact.before[0],
        "before_to": impact.before[1],
        "after_from": None if impact.after is None else impact.after[0],
        "after_to": None if impact.after is None else impact.after[1],
        "signals": json.dumps([dataclasses.asdict(s) for s in impact.signals]),
        "computed_at": computed_at,
        "events": None
        if impact.events is None
        else json.dumps([dataclasses.asdict(e) for e in impact.events]),
    }


def row_impact(row: Any, change: Change) -> Impact:
    signals = tuple(
        SignalResult(
            **{
                **s,
                "before_values": tuple(s["before_values"]),
                "after_values": tuple(s["after_values"]),
            }
        )
        for s in json.loads(row.signals)
    )
    after = None if row.after_from is None else (row.after_from, row.after_to)
    events = None if row.events is None else tuple(EventCount(**e) for e in json.loads(row.events))
    before = (row.before_from, row.before_to)
    return Impact(change, row.verdict, row.reason, before, after, signals, events)
