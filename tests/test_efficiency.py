"""eval/linear_acc_auc: the probe's area under its curve over steps, over the steps trained."""

from __future__ import annotations

import math

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.efficiency import curve_scores, running_auc


def test_a_hand_worked_curve():
    # Evaluations at steps 10, 20, 40 reading 0.5, 0.7, 0.9:
    # 10 x 0.5 (held back to step 0) + 10 x (0.5 + 0.7) / 2 + 20 x (0.7 + 0.9) / 2
    # = 5 + 6 + 16 = 27 over 40 steps.
    assert running_auc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(27 / 40)
    # Each running value is the final value of the run that stopped there.
    assert running_auc([10, 20], [0.5, 0.7]) == pytest.approx(11 / 20)
    assert running_auc([10], [0.5]) == pytest.approx(0.5)


def test_a_constant_curve_scores_its_value_and_an_earlier_rise_scores_more():
    assert running_auc([5, 10, 15, 20], [0.8] * 4) == pytest.approx(0.8)
    early = running_auc([5, 10, 15, 20], [0.6, 0.9, 0.9, 0.9])
    late = running_auc([5, 10, 15, 20], [0.6, 0.6, 0.6, 0.9])
    assert early > late  # the same final accuracy, reached sooner


def test_edge_cases():
    assert math.isnan(running_auc([], []))
    assert running_auc([0], [0.4]) == 0.4  # an evaluation before any step
    assert math.isnan(running_auc([5, 10, 15], [0.5, math.nan, 0.7]))  # a NaN spoils the rest
    assert running_auc([5, 5, 10], [0.5, 0.6, 0.6]) == pytest.approx((2.5 + 3.0) / 10)
    with pytest.raises(ValueError, match="ascending"):
        running_auc([10, 5], [0.5, 0.6])
    with pytest.raises(ValueError, match="one length"):
        running_auc([10, 20], [0.5])


def test_curve_scores_add_the_new_evaluation_to_the_history():
    evals = {m.EVAL_LINEAR_ACC: [0.5, 0.7], m.EVAL_KNN_ACC: [0.1, 0.2]}
    scores = curve_scores([10, 20], evals, 40, {m.EVAL_LINEAR_ACC: 0.9})
    assert scores == {m.EVAL_LINEAR_ACC_AUC: pytest.approx(27 / 40)}
    assert curve_scores([], {}, 10, {m.EVAL_LINEAR_ACC: 0.5}) == {m.EVAL_LINEAR_ACC_AUC: 0.5}
