"""Budget points inside one run: under constant schedules the first k epochs of a long run
are a k-epoch run with the same seed, evaluation included (issue 13 §3)."""

from __future__ import annotations

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import load_dataset
from rkdo_tune.evaluation import last_only_metrics
from rkdo_tune.schedules import schedules_over_total
from rkdo_tune.training import train

DIGITS = load_dataset("digits")


def config(epochs: int, **overrides) -> TrialConfig:
    base = {
        "dataset": "digits",
        "steps_per_epoch": 3,
        "batch_size": 32,
        "slope_window": 2,
        "device": "cpu",
        "protocol": "paper",
    }
    return TrialConfig(**{**base, "epochs": epochs, **overrides})


@pytest.mark.parametrize("objective", ["rkdo", "icon"])
def test_the_eval_at_epoch_k_of_a_long_run_is_the_final_eval_of_a_k_epoch_run(objective):
    long = train(config(3, objective=objective), data=DIGITS)
    assert schedules_over_total(alpha_schedule="constant", tau_schedule="level") == []
    for k in (1, 2):
        short = train(config(k, objective=objective), data=DIGITS)
        at_k = long.history.eval_epochs.index(k)
        extras = last_only_metrics(short.config.eval_features)  # the long run's last eval only
        for key in (*(k for k in m.EVAL_METRICS if k not in extras), m.TRAIN_EPOCH_LOSS):
            assert long.history.evals[key][at_k] == pytest.approx(
                short.metrics[key], rel=1e-6, abs=1e-9
            ), (k, key)
        assert long.history.train[m.TRAIN_LOSS][: 3 * k] == short.history.train[m.TRAIN_LOSS]


def test_a_schedule_over_the_total_budget_makes_the_prefix_a_different_run():
    kwargs = {"alpha_schedule": "linear", "alpha_min": 0.05}
    assert schedules_over_total(alpha_schedule="linear", tau_schedule="cosine") == [
        "alpha_schedule",
        "tau_schedule",
    ]
    assert schedules_over_total(alpha_schedule="step", tau_schedule="level") == []
    long = train(config(3, **kwargs), data=DIGITS)
    short = train(config(1, **kwargs), data=DIGITS)
    # alpha falls over T steps: at step 2 the 1-epoch run is further down its schedule.
    assert long.history.train[m.TRAIN_ALPHA][1] > short.history.train[m.TRAIN_ALPHA][1]
