"""The comparison statistics against worked examples and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rkdo_tune import inference as inf
from rkdo_tune.inference import (
    min_detectable_effect,
    paired,
    paired_power,
    seeds_needed,
    tost_p,
)


def test_holm_worked_example():
    # m = 4, sorted p: 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04).
    adjusted = inf.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_nan_out_of_the_family():
    adjusted = inf.holm([0.5, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(1.0) and adjusted[2] == pytest.approx(1.0)
    assert math.isnan(adjusted[1])
    assert inf.family_size(adjusted) == 2


def test_mean_ci_is_the_t_interval():
    values = [0.9, 0.8, 0.85, 0.95]
    interval = inf.mean_ci(values)
    half = stats.t.ppf(0.975, 3) * stats.tstd(values) / math.sqrt(4)
    assert interval.mean == pytest.approx(0.875)
    assert (interval.lo, interval.hi) == pytest.approx((0.875 - half, 0.875 + half))


def test_mean_ci_one_value_has_no_interval():
    interval = inf.mean_ci([0.7, math.nan])
    assert interval.mean == 0.7 and interval.n == 1 and math.isnan(interval.lo)


def test_paired_worked_example():
    # diff = [0.05, 0, 0.05]: mean 1/30, sd 0.028868, se 1/60, t = 2, df = 2.
    result = inf.paired([0.9, 0.8, 0.85], [0.85, 0.8, 0.8])
    assert result.delta == pytest.approx(1 / 30)
    half = 4.302652729911275 / 60
    assert (result.lo, result.hi) == pytest.approx((1 / 30 - half, 1 / 30 + half))
    assert result.p_t == pytest.approx(0.1835034, abs=1e-6)
    assert math.isnan(result.p_wilcoxon)  # 3 pairs: Wilcoxon can never reject, not shown


def test_paired_wilcoxon_from_six_pairs_and_nan_pairs_dropped():
    a = [0.91, 0.88, 0.93, 0.90, 0.87, 0.92, math.nan]
    b = [0.89, 0.87, 0.90, 0.91, 0.85, 0.88, 0.5]
    result = inf.paired(a, b)
    assert result.n == 6
    assert result.p_wilcoxon == pytest.approx(stats.wilcoxon(a[:6], b[:6]).pvalue)
    assert result.p_t == pytest.approx(stats.ttest_rel(a[:6], b[:6]).pvalue)


def test_paired_too_few_pairs_has_no_p():
    result = inf.paired([0.9, 0.8], [0.7, 0.75])
    assert not result.testable and math.isnan(result.p_t)


def test_identical_arms_are_not_different():
    result = inf.paired([0.9, 0.8, 0.85], [0.9, 0.8, 0.85])
    assert result.p_t == 1.0 and result.delta == 0.0


def test_best_breaks_ties_by_the_earlier_trial():
    means = [0.95, 0.97, 0.97, math.nan]
    ids = ["t_00003", "t_00002", "t_00001", "t_00000"]
    assert inf.best_index(means, ids, mode="max") == 2
    assert inf.rank_order(means, ids, mode="max") == [2, 1, 0, 3]
    assert inf.best_index([0.3, 0.2], ["b", "a"], mode="min") == 1
    assert inf.best_index([math.nan], ["a"], mode="max") is None


def test_mark_ties_one_holm_family_over_the_others():
    per_seed = {
        "best": {1: 0.95, 2: 0.96, 3: 0.97, 4: 0.955},
        "close": {1: 0.949, 2: 0.962, 3: 0.968, 4: 0.951},
        "far": {1: 0.80, 2: 0.81, 3: 0.815, 4: 0.79},
    }
    marks = {mark.trial_id: mark for mark in inf.mark_ties(per_seed, best="best")}
    raw = [
        stats.ttest_rel(list(per_seed["best"].values()), list(per_seed[k].values())).pvalue
        for k in ("close", "far")
    ]
    assert [marks["close"].p_holm, marks["far"].p_holm] == pytest.approx(inf.holm(raw))
    assert marks["best"].tied and marks["close"].tied and not marks["far"].tied
    sentence = inf.tie_sentence(list(marks.values()))
    assert sentence.startswith("2 of 3 configurations are statistically tied with the best")
    assert "Holm over 2 tests" in sentence


def test_mark_ties_uses_shared_seeds_only():
    per_seed = {"a": {1: 0.9, 2: 0.8, 3: 0.85}, "b": {2: 0.7, 3: 0.75, 9: 0.1}}
    mark = inf.mark_ties(per_seed, best="a")[1]
    assert mark.comparison.n == 2 and mark.tied  # two shared seeds: no test, nothing shown


def test_the_same_nonzero_difference_on_every_seed_is_no_test():
    # One test image (1/360) lower on each of three seeds: scipy's t is infinite, p is 0.
    result = inf.paired(
        [0.9639, 0.9611, 0.9667], [0.9639 + 1 / 360, 0.9611 + 1 / 360, 0.9667 + 1 / 360]
    )
    assert result.delta == pytest.approx(-1 / 360)
    assert math.isnan(result.p_t) and not result.testable


# --- equivalence, power and seed planning: a worked example, and statsmodels where installed


def test_worked_example_of_the_issue_five_seeds_of_spread_two_points():
    # sd of the paired difference 0.02: 80% power needs about 3.4 points with 5 seeds
    # and about 6.5 points with 3 (the exact noncentral-t solution).
    assert min_detectable_effect(0.02, 5) == pytest.approx(0.0336, abs=5e-4)
    assert min_detectable_effect(0.02, 3) == pytest.approx(0.0653, abs=5e-4)
    # Non-inferiority at one point (one-sided 2.5%) with that spread: d = 0.5 needs 34 pairs.
    assert seeds_needed(0.02, 0.01) == 34
    assert paired_power(0.0, 0.02, 5) == pytest.approx(0.05, abs=1e-9)


def test_tost_rejects_exactly_when_the_90_percent_interval_is_inside_the_margin():
    diffs = [0.001, -0.002, 0.003, 0.0, 0.002]
    ci = paired([*diffs], [0.0] * 5, confidence=0.90)
    inside = tost_p(diffs, 0.005)
    assert (inside < 0.05) == (ci.lo > -0.005 and ci.hi < 0.005)
    assert tost_p(diffs, 0.0025) > 0.05 and math.isnan(tost_p(diffs[:2], 0.01))


def test_against_statsmodels():
    power = pytest.importorskip("statsmodels.stats.power")
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    rng = np.random.default_rng(0)
    a = rng.normal(0.9, 0.02, 6)
    b = a + rng.normal(0.003, 0.01, 6)
    expected = weightstats.ttost_paired(a, b, -0.01, 0.01)[0]
    assert tost_p(a - b, 0.01) == pytest.approx(expected)
    solver = power.TTestPower()
    assert paired_power(0.03, 0.02, 5) == pytest.approx(solver.power(1.5, 5, 0.05))
    one_sided = solver.power(0.5, 10, 0.025, alternative="larger")
    assert paired_power(0.01, 0.02, 10, alpha=0.025, sided=1) == pytest.approx(one_sided)
    assert min_detectable_effect(0.02, 5) == pytest.approx(
        solver.solve_power(nobs=5, alpha=0.05, power=0.8) * 0.02, rel=1e-6
    )
    n = solver.solve_power(effect_size=0.5, alpha=0.025, power=0.8, alternative="larger")
    assert seeds_needed(0.02, 0.01) == math.ceil(n)
