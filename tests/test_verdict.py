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


# --- primary endpoint, margin, floors and context ---------------------------------------

from rkdo_tune.floors import RANDOM_INIT, RAW_PIXELS, FloorKey, References  # noqa: E402
from rkdo_tune.judgement import StudyContext  # noqa: E402

CONTEXT = StudyContext("digits", "small_cnn", "paper", "10 epochs × 11 steps, batch 64")


def test_primary_endpoint_is_judged_alone_and_the_rest_form_the_holm_family():
    verdict = build_verdict(RKDO, ICON, rkdo_label="α = 0.3", primary=m.EVAL_KNN_ACC, margin=0.01)
    primary = verdict.primary
    assert primary.metric == m.EVAL_KNN_ACC and primary.p_holm == primary.comparison.p_t
    others = [row for row in verdict.rows if not row.primary]
    raw = [
        stats.ttest_rel([RKDO[r.metric][s] for s in SEEDS], [ICON[r.metric][s] for s in SEEDS])
        for r in others
    ]
    assert [r.p_holm for r in others] == pytest.approx(holm([t.pvalue for t in raw]))
    assert verdict.family_size == 2
    assert primary.outcome == "better"  # RKDO's kNN is about 0.11 higher on every seed
    line = headline(verdict, metric=m.EVAL_LINEAR_ACC)  # the primary endpoint wins the headline
    assert "on primary endpoint kNN accuracy" in line and "better at δ = 0.01" in line


def test_every_line_names_the_context_and_power_is_stated():
    verdict = build_verdict(
        RKDO, ICON, rkdo_label="α = 0.3", primary=m.EVAL_LINEAR_ACC, context=CONTEXT
    )
    lines = verdict_lines(verdict)
    assert all(CONTEXT.label() in line for line in lines if "RKDO (" in line)
    power = next(line for line in lines if line.startswith("- Power:"))
    assert "80% power" in power and "seeds" in power


def test_no_claim_where_neither_arm_beats_the_floor():
    refs = References(
        FloorKey("digits", "small_cnn", "paper", 42),
        {RAW_PIXELS: {m.EVAL_LINEAR_ACC: 0.95}, RANDOM_INIT: {m.EVAL_KNN_ACC: 0.5}},
        test_size=141,
    )
    verdict = build_verdict(
        RKDO,
        ICON,
        rkdo_label="α = 0.3",
        primary=m.EVAL_LINEAR_ACC,
        context=CONTEXT,
        references=refs,
    )
    line = headline(verdict, metric=m.EVAL_LINEAR_ACC)
    assert "neither arm beats the raw-pixel floor on digits: no claim" in line
    assert "better" not in line and "non-inferior" not in line
    knn = next(row for row in verdict.rows if row.metric == m.EVAL_KNN_ACC)
    assert verdict.gates[m.EVAL_KNN_ACC].allows_claim and knn.winner == "RKDO"
    text = "\n".join(verdict_lines(verdict))
    assert "Floors (digits, small_cnn, protocol paper, eval seed 42, 141 test images)" in text


def test_wilcoxon_is_printed_only_from_six_pairs():
    def six(arm):  # six seeds: the three, and the three again with a small shift
        return {k: {**v, **{s + 3: x + 0.001 for s, x in v.items()}} for k, v in arm.items()}

    with_six = "\n".join(verdict_lines(build_verdict(six(RKDO), six(ICON), rkdo_label="x")))
    assert "p_Wilcoxon" in with_six
    assert "p_Wilcoxon" not in "\n".join(verdict_lines(build_verdict(RKDO, ICON, rkdo_label="x")))
