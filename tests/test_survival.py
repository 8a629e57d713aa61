"""Kaplan–Meier medians, the paired step ratio and the claim's verdict, on worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rkdo_tune.survival import (
    CLAIM_RULE,
    CONTRADICTED,
    SUPPORTED,
    UNDETERMINED,
    StepRatio,
    claim_verdict,
    distinct_resamples,
    kaplan_meier,
    km_median,
    paired_step_ratio,
)

# Worked example: five seed runs; those at 2 and 5 steps never reached (censored).
DURATIONS = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
OBSERVED = np.array([True, False, True, True, False])


def test_kaplan_meier_on_a_worked_example():
    curve = kaplan_meier(DURATIONS, OBSERVED)
    # By hand: t=1: 5 at risk, 1 event, S = 4/5; t=3: 3 at risk, S = 4/5 * 2/3;
    # t=4: 2 at risk, S = 8/15 * 1/2. Greenwood: sum d / (n (n - d)).
    assert curve.times.tolist() == [1.0, 3.0, 4.0]
    assert curve.at_risk.tolist() == [5.0, 3.0, 2.0]
    assert curve.survival == pytest.approx([0.8, 8 / 15, 4 / 15])
    greenwood = np.cumsum([1 / 20, 1 / 6, 1 / 2])
    sigma = np.sqrt(greenwood) / np.abs(np.log(curve.survival))
    z = stats.norm.ppf(0.975)
    assert curve.lower == pytest.approx(curve.survival ** np.exp(z * sigma))
    assert curve.upper == pytest.approx(curve.survival ** np.exp(-z * sigma))
    assert curve.lower[0] == pytest.approx(0.2038, abs=1e-4)


def test_kaplan_meier_agrees_with_scipys_ecdf():
    rng = np.random.default_rng(1)
    durations = rng.integers(1, 30, 25).astype(float)
    observed = rng.random(25) < 0.7
    ours = kaplan_meier(durations, observed)
    data = stats.CensoredData(uncensored=durations[observed], right=durations[~observed])
    sf = stats.ecdf(data).sf
    band = sf.confidence_interval(0.95, method="log-log")
    assert ours.survival == pytest.approx(sf.evaluate(ours.times))
    defined = (ours.survival > 0) & (ours.survival < 1)
    assert ours.lower[defined] == pytest.approx(band.low.evaluate(ours.times)[defined])
    assert ours.upper[defined] == pytest.approx(band.high.evaluate(ours.times)[defined])


def test_km_median_and_its_interval():
    median = km_median(DURATIONS, OBSERVED)
    assert (median.median, median.n, median.reached) == (4.0, 5, 3)
    assert median.lo == 1.0  # the lower band is 0.204 at t = 1
    assert median.hi == math.inf  # the upper band never falls to 0.5 with five seeds
    uncensored = km_median(np.arange(1.0, 41.0), np.ones(40, dtype=bool))
    assert uncensored.median == 20.0  # S(20) = 0.5 exactly: the first time at or below
    assert uncensored.lo < 20.0 < uncensored.hi < math.inf


def test_km_median_when_half_never_reach_is_undefined():
    median = km_median(np.array([3.0, 9.0, 9.0, 9.0]), np.array([True, False, False, False]))
    assert math.isnan(median.median) and median.reached == 1
    nothing = km_median(np.array([9.0, 9.0]), np.array([False, False]))
    assert math.isnan(nothing.median) and nothing.reached == 0


def test_paired_ratio_is_the_geometric_mean_with_a_seeded_bootstrap():
    rkdo = {1: (20.0, False), 2: (30.0, False), 3: (40.0, False), 9: (5.0, False)}
    icon = {1: (100.0, False), 2: (60.0, False), 3: (80.0, False)}
    estimate = paired_step_ratio(rkdo, icon, seed=7)
    logs = np.log([20 / 100, 30 / 60, 40 / 80])
    assert estimate.n == 3 and estimate.distinct_resamples == 10
    assert estimate.ratio == pytest.approx(math.exp(logs.mean()))
    expected = stats.bootstrap(
        (logs,),
        np.mean,
        n_resamples=9999,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert (estimate.lo, estimate.hi) == pytest.approx(
        (math.exp(expected.low), math.exp(expected.high))
    )
    assert estimate == paired_step_ratio(rkdo, icon, seed=7)  # reproducible
    # Resample means of three values lie between their min and max.
    assert estimate.lo == pytest.approx(0.2) and estimate.hi == pytest.approx(0.5)
    assert estimate.lo < estimate.ratio < estimate.hi


def test_paired_ratio_counts_censored_seeds_and_needs_two_pairs():
    one = paired_step_ratio({1: (10.0, True)}, {1: (50.0, False)})
    assert one.n == 1 and one.ratio == pytest.approx(0.2) and math.isnan(one.lo)
    assert one.rkdo_censored == 1 and one.icon_censored == 0
    same = paired_step_ratio(
        {1: (10.0, False), 2: (20.0, False)}, {1: (50.0, False), 2: (100.0, True)}
    )
    assert (same.lo, same.ratio, same.hi) == pytest.approx((0.2, 0.2, 0.2))
    assert same.icon_censored == 1
    assert [distinct_resamples(n) for n in (3, 4, 5)] == [10, 35, 126]


def ratio(lo: float, hi: float, *, rkdo_censored: int = 0, icon_censored: int = 0) -> StepRatio:
    return StepRatio(math.sqrt(lo * hi), lo, hi, 5, 126, rkdo_censored, icon_censored)


@pytest.mark.parametrize(
    ("estimate", "word"),
    [
        (ratio(0.22, 0.38), SUPPORTED),
        (ratio(0.05, 0.15), SUPPORTED),  # a larger saving than claimed still meets it
        (ratio(0.45, 0.9), CONTRADICTED),
        (ratio(0.3, 0.6), UNDETERMINED),  # straddles 0.4
        (ratio(0.22, 0.38, rkdo_censored=1), UNDETERMINED),  # the RKDO ratio is a lower bound
        (ratio(0.22, 0.38, icon_censored=2), SUPPORTED),  # an I-Con bound only helps I-Con
        (ratio(0.45, 0.9, icon_censored=1), UNDETERMINED),
        (ratio(0.45, 0.9, rkdo_censored=1), CONTRADICTED),
        (StepRatio(0.3, math.nan, math.nan, 1, 1, 0, 0), UNDETERMINED),
    ],
)
def test_claim_verdict_follows_its_printed_rule(estimate, word):
    verdict = claim_verdict(estimate)
    assert verdict.word == word and verdict.line.startswith(f"{word}:")
    assert "\n" not in verdict.line


def test_claim_verdict_lines_say_why():
    assert "larger saving than claimed" in claim_verdict(ratio(0.05, 0.15)).line
    assert "straddles 0.4" in claim_verdict(ratio(0.3, 0.6)).line
    assert "1 RKDO seed(s) censored" in claim_verdict(ratio(0.2, 0.3, rkdo_censored=1)).line
    assert (
        "fewer than 2 matched seeds"
        in claim_verdict(StepRatio(1, math.nan, math.nan, 1, 1, 0, 0)).line
    )
    assert "0.4" in CLAIM_RULE and "censored" in CLAIM_RULE
