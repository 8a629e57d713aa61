"""The audit's claim rules and statistics, each against a worked example or scipy directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rkdo_tune.audit import _builders as build
from rkdo_tune.audit._claims import (
    CONTRADICTED,
    SUPPORTED,
    UNDETERMINED,
    adjust,
    decide,
    decide_all,
    saving_interval,
    with_context,
)
from rkdo_tune.survival import ClaimVerdict

SEEDS = (42, 123, 456, 789, 101)


def arm(values: list[float]) -> dict[int, float]:
    return dict(zip(SEEDS, values, strict=False))


def test_holm_within_each_study_and_over_the_audit() -> None:
    """Worked example: p = 0.01, 0.04 (study a) and 0.03 (study b).

    Audit-wide Holm over three: sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06,
    1*0.04 = 0.04 -> made non-decreasing: 0.03, 0.06, 0.06. Study a alone: 2*0.01 = 0.02,
    0.04; study b alone: 0.03.
    """
    low = build.paired_test("a", "one", arm([1, 2, 3]), arm([0, 0, 0]))
    tests = [
        build.Test("a", "one", low.comparison, 0.01),
        build.Test("a", "two", low.comparison, 0.04),
        build.Test("b", "three", low.comparison, 0.03),
    ]
    claims = [
        build.ClaimEvidence(1, "c", "h", "beats", "a", tuple(tests[:2])),
        build.ClaimEvidence(2, "c", "h", "beats", "b", (tests[2],), side_tests=(tests[0],)),
    ]
    adjusted = adjust(claims)
    assert adjusted.audit == pytest.approx(
        {("a", "one"): 0.03, ("a", "two"): 0.06, ("b", "three"): 0.06}
    )
    assert adjusted.study == pytest.approx(
        {("a", "one"): 0.02, ("a", "two"): 0.04, ("b", "three"): 0.03}
    )
    assert adjusted.audit_size == 3  # a test shown twice counts once
    assert adjusted.study_sizes == {"a": 2, "b": 1}


def test_paired_test_is_scipys_ttest_rel() -> None:
    rkdo, icon = [0.91, 0.93, 0.95, 0.90, 0.94], [0.90, 0.90, 0.92, 0.89, 0.90]
    test = build.paired_test("s", "x", arm(rkdo), arm(icon))
    expected = stats.ttest_rel(rkdo, icon)
    assert test.p == pytest.approx(expected.pvalue)
    ci = expected.confidence_interval()
    assert (test.comparison.lo, test.comparison.hi) == pytest.approx((ci.low, ci.high))
    assert test.comparison.delta == pytest.approx(np.mean(np.subtract(rkdo, icon)))


def test_pairs_only_the_seeds_both_arms_have() -> None:
    test = build.paired_test("s", "x", {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.9}, {2: 0.5, 3: 0.6, 4: 0.6})
    assert test.comparison.n == 3
    assert test.comparison.delta == pytest.approx((0.1 + 0.1 + 0.3) / 3)


def test_loss_saving_is_the_papers_measure_per_seed() -> None:
    """100 (L_icon - L_rkdo) / L_icon: seeds (1.0 vs 2.0), (1.5 vs 2.0), (1.0 vs 1.6) give
    50%, 25% and 37.5%; the mean 37.5 with scipy's one-sample t interval."""
    interval = saving_interval(arm([1.0, 1.5, 1.0]), arm([2.0, 2.0, 1.6]))
    assert interval.mean == pytest.approx(37.5)
    ci = stats.ttest_1samp([50.0, 25.0, 37.5], 0).confidence_interval()
    assert (interval.lo, interval.hi) == pytest.approx((ci.low, ci.high))


def _loss_claim(rkdo_probe: list[float], icon_probe: list[float], rkdo_loss: list[float]):
    icon_loss = [2.0] * len(rkdo_loss)
    return build.loss_claim(
        study="budgets",
        loss=(arm(rkdo_loss), arm(icon_loss)),
        probe=(arm(rkdo_probe), arm(icon_probe)),
        yardstick=(arm([4.0] * 5), arm([4.1] * 5)),
    )


def test_claim_1_supported_only_with_a_lower_loss_and_a_better_probe() -> None:
    better = _loss_claim(
        [0.95, 0.96, 0.97, 0.95, 0.96], [0.90, 0.90, 0.91, 0.89, 0.90], [1.3, 1.4, 1.35, 1.3, 1.4]
    )
    rows, _ = decide_all([better])
    assert rows[0].verdict == SUPPORTED
    same = _loss_claim(
        [0.90, 0.91, 0.90, 0.905, 0.90],
        [0.90, 0.90, 0.905, 0.90, 0.901],
        [1.3, 1.4, 1.35, 1.3, 1.4],
    )
    rows, _ = decide_all([same])
    assert rows[0].verdict == CONTRADICTED  # the loss is lower, the probe is not better by δ
    assert "cannot be better" in rows[0].why
    higher = _loss_claim(
        [0.95, 0.96, 0.97, 0.95, 0.96], [0.90, 0.90, 0.91, 0.89, 0.90], [2.3, 2.4, 2.35, 2.3, 2.4]
    )
    assert decide_all([higher])[0][0].verdict == CONTRADICTED
    noisy = _loss_claim(
        [0.99, 0.90, 0.97, 0.85, 0.96], [0.90, 0.95, 0.91, 0.89, 0.90], [1.3, 1.4, 1.35, 1.3, 1.4]
    )
    assert decide_all([noisy])[0][0].verdict == UNDETERMINED


def _points(means: dict[float, list[float]]) -> list[build.Point]:
    return [build.Point(v, f"α = {v:g}", arm(vals)) for v, vals in means.items()]


def test_sensitivity_claim_reads_every_value_and_the_rerun() -> None:
    control = arm([0.90, 0.91, 0.90, 0.92, 0.90])
    points = _points(
        {
            0.1: [0.90, 0.91, 0.905, 0.92, 0.90],
            0.2: [0.95, 0.96, 0.955, 0.97, 0.95],
            0.4: [0.94, 0.95, 0.95, 0.96, 0.95],
            1.0: [0.80, 0.82, 0.81, 0.80, 0.83],
        }
    )
    confirmed = build.Confirmed(
        "α = 0.2", arm([0.95, 0.95, 0.96, 0.95, 0.96]), arm([0.90, 0.91, 0.90, 0.91, 0.90])
    )
    evidence = build.sensitivity_claim(
        number=3,
        claim="c",
        knob="α",
        study="alpha",
        points=points,
        control=control,
        confirmed=confirmed,
        near=lambda x, best: best / 2 <= x <= best * 2,
        near_text="α within ×2 of it",
    )
    assert len(evidence.tests) == 5 and evidence.headline == 4
    assert "re-run (test)" in evidence.tests[4].label
    assert evidence.details[0].endswith("3 of 4 values of α: α = 0.1, α = 0.2, α = 0.4")
    # best α 0.2 (mean 0.957); within ×2: 0.1 (0.907), 0.2 and 0.4 (0.950): loses 0.050
    assert "best α = 0.2 (0.957)" in evidence.details[1]
    assert "loses 0.050" in evidence.details[1] and "(3 values)" in evidence.details[1]
    assert decide_all([evidence])[0][0].verdict == SUPPORTED


def test_sensitivity_without_a_control_is_undetermined_and_says_why() -> None:
    evidence = build.sensitivity_claim(
        number=4,
        claim="c",
        knob="d",
        study="depth",
        points=_points({1.0: [0.9] * 3}),
        control=None,
        confirmed=None,
        near=lambda x, b: abs(x - b) <= 1,
        near_text="",
    )
    row = decide(evidence, adjust([evidence]))
    assert row.verdict == UNDETERMINED and "no I-Con control" in row.why


def test_schedule_claim_tests_against_constant_and_shows_the_control() -> None:
    kinds = [
        build.Point("constant", "constant", arm([0.90, 0.91, 0.90])),
        build.Point("linear", "linear", arm([0.905, 0.90, 0.91])),
        build.Point("cosine", "cosine", arm([0.80, 0.81, 0.79])),
    ]
    evidence = build.schedule_claim(
        study="adaptive",
        kinds=kinds,
        constant="constant",
        control=arm([0.9, 0.9, 0.9]),
        confirmed=None,
    )
    assert [t.label for t in evidence.tests] == [
        "linear vs constant (validation)",
        "cosine vs constant (validation)",
    ]
    assert len(evidence.side_tests) == 3  # every kind against the tuned I-Con
    row = decide_all([evidence])[0][0]
    assert row.verdict == UNDETERMINED  # linear's CI reaches +δ
    only_worse = build.schedule_claim(
        study="adaptive",
        kinds=[kinds[0], kinds[2]],
        constant="constant",
        control=None,
        confirmed=None,
    )
    assert decide_all([only_worse])[0][0].verdict == CONTRADICTED


def test_reversal_needs_a_significant_lead_then_a_significant_deficit() -> None:
    lead = (arm([0.95, 0.96, 0.955, 0.97, 0.95]), arm([0.90, 0.91, 0.90, 0.92, 0.90]))
    trail = (arm([0.85, 0.86, 0.855, 0.87, 0.85]), arm([0.90, 0.91, 0.90, 0.92, 0.90]))
    flat = (arm([0.90, 0.91, 0.90, 0.92, 0.90]), arm([0.901, 0.905, 0.90, 0.918, 0.902]))
    reverses = build.reversal_claim(study="b", budgets={1: lead, 2: lead, 10: trail})
    assert reverses.early == (0, 1)
    assert decide_all([reverses])[0][0].verdict == SUPPORTED
    holds = build.reversal_claim(study="b", budgets={1: lead, 10: lead})
    row = decide_all([holds])[0][0]
    assert row.verdict == CONTRADICTED and "holds" in row.why
    no_lead = build.reversal_claim(study="b", budgets={1: flat, 10: trail})
    assert decide_all([no_lead])[0][0].verdict == CONTRADICTED


def test_early_stop_one_sided_test_is_scipys() -> None:
    given = [0.001, 0.004, 0.0, 0.002, 0.006, 0.003]
    observations = [build.StopObservation(100, 90, g) for g in given]
    evidence = build.early_stop_claim(study="all", observations=observations, never=2)
    expected = stats.ttest_1samp(given, popmean=0.01, alternative="less").pvalue
    assert evidence.tests[0].p == pytest.approx(expected)
    row = decide_all([evidence])[0][0]
    assert row.verdict == SUPPORTED
    assert "6 runs, 2 more never flattened" in row.effect
    costly = [build.StopObservation(100, 90, g) for g in (0.05, 0.06, 0.055, 0.07)]
    assert (
        decide_all([build.early_stop_claim(study="all", observations=costly, never=0)])[0][
            0
        ].verdict
        == CONTRADICTED
    )


def test_early_stop_that_never_fired_is_undetermined() -> None:
    evidence = build.early_stop_claim(study="all", observations=[], never=7)
    row = decide_all([evidence])[0][0]
    assert row.verdict == UNDETERMINED and "never fired" in row.why
    assert math.isnan(row.p_audit)


def test_ratio_claim_keeps_the_step_ratio_rule() -> None:
    verdict = ClaimVerdict(SUPPORTED, "supported: ratio 0.30 ...")
    evidence = build.ratio_claim(
        study="b", ratio=0.3, lo=0.2, hi=0.38, n=5, verdict=verdict, target=0.9
    )
    row = decide_all([evidence])[0][0]
    assert row.verdict == SUPPORTED and row.effect == "step ratio 0.30 [0.20, 0.38] over 5 seeds"
    assert math.isnan(row.p_study)


def test_an_arm_below_the_floor_leaves_the_claim_undetermined() -> None:
    supported = _loss_claim(
        [0.95, 0.96, 0.97, 0.95, 0.96], [0.90, 0.90, 0.91, 0.89, 0.90], [1.3, 1.4, 1.35, 1.3, 1.4]
    )
    below = with_context(supported, context="digits", floors="I-Con not above", floors_pass=False)
    row = decide_all([below])[0][0]
    assert row.verdict == UNDETERMINED and row.why.endswith("does not clear the floor: no claim")
    unchecked = with_context(supported, context="digits", floors="n/a", floors_pass=None)
    assert decide_all([unchecked])[0][0].verdict == SUPPORTED
