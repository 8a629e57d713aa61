"""The sweep's closing floors table and the dry run's seed plan (no Ray)."""

from __future__ import annotations

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.errors import UsageError
from rkdo_tune.floors import RANDOM_INIT, RAW_PIXELS, SUPERVISED, FloorKey, References
from rkdo_tune.sweep.plan import SweepPlan
from rkdo_tune.sweep.protocol import SweepOutcome
from rkdo_tune.sweep.space import load_space
from rkdo_tune.sweep.summary import references_lines, seed_plan_lines

REFS = References(
    FloorKey("shapes", "small_cnn", "full", 42),
    {
        RAW_PIXELS: {m.EVAL_LINEAR_ACC: 0.12, m.EVAL_KNN_ACC: 0.13},
        RANDOM_INIT: {m.EVAL_LINEAR_ACC: 0.2, m.EVAL_KNN_ACC: 0.15},
    },
    {SUPERVISED: "not computed: 9000 training steps"},
    test_size=1000,
)


def _outcome(**kwargs) -> SweepOutcome:
    plan = SweepPlan.__new__(SweepPlan)  # the lines read no plan field
    return SweepOutcome(plan, m.EVAL_LINEAR_ACC, "max", (), 0, **kwargs)


def test_the_closing_table_shows_both_floors_and_why_the_ceiling_is_absent():
    text = "\n".join(references_lines(_outcome(references=REFS)))
    assert "floors and ceiling (shapes, small_cnn, protocol full, eval seed 42; 1000 test" in text
    assert "raw-pixel floor" in text and "0.1200" in text and "random-init floor" in text
    assert "not computed: 9000 training steps" in text
    missing = references_lines(_outcome(references_note="floors not computed: boom"))
    assert missing[0] == "floors and ceiling: floors not computed: boom"


def test_the_dry_run_states_the_primary_endpoint_and_the_seed_plan():
    space = load_space("smoke", overrides=["verdict.margin=0.02", "repeats.seeds=[1, 2, 3]"])
    endpoint, plan = seed_plan_lines(space)
    assert "primary endpoint eval/linear_acc" in endpoint and "δ = 0.02" in endpoint
    assert "on 3 search seeds" in endpoint
    assert "sd 0.02: MDE" in plan and "non-inferiority needs 10 seeds" in plan


def test_the_verdict_key_is_validated_at_load():
    default = load_space("smoke").verdict
    assert (default.metric, default.margin) == (m.EVAL_LINEAR_ACC, 0.01)
    for bad, words in (
        ("verdict.margin=0", "it must be > 0"),
        ("verdict.metric=train/loss", "it must be one of eval/linear_acc"),
        ("verdict.marign=0.1", "unknown key"),
    ):
        with pytest.raises(UsageError, match=words):
            load_space("smoke", overrides=[bad])
