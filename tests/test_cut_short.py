"""A rollout cut short (aborted or superseded) is over, not in progress, for every consumer of
changes: DORA, impact, the report, Grafana annotations, deploy matching, the exporter's state.

The changes are built directly (``finished=None, cut_short=..., ended=...``), as change
detection makes them, so these tests do not depend on how detection finds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from imagetrail.analysis.current import current_state
from imagetrail.analysis.dora import deployments, dora
from imagetrail.analysis.leadtime import lead_time, match_deployments
from imagetrail.analysis.verdict import SignalData, Windows, assess, windows
from imagetrail.cli.deploy import _show
from imagetrail.grafana.annotate import annotation_for, summary
from imagetrail.model import Change, ChangeKind, CutShort, Deployment, Impact, Span
from imagetrail.report.model import Report, ReportChange, Summary
from imagetrail.report.render import render_html, render_markdown, render_summary, state_text
from imagetrail.service.deployments import match_json
from imagetrail.service.impact import is_final
from imagetrail.timeutil import format_time

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
H = 3600.0
BLOCKS = tuple(float(i % 3) for i in range(12))


def change(
    kind: ChangeKind = ChangeKind.UPGRADE,
    started: float = T0,
    finished: float | None = T0 + 120,
    *,
    from_image: str = "ghcr.io/acme/api:1.0",
    to_image: str = "ghcr.io/acme/api:1.1",
    cut_short: CutShort | None = None,
    ended: float | None = None,
    container: str = "api",
) -> Change:
    return Change(
        "prod", "shop", "Deployment", "api", container, from_image, None, to_image, None,
        kind, started, finished, cut_short, ended,
    )  # fmt: skip


# The story used below: 1.0 → 1.1 starts at T0 and is given up at T0 + 10 min for 1.0 again
# (a rollback that finishes 5 minutes later).
ABORTED = change(finished=None, cut_short=CutShort.ABORTED, ended=T0 + 600)
BACK = change(
    ChangeKind.ROLLBACK,
    T0 + 600,
    T0 + 900,
    from_image="ghcr.io/acme/api:1.1",
    to_image="ghcr.io/acme/api:1.0",
)
SUPERSEDED = replace(ABORTED, cut_short=CutShort.SUPERSEDED)
IN_PROGRESS = change(finished=None)


def test_the_model_says_cut_short_changes_are_settled() -> None:
    assert (ABORTED.state, ABORTED.settled) == ("aborted", T0 + 600)
    assert (SUPERSEDED.state, SUPERSEDED.settled) == ("superseded", T0 + 600)
    assert (IN_PROGRESS.state, IN_PROGRESS.settled) == ("in-progress", None)


# -- DORA ----------------------------------------------------------------------------------------
def figures(changes: list[Change]) -> tuple[int, int, int, tuple[float, ...]]:
    [fig] = dora(changes, start=T0 - H, end=T0 + 23 * H)
    return fig.deployments, fig.failures, fig.open_failures, fig.restore_seconds


def test_an_aborted_rollout_is_one_failed_deployment_restored_by_the_rollback() -> None:
    # Aborted and followed by a rollback: one failure, not two; restored when the rollback
    # finished (15 minutes after the failed deployment started).
    assert figures([ABORTED, BACK]) == (2, 1, 0, (900.0,))


def test_an_aborted_rollout_fails_without_a_rollback_after_it() -> None:
    # Going back by an "upgrade" (an aborted downgrade is undone by a newer version) or by a
    # change that is no rollback: still a failed deployment.
    undo = replace(BACK, kind=ChangeKind.UPGRADE)
    assert figures([ABORTED, undo]) == (2, 1, 0, (900.0,))
    # The rollout that undid it was itself cut short by a later version: restored when it
    # was given up for that version.
    undo_cut = replace(undo, finished=None, cut_short=CutShort.SUPERSEDED, ended=T0 + 700)
    later = change(started=T0 + 700, finished=T0 + 800, from_image="ghcr.io/acme/api:1.0",
                   to_image="ghcr.io/acme/api:1.2")  # fmt: skip
    assert figures([ABORTED, undo_cut, later]) == (3, 1, 0, (700.0,))


def test_a_failure_whose_fix_was_aborted_stays_open() -> None:
    failed = change(finished=T0 + 120)
    fix = replace(
        BACK, started=T0 + H, finished=None, cut_short=CutShort.ABORTED, ended=T0 + H + 60
    )
    again = change(started=T0 + H + 60, finished=T0 + H + 90)
    [fig] = dora([failed, fix, again], start=T0 - H, end=T0 + 23 * H)
    # `failed` is rolled back (the next is a rollback) but the rollback was aborted: open;
    # the aborted rollback is a failure too, restored by `again`.
    assert (fig.failures, fig.open_failures, fig.restore_seconds) == (2, 1, (90.0,))


def test_a_superseded_rollout_is_no_failure_and_settles_its_deployment() -> None:
    nxt = change(started=T0 + 600, finished=T0 + 700, from_image="ghcr.io/acme/api:1.1",
                 to_image="ghcr.io/acme/api:1.2")  # fmt: skip
    assert figures([SUPERSEDED, nxt]) == (2, 0, 0, ())
    [first, _] = deployments([SUPERSEDED, nxt])
    assert (first.settled, first.aborted) == (T0 + 600, False)
    [aborted, _] = deployments([ABORTED, BACK])
    assert (aborted.settled, aborted.aborted) == (T0 + 600, True)


# -- impact --------------------------------------------------------------------------------------
def test_a_cut_short_change_gets_a_final_insufficient_data_verdict_naming_it() -> None:
    span = windows(ABORTED, before=H, after=H, previous_settled=None, next_started=T0 + 600,
                   data_end=T0 + 9 * H)  # fmt: skip
    assert span == Windows((T0 - H, T0), None)
    result = assess(ABORTED, span, [SignalData("restarts", "restarts/h", BLOCKS, ())])
    assert result.verdict == "insufficient-data"
    assert result.reason == (
        f"the rollout was aborted at {format_time(T0 + 600)} before it finished"
    )
    assert "has not finished" not in result.reason
    superseded = assess(SUPERSEDED, span, [])
    assert superseded.reason.startswith("the rollout was superseded at ")
    # Final: a cut-short verdict is recorded at once, even with the data ending right there.
    assert is_final(result, data_end=T0 + 601)
    # An in-progress change's verdict is not (it may still finish).
    still = assess(IN_PROGRESS, Windows((T0 - H, T0), None), [])
    assert still.reason == "the rollout has not finished"
    assert not is_final(still, data_end=T0 + 9 * H)


def test_the_next_before_window_stays_out_of_the_rollout_given_up() -> None:
    # BACK started when ABORTED was given up: its before-window would be ABORTED's rollout.
    prev_settled = ABORTED.settled
    span = windows(BACK, before=H, after=H, previous_settled=prev_settled, next_started=None,
                   data_end=T0 + 9 * H)  # fmt: skip
    assert span.before == (BACK.started, BACK.started)  # empty, not (T0 - 50 min, ...)
    result = assess(BACK, span, [SignalData("restarts", "restarts/h", (), BLOCKS)])
    assert result.verdict == "insufficient-data"


def test_is_final_for_finished_changes_is_unchanged() -> None:
    done = Impact(BACK, "no-change", "", (T0, T0 + 600), (T0 + 900, T0 + 900 + H), ())
    assert is_final(done, data_end=T0 + 9 * H)
    assert not is_final(done, data_end=T0 + 900 + H)


# -- deploy matching and lead time ---------------------------------------------------------------
def event(commit_time: float | None = T0 - H) -> Deployment:
    return Deployment("ev-1", "shop", "api", "ghcr.io/acme/api:1.1", None, T0 + 5, T0 + 5,
                      commit_time=commit_time)  # fmt: skip


def test_a_cut_short_rollout_has_no_lead_time() -> None:
    assert lead_time(event(), ABORTED) is None
    assert lead_time(event(), SUPERSEDED) is None
    assert lead_time(event(), IN_PROGRESS) == H  # commit → started while it runs
    assert lead_time(event(), change()) == H + 120


def test_deploy_list_says_why_a_cut_short_rollout_has_no_lead_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [m] = match_deployments([event()], [ABORTED, BACK], window=600)
    assert m.change == ABORTED
    _show([match_json(m)], "table", title="deployments")
    out = capsys.readouterr().out
    assert "aborted" in out
    assert "none: the" in out  # lead time column, cut by the terminal width maybe
    assert "in progress" not in out


# -- Grafana annotations -------------------------------------------------------------------------
def test_an_annotation_of_a_cut_short_rollout_ends_when_it_was_given_up() -> None:
    body = annotation_for(ABORTED)
    assert body["timeEnd"] == round((T0 + 600) * 1000)
    assert "aborted" in body["tags"]
    assert body["tags"][-1].startswith("change:")
    assert summary(ABORTED).endswith("(rollout aborted)")
    assert "timeEnd" not in annotation_for(IN_PROGRESS)
    assert "aborted" not in annotation_for(BACK)["tags"]


# -- the report ----------------------------------------------------------------------------------
def report_of(*changes: Change) -> Report:
    # Listed as notable ("downgrade"): the chat summary names only notable changes.
    listed = tuple(ReportChange(c, None, "downgrade") for c in changes)
    return Report(
        generated=T0 + H,
        start=T0 - H,
        end=T0 + H,
        scope="all clusters",
        stale_after=90 * 86400.0,
        summary=Summary(len(changes), 1, 0, None, 0, 0),
        notable=listed,
        notable_total=len(listed),
        stale=(),
        floating=(),
        namespaces=(),
        heatmap_png=None,
        heatmap_rows_hidden=0,
        impact_note="impact not requested",
        link=None,
    )


def test_state_text() -> None:
    assert state_text(BACK) == ""
    assert state_text(IN_PROGRESS) == "in progress"
    assert state_text(ABORTED) == "aborted 08:10"
    assert state_text(SUPERSEDED) == "superseded 08:10"
    next_day = replace(ABORTED, ended=T0 + 86400 + 60)
    assert state_text(next_day) == "aborted 2027-01-16 08:01 UTC"


@pytest.mark.parametrize(
    "render",
    [
        lambda r: render_markdown(r),
        lambda r: render_html(r, inline_images=True),
        lambda r: render_summary(r),
    ],
    ids=["markdown", "html", "summary"],
)
def test_the_report_shows_a_cut_short_rollout_as_given_up(render: Callable[[Report], str]) -> None:
    assert format_time(T0).startswith("2027-01-15T08:00")
    text = render(report_of(ABORTED))
    assert "aborted 08:10" in text
    assert "in progress" not in text
    assert "in progress" in render(report_of(IN_PROGRESS))
    assert "aborted" not in render(report_of(BACK))


# -- the exporter's state ------------------------------------------------------------------------
def span(pod: str, image: str, first: float, last: float) -> Span:
    return Span("prod", "shop", "Deployment", "api", pod, "api", image, None, first, last)


@pytest.mark.parametrize(
    ("newest", "in_progress"),
    [(ABORTED, False), (SUPERSEDED, False), (IN_PROGRESS, True), (BACK, False)],
)
def test_rollout_in_progress_only_for_a_rollout_in_progress(
    newest: Change, in_progress: bool
) -> None:
    spans = [
        span("api-a", "ghcr.io/acme/api:1.0", T0 - H, T0 + H),
        span("api-b", "ghcr.io/acme/api:1.1", T0, T0 + H),  # left behind, still running
    ]
    [state] = current_state(spans, [newest], at=T0 + H, window=86400.0)
    assert state.rollout_in_progress is in_progress


# -- every consumer at once ------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [ABORTED, SUPERSEDED])
def test_no_consumer_treats_a_cut_short_rollout_as_in_progress(cut: Change) -> None:
    """One place that fails when any consumer falls back to "finished is None = running"."""
    spans = [span("api-a", "ghcr.io/acme/api:1.0", T0 - H, T0 + H)]
    [state] = current_state(spans, [cut], at=T0 + H, window=86400.0)
    assert not state.rollout_in_progress
    verdict = assess(cut, Windows((T0 - H, T0), None), [])
    assert "has not finished" not in verdict.reason
    assert cut.state in verdict.reason
    assert is_final(verdict, data_end=T0 + 9 * H)
    assert "timeEnd" in annotation_for(cut)
    [dep] = deployments([cut])
    assert dep.settled == cut.ended
    for text in (render_markdown(report_of(cut)), render_summary(report_of(cut))):
        assert "in progress" not in text
        assert cut.state in text
    assert lead_time(event(), cut) is None
