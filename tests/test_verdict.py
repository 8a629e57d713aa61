"""The verdict: paired tests per metric, one Holm family, sentences that say what they mean."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.inference import holm
from rkdo_tune.verdict import (
    STAGE_CONFIRMATION,
    build_verdict,
    config_label,
    headline,
    verdict_lines,
)

SEEDS = (7, 8, 9)
RKDO = {
    m.EVAL_LINEAR_ACC: {7: 0.90, 8: 0.92, 9: 0.91},
    m.EVAL_KNN_ACC: {7: 0.80, 8: 0.82, 9: 0.815},
    m.EVAL_YARDSTICK_LOSS: {7: 3.0, 8: 3.1, 9: 3.05},
    m.TRAIN_EPOCH_LOSS: {7: 1.6, 8: 1.62, 9: 1.61},
}
ICON = {
    m.EVAL_LINEAR_ACC: {7: 0.91, 8: 0.925, 9: 0.90},
    m.EVAL_KNN_ACC: {7: 0.70, 8: 0.71, 9: 0.702},
    m.EVAL_YARDSTICK_LOSS: {7: 2.0, 8: 2.05, 9: 2.01},
    m.TRAIN_EPOCH_LOSS: {7: 2.3, 8: 2.31, 9: 2.32},
}


def test_each_metric_is_a_paired_test_and_one_holm_family():
    verdict = build_verdict(RKDO, ICON, rkdo_label="α = 0.3", stage=STAGE_CONFIRMATION)
    names = [row.metric for row in verdict.rows]
    assert names == [m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS]
    raw = [
        stats.ttest_rel([RKDO[n][s] for s in SEEDS], [ICON[n][s] for s in SEEDS]).pvalue
        for n in names
    ]
    assert [row.p_holm for row in verdict.rows] == pytest.approx(holm(raw))
    assert verdict.family_size == 3 and verdict.seeds == SEEDS
    linear = verdict.rows[0]
    assert linear.comparison.delta == pytest.approx((0.90 + 0.92 + 0.91 - 0.91 - 0.925 - 0.90) / 3)
    ci = stats.ttest_rel(
        [RKDO[m.EVAL_LINEAR_ACC][s] for s in SEEDS], [ICON[m.EVAL_LINEAR_ACC][s] for s in SEEDS]
    ).confidence_interval()
    assert (linear.comparison.lo, linear.comparison.hi) == pytest.approx((ci.low, ci.high))


def test_winner_only_when_holm_rejects_and_in_the_metric_direction():
    verdict = build_verdict(RKDO, ICON, rkdo_label="α = 0.3")
    by_name = {row.metric: row for row in verdict.rows}
    assert by_name[m.EVAL_LINEAR_ACC].winner is None
    assert by_name[m.EVAL_KNN_ACC].winner == "RKDO"  # higher kNN accuracy is better
    # RKDO's yardstick is higher, and for a loss lower is better.
    assert by_name[m.EVAL_YARDSTICK_LOSS].winner == "I-Con"


def test_sentences_name_the_interval_the_adjusted_p_and_the_seeds():
    verdict = build_verdict(RKDO, ICON, rkdo_label="α = 0.3", stage=STAGE_CONFIRMATION)
    line = headline(verdict, metric=m.EVAL_LINEAR_ACC)
    assert line.startswith("RKDO (α = 0.3) vs I-Con baseline on linear probe: -0.002 [")
    assert "not distinguishable (p_Holm = " in line and "3 fresh seeds" in line
    lines = verdict_lines(verdict)
    assert "Holm over the 3 metrics" in lines[0]
    assert any(text.startswith("- Not comparable: raw training loss") for text in lines)


def test_too_few_seeds_prints_no_p_value():
    two = {k: {7: v[7], 8: v[8]} for k, v in RKDO.items()}
    two_icon = {k: {7: v[7], 8: v[8]} for k, v in ICON.items()}
    verdict = build_verdict(two, two_icon, rkdo_label="α = 0.3")
    assert all(math.isnan(row.p_holm) for row in verdict.rows)
    text = "\n".join(verdict_lines(verdict))
    assert "Too few seeds for a test: 2 pairs, 3 needed" in text
    assert "p_Holm" not in text


def test_config_label():
    assert config_label({"alpha": 0.30421, "depth": 3}) == "α = 0.304, d = 3"
