"""Sync: Prometheus → ledger, in resumable chunks.

Each chunk's spans, its waits (``ksm``: pod containers listed but not running, and why) and the
new sync watermark are written in one transaction, so a sync that is killed resumes exactly where
the last committed chunk ended, and re-reading a chunk merges to the same rows (first_seen = min,
last_seen = max). Chunks are aligned to multiples of the chunk size
so that any two runs cut time the same way.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from imagetrail.analysis import detect_changes
from imagetrail.errors import ImagetrailError, QueryRejected, SourceError
from imagetrail.ledger import Ledger
from imagetrail.model import Change, Signal, Span, Wait
from imagetrail.sources.prometheus import PrometheusSource

log = logging.getLogger("imagetrail.service.sync")

DEFAULT_LOOKBACK = 400 * 86400.0  # how far back "everything the server holds" looks
_EVER = 3650 * 86400.0  # how far back "does the server hold this signal at all" looks
# Samples may land a little late (remote write, slow scrapes): re-read this much of the tail.
TAIL_OVERLAP = 600.0

Progress = Callable[[int, int, float], None]  # (chunks done, chunks total, watermark)


@dataclass(frozen=True, slots=True)
class SyncResult:
    signal: Signal
    start: float
    end: float
    chunks: int
    spans_written: int  # rows inserted or changed: spans and waits
    changes: int
    seconds: float
    # The cluster or namespace filters matched nothing the server holds (nothing was read).
    nothing_matched: bool = False


def sync_key(signal: str, url: str, tenant: str | None = None) -> str:
    """The ledger's name for what has been synced from one source and signal (or ``auto``:
    where a failure to choose the signal is recorded)."""
    return f"{signal}|{url.rstrip('/')}|{tenant or ''}"


def chunks(start: float, end: float, size: float) -> Iterator[tuple[float, float]]:
    """``(a, b]`` pieces covering ``(start, end]``, cut at multiples of ``size``."""
    a = start
    while a < end:
        b = min(end, (math.floor(a / size) + 1) * size)
        yield a, b
        a = b


def choose_signal(source: PrometheusSource, wanted: str, *, start: float, end: float) -> Signal:
    """The signal to read: ``ksm`` when present (digests, exact owners), else ``cadvisor``.

    Judged on what matches the source's filters (a cluster may have only one of them), else
    on what the server holds in the range, else on what it holds at all (in the ten years
    before now): filters or a range that match nothing make an empty answer,
    not a source failure. Only a server holding neither signal at all is an error.
    """
    if wanted in ("ksm", "cadvisor"):
        return "ksm" if wanted == "ksm" else "cadvisor"
    found = source.detect(start=start, end=end)
    if not found and source.filtered:
        found = source.detect(start=start, end=end, filtered=False)
        if found:
            log.info("nothing on the server matches the filters (it holds %s)", found[0])
    if not found:
        # Not in the range: does the server hold either at all? (detect's steps keep this
        # to about 200 points over the ten years.)
        now = time.time()
        found = source.detect(start=now - _EVER, end=now, filtered=False)
        if found:
            log.info("the server holds no %s data in the range (it holds some)", found[0])
    if found:
        return found[0]
    raise SourceError(
        "the server holds neither kube_pod_container_info nor "
        'container_cpu_usage_seconds_total{image!=""}',
        hint="check the URL (and its path prefix) and that kube-state-metrics or the "
        "kubelet's cAdvisor are scraped",
    )


# Words in a server's refusal that mean "ask for less at once" (Prometheus, Thanos, Mimir,
# VictoriaMetrics): the chunk is then read in halves.
_TOO_BIG = (
    "too many samples",
    "maxsamplesperquery",
    "maxuniquetimeseries",
    "maxpointspertimeseries",
    "exceeded maximum resolution",
    "max-fetched-chunks",
    "max-fetched-series",
    "exceeded the limit",
)
MIN_CHUNK = 600.0


def read_chunk(
    source: PrometheusSource, signal: Signal, start: float, end: float, *, waits: bool = False
) -> tuple[list[Span], list[Wait]]:
    """One chunk's spans (and, with ``waits``, its waits); halves the chunk while the server
    says it is too big to answer."""
    try:
        return source.chunk(signal, start, end, waits=waits)
    except QueryRejected as exc:
        text = exc.message.lower()
        if end - start <= MIN_CHUNK or not any(word in text for word in _TOO_BIG):
            raise
        log.info("server refused %s..%s as too big; reading it in halves", start, end)
        mid = start + (end - start) / 2
        early = read_chunk(source, signal, start, mid, waits=waits)
        late = read_chunk(source, signal, mid, end, waits=waits)
        return early[0] + late[0], early[1] + late[1]


def collect(
    source: PrometheusSource,
    signal: Signal,
    start: float,
    end: float,
    *,
    chunk: float,
    concurrency: int = 2,
    waits: bool = False,
    on_chunk: Callable[[float, float, list[Span], list[Wait]], None] | None = None,
) -> list[Span]:
    """Read every span in (start, end], chunk by chunk, results delivered in time order.

    ``waits``: read each chunk's waits too (one more presence query a chunk), handed to
    ``on_chunk`` with its spans; the live path asks for spans only."""
    pieces = list(chunks(start, end, chunk))
    out: list[Span] = []
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        for (a, b), (spans, waited) in zip(
            pieces,
            pool.map(lambda p: read_chunk(source, signal, p[0], p[1], waits=waits), pieces),
            strict=True,
        ):
            if on_chunk is not None:
                on_chunk(a, b, spans, waited)
            out.extend(spans)
    finally:
        # After a failure (or a stop) the chunks not yet started are dropped, not read.
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def merge_in_memory(spans: list[Span]) -> list[Span]:
    """Join pieces of one span cut at chunk borders (what the ledger's merge does)."""
    merged: dict[tuple[object, ...], Span] = {}
    for span in spans:
        key = span.key()
        old = merged.get(key)
        if old is None:
            merged[key] = span
        else:
            merged[key] = replace(
                old,
                first_seen=min(old.first_seen, span.first_seen),
                last_seen=max(old.last_seen, span.last_seen),
            )
    return list(merged.values())


def sync_once(
    ledger: Ledger,
    source: PrometheusSource,
    *,
    url: str,
    tenant: str | None = None,
    signal: str = "auto",
    since: float | None = None,
    until: float | None = None,
    chunk: float = 7 * 86400.0,
    concurrency: int = 2,
    removed_after: float = 3600.0,
    forget_after: float = 7 * 86400.0,
    progress: Progress | None = None,
) -> SyncResult:
    """One pass: bring the ledger up to ``until`` (default now) and re-derive changes.

    A failure is recorded as the sync state's ``last_error`` before it is raised: under the
    chosen signal's key, or, when choosing the signal failed (``auto``), under the ``auto``
    key of the source, which the next pass that chooses one clears."""
    began = time.monotonic()
    end = time.time() if until is None else until
    lookback_start = end - DEFAULT_LOOKBACK if since is None else since
    key = sync_key(signal, url, tenant)
    try:
        chosen = _recorded_signal(ledger, signal, url, tenant) or choose_signal(
            source, signal, start=lookback_start, end=end
        )
    except ImagetrailError as exc:
        _record_error(ledger, source, key, exc)
        raise
    if chosen != signal:
        _clear_error(ledger, key)
    key = sync_key(chosen, url, tenant)
    try:
        start, synced_from = _start(ledger, source, key, chosen, since=since, end=end)
    except ImagetrailError as exc:
        _record_error(ledger, source, key, exc)
        raise
    # Filters that match nothing: nothing to read, and no watermark, so that a later pass
    # reads such data from its start once it appears.
    nothing_matched = start is None
    if start is None:
        start = synced_from = end
    pieces = list(chunks(start, end, chunk)) if end > start else []
    written = 0
    done = 0
    if progress is not None:
        progress(0, len(pieces), start)

    def write(a: float, b: float, spans: list[Span], waits: list[Wait]) -> None:
        nonlocal written, done
        written += ledger.merge_spans(
            spans, waits=waits, sync_key=key, synced_from=synced_from, synced_until=b
        )
        done += 1
        if progress is not None:
            progress(done, len(pieces), b)

    try:
        collect(
            source,
            chosen,
            start,
            end,
            chunk=chunk,
            concurrency=concurrency,
            waits=True,
            on_chunk=write,
        )
    except ImagetrailError as exc:
        _record_error(ledger, source, key, exc)
        raise
    n_changes = rederive_changes(
        ledger,
        tolerance=2 * source.resolution,
        removed_after=removed_after,
        forget_after=forget_after,
    )
    return SyncResult(
        chosen,
        start,
        end,
        len(pieces),
        written,
        n_changes,
        time.monotonic() - began,
        nothing_matched=nothing_matched,
    )


def _start(
    ledger: Ledger,
    source: PrometheusSource,
    key: str,
    chosen: Signal,
    *,
    since: float | None,
    end: float,
) -> tuple[float | None, float | None]:
    """Where this pass starts reading, and the ``synced_from`` it records; ``(None, None)``
    when the source's filters match nothing on a server that holds the signal."""
    state = ledger.sync_state(key)
    done_from = state.synced_from if state is not None else None
    done_until = state.synced_until if state is not None else None
    if done_from is not None and done_until is not None and (since is None or since >= done_from):
        # Resume: re-read a little of the tail, where late samples may have landed.
        return max(done_from, done_until - TAIL_OVERLAP), done_from
    if since is not None:
        # A first sync, or a backfill further back than what is recorded.
        return since, since
    first = source.earliest(chosen, end=end, lookback=DEFAULT_LOOKBACK)
    if first is not None:
        return first, first
    if source.filtered and (
        source.earliest(chosen, end=end, lookback=DEFAULT_LOOKBACK, filtered=False) is not None
    ):
        return None, None
    raise SourceError(f"no {chosen} data on the server in the last 400 days")


def _record_error(ledger: Ledger, source: PrometheusSource, key: str, exc: ImagetrailError) -> None:
    """Keep a failed pass's error as the sync state's ``last_error``; a pass that was asked to
    stop (its source's budget cancelled: ``sync --follow`` on SIGTERM) did not fail."""
    work = source.client.budget
    if work is None or not work.cancelled:
        ledger.record_sync_error(key, exc.message)


def _clear_error(ledger: Ledger, key: str) -> None:
    """Clear the error an earlier pass recorded under ``key`` (choosing the signal failed)."""
    state = ledger.sync_state(key)
    if state is not None and state.last_error is not None:
        # A success with no range: clears last_error, keeps the (empty) range.
        ledger.merge_spans([], sync_key=key)


def _recorded_signal(ledger: Ledger, wanted: str, url: str, tenant: str | None) -> Signal | None:
    """The signal an earlier sync of this source chose: no detection on every --follow pass."""
    if wanted != "auto":
        return None
    for signal in ("ksm", "cadvisor"):
        state = ledger.sync_state(sync_key(signal, url, tenant))
        if state is not None and state.synced_until is not None:
            return signal
    return None


def rederive_changes(
    ledger: Ledger,
    *,
    tolerance: float = 60.0,
    removed_after: float = 3600.0,
    forget_after: float = 7 * 86400.0,
    only_if_stale: bool = False,
) -> int:
    """Recompute every workload container's changes from the spans and waits in the ledger.

    One transaction under the ledger's writer lock (:meth:`Ledger.rederive_changes`), so
    concurrent syncs cannot interleave their change logs. ``only_if_stale``: only when spans
    were written since the changes were last derived (what readers call before reading
    them, so a sync killed before this step still answers right); returns 0 otherwise.
    """

    def derive(spans: list[Span], waits: list[Wait], until: float) -> list[Change]:
        return detect_changes(
            spans,
            since=min(s.first_seen for s in (*spans, *(w.span for w in waits))),
            until=until,
            tolerance=tolerance,
            removed_after=removed_after,
            forget_after=forget_after,
            waits=waits,
        )

    return ledger.rederive_changes(derive, only_if_stale=only_if_stale) or 0
