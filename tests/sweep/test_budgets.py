"""Budget points inside one run (issue 13 §3): the `budgets` section, the report keys that
carry each point, and how a finished trial reads as one trial per point."""

from __future__ import annotations

import math

import pytest

from rkdo_tune.errors import UsageError
from rkdo_tune.sweep._budgets import budget_plan_lines, schedules_reading_total
from rkdo_tune.sweep.protocol import (
    EPOCH_KEY,
    STATUS_KEY,
    TrialSummary,
    budget_key,
    budget_points,
    budget_report,
    budget_source,
    budget_trial_id,
    seed_key,
    with_budget_points,
)
from rkdo_tune.sweep.space import load_space
from rkdo_tune.verdict import STAGE_CONFIRMATION

SPACE = """name: budgets
description: Both objectives once to 4 epochs, read at 1, 2 and 4.
metric: {name: eval/linear_acc}
base: {dataset: digits, steps_per_epoch: 3}
parameters:
  objective: {type: categorical, choices: [rkdo, icon]}
budgets: {epochs: [1, 2, 4]}
search: {algorithm: grid}
"""


def _load(tmp_path, text: str = SPACE, overrides: tuple[str, ...] = ()):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_space(path, overrides=list(overrides))


def test_the_largest_point_is_the_runs_epochs(tmp_path):
    space = _load(tmp_path)
    assert space.budget_epochs == (1, 2, 4)
    assert space.base_config.epochs == 4 and space.base["epochs"] == 4
    assert load_space("paper_protocol").budget_epochs == (1, 2, 5, 10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("budgets.epochs=[2, 1]",), r"budgets\.epochs\[1\]: 1 is invalid: budget points must"),
        (("budgets.epochs=[1, 1]",), r"budgets\.epochs\[1\]: 1 is invalid"),
        (("budgets.epochs=[0, 1]",), r"budgets\.epochs\[0\]"),
        (("budgets.epochs=[]",), r"budgets\.epochs: \[\] is invalid"),
        (("budgets.epochs=2",), r"budgets\.epochs: 2 is invalid"),
        (("budgets.steps=[1]",), r"budgets\.steps: unknown key"),
        (("base.epochs=3",), r"base\.epochs: 3 is invalid: the largest budget point \(4 epochs\)"),
        (("scheduler.kind=asha",), r"scheduler\.kind: 'asha' is invalid: a trial it stops"),
        (
            ("parameters.epochs={type: int, low: 1, high: 4}",),
            r"parameters\.epochs: .* the budget points set the epochs",
        ),
    ],
)
def test_a_bad_budgets_section_is_one_line_naming_the_key(tmp_path, overrides, message):
    with pytest.raises(UsageError, match=message) as caught:
        _load(tmp_path, overrides=overrides)
    assert "\n" not in str(caught.value)


def test_every_schedule_is_accepted_and_the_dry_run_names_those_that_train_points_apart(
    tmp_path,
):
    space = _load(tmp_path, overrides=("base.alpha_schedule=plateau", "base.tau_schedule=constant"))
    assert space.budget_epochs == (1, 2, 4)
    assert schedules_reading_total(space.parameters, space.base_config, space.baseline) == []
    space = _load(
        tmp_path,
        overrides=(
            "base.tau_schedule=cosine",
            "parameters.alpha_schedule={type: categorical, choices: [step, linear]}",
        ),
    )
    reading = schedules_reading_total(space.parameters, space.base_config, space.baseline)
    assert reading == ["parameters.alpha_schedule.choices linear", "base.tau_schedule cosine"]
    first, second = budget_plan_lines(space.budget_epochs, runs=4, reading_total=reading)
    assert "16 training epochs instead of 28" in first
    assert "parameters.alpha_schedule.choices linear" in second and "up to 28" in second


def test_a_baseline_with_its_own_epochs_is_refused(tmp_path):
    text = SPACE.replace(
        "  objective: {type: categorical, choices: [rkdo, icon]}",
        "  alpha: {type: float, low: 0.1, high: 0.9}",
    ).replace("search: {algorithm: grid}", "search: {algorithm: random, num_samples: 2}")
    assert _load(tmp_path, text).baseline is not None
    with pytest.raises(UsageError, match=r"baseline\.epochs: 2 is invalid"):
        _load(tmp_path, text, overrides=("baseline.epochs=2",))


def test_the_dry_run_states_the_training_saved():
    (line,) = budget_plan_lines((1, 2, 5, 10), runs=10, reading_total=[])
    assert "1, 2, 5, 10 epochs" in line and "100 training epochs instead of 180" in line
    assert budget_plan_lines((), runs=10, reading_total=[]) == []


def _final_report() -> dict[str, object]:
    """A trial's final report over seeds 1 and 2, run to 4 epochs, with points 1 and 2."""
    report: dict[str, object] = {"eval/linear_acc": 0.9, STATUS_KEY: "completed", EPOCH_KEY: 4}
    for k, (a, b) in {1: (0.4, 0.6), 2: (0.7, 0.9)}.items():
        report[budget_key(k, "eval/linear_acc")] = (a + b) / 2
        report[budget_key(k, "eval/linear_acc_std")] = math.sqrt(2) * (b - a) / 2
        report[seed_key(1, budget_key(k, "eval/linear_acc"))] = a
        report[seed_key(2, budget_key(k, "eval/linear_acc"))] = b
        report[budget_key(k, STATUS_KEY)] = "completed"
        report[budget_key(k, EPOCH_KEY)] = k
    return report


def test_a_budget_points_keys_read_back_under_their_plain_names():
    report = _final_report()
    assert budget_points(report) == [1, 2]
    assert budget_report(report, 1) == {
        "eval/linear_acc": 0.5,
        "eval/linear_acc_std": pytest.approx(0.1414, abs=1e-4),
        "seed_1/eval/linear_acc": 0.4,
        "seed_2/eval/linear_acc": 0.6,
        STATUS_KEY: "completed",
        EPOCH_KEY: 1,
    }
    assert budget_report(report, 3) == {}


def test_a_finished_trial_reads_as_one_trial_per_budget_point():
    trial = TrialSummary(
        "abc", {"objective": "rkdo"}, 0.9, 0.0, "completed", "", 4, _final_report()
    )
    whole, one, two = with_budget_points(trial, metric="eval/linear_acc", epochs=4)
    assert (whole.trial_id, whole.params) == ("abc", {"objective": "rkdo", "epochs": 4})
    assert (one.trial_id, one.params, one.value, one.epochs) == (
        "abc@e1",
        {"objective": "rkdo", "epochs": 1},
        0.5,
        1,
    )
    assert two.per_seed("eval/linear_acc") == {1: 0.7, 2: 0.9}
    assert budget_source(two.trial_id) == "abc" and budget_source("abc") == "abc"
    assert budget_trial_id("abc", 2) == two.trial_id
    plain = TrialSummary("x", {}, 0.9, 0.0, "completed", "", 4, {"eval/linear_acc": 0.9})
    assert with_budget_points(plain, metric="eval/linear_acc", epochs=4) == [plain]


def test_a_confirmation_trial_is_not_split():
    from rkdo_tune.sweep.protocol import TrialRole

    role = TrialRole(stage=STAGE_CONFIRMATION, confirms="abc@e2")
    trial = TrialSummary("c", {}, 0.9, 0.0, "completed", "", 4, _final_report(), role=role)
    assert with_budget_points(trial, metric="eval/linear_acc", epochs=4) == [trial]
