"""Margin outcomes (one worked example per rule), the floors gate and the study's context."""

from __future__ import annotations

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.floors import RAW_PIXELS, FloorCheck
from rkdo_tune.judgement import (
    BETTER,
    EQUIVALENT,
    GATE_NEITHER,
    GATE_RKDO,
    INFERIOR,
    NON_INFERIOR,
    UNDETERMINED,
    FloorGate,
    budget_label,
    context_of,
    direction,
    outcome,
)

ACC = m.EVAL_LINEAR_ACC


@pytest.mark.parametrize(
    ("lo", "hi", "p_tost", "expected"),
    [
        (0.002, 0.03, 0.6, BETTER),  # the CI is above 0
        (-0.004, 0.004, 0.01, EQUIVALENT),  # TOST rejects
        (-0.008, 0.02, 0.3, NON_INFERIOR),  # above -δ, TOST does not reject
        (-0.05, -0.001, 0.9, INFERIOR),  # below 0
        (-0.03, 0.02, 0.5, UNDETERMINED),  # reaches below -δ and above 0
    ],
)
def test_each_rule_with_a_margin_of_one_point(lo, hi, p_tost, expected):
    assert outcome(ACC, lo, hi, margin=0.01, p_tost=p_tost) == expected


def test_a_loss_is_turned_so_that_positive_favours_rkdo():
    # RKDO's yardstick loss is lower by 0.1 to 0.3: better, for a loss.
    assert outcome(m.EVAL_YARDSTICK_LOSS, -0.3, -0.1, margin=0.01, p_tost=1.0) == BETTER


def _check(lo: float, hi: float) -> FloorCheck:
    return FloorCheck(ACC, 0.914, RAW_PIXELS, lo, hi, 5)


def test_the_gate_names_the_dataset_and_makes_no_claim_below_the_floor():
    neither = FloorGate(_check(0.86, 0.89), _check(0.85, 0.90))
    assert neither.state == GATE_NEITHER and not neither.allows_claim
    text = neither.sentence("digits")
    assert text.startswith("neither arm beats the raw-pixel floor on digits: no claim")
    only = FloorGate(_check(0.93, 0.95), _check(0.90, 0.92))
    assert only.state == GATE_RKDO
    assert "only RKDO beats the raw-pixel floor on digits" in only.sentence("digits")


def test_context_names_dataset_model_protocol_budget_and_split():
    values = {"dataset": "shapes", "model": "small_cnn", "protocol": "full", "epochs": 3}
    context = context_of({**values, "steps_per_epoch": 100, "batch_size": 64})
    assert context.label() == (
        "shapes, small_cnn, protocol full, 3 epochs × 100 steps, batch 64, test split"
    )
    assert context.on_test  # a record before `eval_split` was scored on test
    assert budget_label(10, None, 64) == "10 full epochs, batch 64"
    held_out = context_of({**values, "eval_split": "validation"})
    assert held_out.label().endswith(", validation split") and not held_out.on_test


def test_directions():
    assert direction(m.EVAL_UNIFORMITY) == "lower is better"
    assert direction(ACC) == "higher is better"
    assert direction(m.EVAL_EFFECTIVE_RANK) == "not a quality measure by itself"
