"""The impact statistics, the PromQL templates and DORA figures, as pure functions."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import promql_parser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostile import CONTAINER, IMAGE_OLD, POD, WORKLOAD
from imagetrail.analysis.dora import deployments, dora
from imagetrail.analysis.verdict import (
    SignalData,
    Thresholds,
    Windows,
    assess,
    cliffs_delta,
    holm,
    windows,
)
from imagetrail.errors import ConfigError
from imagetrail.model import Change, ChangeKind
from imagetrail.sources.template import pods_regex, substitute

HOSTILE = [CONTAINER, IMAGE_OLD, POD, WORKLOAD, '"} or vector(1) or up{a="', "\\", "a$b"]

T0 = 1_800_000_000.0
H = 3600.0


def change(
    kind: ChangeKind = ChangeKind.UPGRADE,
    started: float = T0,
    finished: float | None = T0 + 120,
    *,
    workload: str = "api",
    container: str = "api",
    to_image: str = "app:2",
    from_image: str = "app:1",
) -> Change:
    return Change(
        "prod", "shop", "Deployment", workload, container, from_image, None, to_image, None,
        kind, started, finished,
    )  # fmt: skip


SPAN = Windows((T0 - H, T0), (T0 + 120, T0 + 120 + H))


# -- statistics --------------------------------------------------------------------------------
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=15),
    st.lists(st.integers(0, 5), min_size=1, max_size=15),
)
def test_cliffs_delta_equals_its_definition(after: list[int], before: list[int]) -> None:
    from scipy.stats import mannwhitneyu

    u, _ = mannwhitneyu(after, before, alternative="two-sided")
    pairs = list(itertools.product(after, before))
    brute = (sum(a > b for a, b in pairs) - sum(a < b for a, b in pairs)) / len(pairs)
    assert cliffs_delta(float(u), len(after), len(before)) == pytest.approx(brute)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10))
def test_holm_adjusts_upwards_keeps_order_and_caps_at_one(ps: list[float]) -> None:
    adjusted = holm(ps)
    assert all(a >= p for a, p in zip(adjusted, ps, strict=True))
    assert all(a <= 1.0 for a in adjusted)
    for i, j in itertools.product(range(len(ps)), repeat=2):
        if ps[i] < ps[j]:
            assert adjusted[i] <= adjusted[j]
    # the smallest p is multiplied by the number of tests
    k = min(range(len(ps)), key=ps.__getitem__)
    assert adjusted[k] == pytest.approx(min(1.0, len(ps) * ps[k]))


def test_holm_known_values() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


NOISE = (0.98, 1.01, 1.0, 0.99, 1.02, 1.0, 0.97, 1.03, 1.0, 0.99, 1.01, 1.0)


def sig(
    name: str, before: tuple[float, ...], after: tuple[float, ...], decides: bool = True
) -> SignalData:
    return SignalData(name, "u", before, after, decides)


def test_a_clear_rise_is_a_regression_with_its_evidence() -> None:
    restarts = sig("restarts", (0.0,) * 12, tuple(3.0 + n for n in NOISE))
    flat = sig("errors", NOISE, tuple(reversed(NOISE)))
    impact = assess(change(), SPAN, [restarts, flat])
    assert impact.verdict == "regression"
    by = {s.name: s for s in impact.signals}
    assert by["restarts"].verdict == "regression"
    assert by["restarts"].effect == pytest.approx(1.0)
    assert by["restarts"].p_value is not None
    assert by["restarts"].p_value < 0.01
    assert by["errors"].verdict == "no-change"
    assert "restarts" in impact.reason


def test_a_clear_fall_is_an_improvement() -> None:
    impact = assess(change(), SPAN, [sig("errors", tuple(5 * n for n in NOISE), NOISE)])
    assert impact.verdict == "improvement"
    assert impact.signals[0].effect == pytest.approx(-1.0)


def test_noise_alone_is_no_change() -> None:
    impact = assess(change(), SPAN, [sig("errors", NOISE, NOISE[::-1]), sig("r", (0.0,) * 12,
                    (0.0,) * 12)])  # fmt: skip
    assert impact.verdict == "no-change"
    assert all(s.p_value is not None and s.p_value > 0.05 for s in impact.signals)


def test_a_significant_but_tiny_shift_is_no_change() -> None:
    # every block 5 % higher: the rank test is sure, the size is not worth a page
    impact = assess(change(), SPAN, [sig("latency", NOISE, tuple(n + 0.05 for n in NOISE))])
    s = impact.signals[0]
    assert s.effect is not None
    assert s.effect > 0.9
    assert impact.verdict == "no-change"


def test_too_few_blocks_is_insufficient_data() -> None:
    impact = assess(change(), SPAN, [sig("restarts", (0.0,) * 12, (9.0,) * 5)])
    assert impact.verdict == "insufficient-data"
    assert impact.signals[0].verdict == "insufficient-data"
    assert impact.signals[0].p_value is None


def test_cpu_and_memory_are_evidence_not_verdicts() -> None:
    impact = assess(change(), SPAN, [sig("memory", NOISE, tuple(2 * n for n in NOISE), False),
                    sig("restarts", (0.0,) * 12, (0.0,) * 12)])  # fmt: skip
    assert impact.signals[0].verdict == "regression"  # the evidence says so...
    assert impact.verdict == "no-change"  # ...but it does not decide


def test_holm_correction_applies_across_deciding_signals() -> None:
    # one weak signal alone is significant; among six it is not
    before, after = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0), (4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
    t = Thresholds(min_effect=0.3)
    alone = assess(change(), SPAN, [sig("x", before, after)], t)
    crowd = assess(change(), SPAN, [sig("x", before, after)] + [
        sig(f"n{i}", NOISE, NOISE) for i in range(5)], t)  # fmt: skip
    assert alone.signals[0].p_value is not None
    assert crowd.signals[0].p_value is not None
    assert crowd.signals[0].p_value > alone.signals[0].p_value


def test_unfinished_added_and_removed_changes_are_not_judged() -> None:
    assert assess(change(finished=None), Windows(SPAN.before, None), []).verdict == (
        "insufficient-data"
    )
    for kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
        assert assess(change(kind), SPAN, [sig("r", (0.0,) * 12, (5.0,) * 12)]).verdict == (
            "insufficient-data"
        )


def test_windows_exclude_the_rollout_and_the_neighbours() -> None:
    c = change(started=T0, finished=T0 + 600)

    def w(prev: float | None = None, nxt: float | None = None, end: float = T0 + 9 * H) -> Windows:
        return windows(c, before=H, after=H, previous_settled=prev, next_started=nxt, data_end=end)

    assert w() == Windows((T0 - H, T0), (T0 + 600, T0 + 600 + H))
    assert w(prev=T0 - 900, nxt=T0 + 1200) == Windows((T0 - 900, T0), (T0 + 600, T0 + 1200))
    assert w(end=T0 + 900).after == (T0 + 600, T0 + 900)


# -- templates ---------------------------------------------------------------------------------
VALUES = {"cluster": "prod", "namespace": "shop", "workload": "api", "container": "app",
          "pods": pods_regex(["api-1", "api-2"])}  # fmt: skip


def matchers(expr: str) -> dict[str, str]:
    out: dict[str, str] = {}
    parsed = promql_parser.parse(expr)
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, promql_parser.VectorSelector):
            out.update({m.name: m.value for m in node.matchers.matchers})
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                stack.append(child)
        for arg in getattr(node, "args", None) or ():
            stack.append(arg)
    return out


TEMPLATE = (
    'sum(rate(http_requests_total{cluster="$cluster",namespace="$namespace",'
    'pod=~"$pods",code=~"5.."}[$__block])) / sum(rate(http_requests_total{'
    'job=~"${workload}-.*",container="$container"}[$__block]))'
)


@given(st.sampled_from(HOSTILE) | st.text(min_size=1, max_size=30))
def test_hostile_values_stay_inside_their_strings(value: str) -> None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return  # not encodable text; quote() refuses it (tested in test_promql)
    values = dict.fromkeys(VALUES, value) | {"pods": pods_regex([value])}
    expr = substitute(TEMPLATE, values, block=300)
    got = matchers(expr)
    assert got["cluster"] == got["namespace"] == got["container"] == value
    assert re.fullmatch(got["pod"], value)  # the pods regex matches the pod name exactly
    assert re.fullmatch(got["job"], value + "-canary")  # regex-escaped inside =~
    assert "[5m]" in expr


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("up{namespace=$namespace}", "outside a quoted string"),
        ("up{namespace='$namespace'}", "quoted string"),
        ('up{namespace="$nope"}', "unknown variable $nope"),
        ('up{namespace="$namespace}', "unterminated string"),
        ('up{namespace="${namespace"}', "unclosed"),
    ],
)
def test_bad_templates_are_refused_clearly(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        substitute(template, VALUES, block=300)


def test_comments_and_escapes_are_left_alone() -> None:
    expr = substitute('up{a="x\\"$namespace"} # $nope', VALUES, block=60)
    assert expr == 'up{a="x\\"shop"} # $nope'


# -- DORA --------------------------------------------------------------------------------------
def test_containers_changing_together_are_one_deployment() -> None:
    a = change(container="app", started=T0)
    b = change(container="proxy", started=T0 + 30)
    again = change(container="app", started=T0 + 60)  # same container again: a new rollout
    found = deployments([a, b, again, change(ChangeKind.ADDED, started=T0 + 90, container="x")])
    assert [d.changes for d in found] == [(a, b), (again,)]


def test_dora_failure_restore_and_lead_time() -> None:
    ok = change(started=T0, finished=T0 + 100)
    bad = change(started=T0 + 2 * H, finished=T0 + 2 * H + 100, to_image="app:3",
                 from_image="app:2")  # fmt: skip
    back = change(ChangeKind.ROLLBACK, started=T0 + 3 * H, finished=T0 + 3 * H + 300,
                  to_image="app:2", from_image="app:3")  # fmt: skip
    regressed = change(started=T0 + 5 * H, finished=T0 + 5 * H + 60, to_image="app:4")
    [fig] = dora(
        [ok, bad, back, regressed],
        start=T0 - H,
        end=T0 + 23 * H,
        regressions=[regressed],
        lead_times={ok: 1800.0},
    )
    assert (fig.deployments, fig.failures, fig.open_failures) == (4, 2, 1)
    assert fig.restore_seconds == (H + 300,)
    assert fig.change_failure_rate == 0.5
    assert fig.deployments_per_day == pytest.approx(4.0)
    assert fig.lead_seconds == (1800.0,)
    assert fig.time_to_restore_median == H + 300


def test_dora_counts_only_the_window_but_restores_after_it() -> None:
    bad = change(started=T0, finished=T0 + 60)
    back = change(ChangeKind.ROLLBACK, started=T0 + H, finished=T0 + H + 60)
    [fig] = dora([bad, back], start=T0 - 10, end=T0 + 10)
    assert (fig.deployments, fig.failures, fig.restore_seconds) == (1, 1, (H + 60,))
    [ns] = dora([bad, back], start=T0 - 10, end=T0 + 2 * H, by="namespace")
    assert (ns.workload, ns.deployments) == (None, 2)


@pytest.mark.parametrize(
    "value",
    [
        "[1, 2]",
        "{a: {namespace: x}}",
        "{a: {query: up, team: x}}",
        "{a: {query: up, namespace: '('}}",
        "{a: 3}",
        "{a: [",
    ],
)
def test_bad_impact_queries_settings_are_refused(value: str) -> None:
    from imagetrail import settings

    with pytest.raises(ConfigError, match="impact_queries"):
        settings.load({}, environ={"IMAGETRAIL_IMPACT_QUERIES": value})


def test_impact_queries_from_a_config_file(tmp_path: Path) -> None:
    from imagetrail import settings

    config = tmp_path / "imagetrail.yaml"
    config.write_text(
        "impact_queries:\n"
        "  errors: 'sum(rate(x{namespace=\"$namespace\"}[$__block]))'\n"
        "  scoped:\n"
        "    query: up\n"
        "    workload: shop/cart\n"
    )
    got = settings.load({}, environ={}, config_path=config).impact_queries
    assert got == {
        "errors": {"query": 'sum(rate(x{namespace="$namespace"}[$__block]))'},
        "scoped": {"query": "up", "workload": "shop/cart"},
    }


SNEAKY = ["a{SEL}b", "POD_SEL", "x[B]y{SECONDS}", 'q"} or vector(1) or up{a="', "w\\n<script>"]


@pytest.mark.parametrize("value", SNEAKY)
def test_builtin_signal_queries_keep_hostile_values_as_values(value: str, tmp_path: Path) -> None:
    from imagetrail import settings
    from imagetrail.service.impact import ImpactRunner
    from imagetrail.service.query import QueryContext

    ctx = QueryContext(
        settings.load({"prometheus_url": "http://127.0.0.1:9", "ledger": str(tmp_path / "l.db")},
                      environ={})
    )  # fmt: skip
    runner = ImpactRunner(ctx)
    key = (value, value, "Deployment", "api", value)
    exprs = runner.expressions(key, [value + "-pod", "api-1"])
    assert len(exprs) == 6
    for _, expr in exprs:
        got = matchers(expr)
        assert got["cluster"] == value
        assert got["namespace"] == value
        assert re.fullmatch(got["pod"], value + "-pod")
        assert not re.fullmatch(got["pod"], value + "-podX")
        if "container" in got:
            assert got["container"] == value
