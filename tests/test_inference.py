"""The comparison statistics against worked examples and scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from rkdo_tune import inference as inf


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
