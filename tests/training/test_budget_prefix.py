"""Budget points inside one run: under constant schedules the first k epochs of a long run
are a k-epoch run with the same seed, evaluation included (issue 13 §3)."""

from __future__ import annotations

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import load_dataset
from rkdo_tune.errors import UsageError
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


@pytest.mark.parametrize("objective", ["rkdo", "icon"])
def test_a_budget_point_holds_the_whole_result_of_the_k_epoch_run(objective):
    """Every final metric (the extra probes and the diagnostics too), status and history."""
    overrides = {"objective": objective, "stop_early": False}
    long = train(config(3, **overrides), data=DIGITS, budget_epochs=(1, 2, 3))
    assert sorted(long.budgets) == [1, 2]  # the run's own budget is the run itself
    for k, point in long.budgets.items():
        short = train(config(k, **overrides), data=DIGITS)
        assert point.config == short.config
        assert (point.status, point.steps, point.epochs_completed) == (
            short.status,
            short.steps,
            short.epochs_completed,
        )
        assert point.history.eval_steps == short.history.eval_steps
        assert point.history.train[m.TRAIN_LOSS] == short.history.train[m.TRAIN_LOSS]
        assert set(point.metrics) == set(short.metrics)
        for key, value in short.metrics.items():
            assert point.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), (
                k,
                key,
            )


def test_a_run_that_stops_early_ends_every_later_budget_point_the_same_way():
    stopping = {"stop_early": True, "early_stop_threshold": 10.0, "early_stop_patience": 1}
    long = train(config(3, **stopping), data=DIGITS, budget_epochs=(1, 2))
    assert long.status == "early_stopped" and long.steps < 3  # flat at once: 2-step windows
    for k, point in long.budgets.items():
        short = train(config(k, **stopping), data=DIGITS)
        assert (point.status, point.steps, point.reason) == (
            short.status,
            short.steps,
            short.reason,
        )
        assert point.metrics[m.EVAL_LINEAR_ACC] == pytest.approx(short.metrics[m.EVAL_LINEAR_ACC])


def test_budget_points_outside_the_run_are_refused():
    with pytest.raises(UsageError, match="budget point of 4 epochs"):
        train(config(3), data=DIGITS, budget_epochs=(1, 4))


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


def test_under_a_schedule_over_the_total_budget_each_point_is_trained_as_its_own_run():
    kwargs = {"alpha_schedule": "linear", "alpha_min": 0.05, "tau_schedule": "cosine"}
    long = train(config(3, **kwargs), data=DIGITS, budget_epochs=(1, 2))
    assert long.history.eval_epochs == [1, 2, 3]  # no forced evaluation: nothing is read off
    for k, point in long.budgets.items():
        short = train(config(k, **kwargs), data=DIGITS)
        assert point.history.train[m.TRAIN_ALPHA] == short.history.train[m.TRAIN_ALPHA]
        assert point.metrics == pytest.approx(short.metrics, nan_ok=True)


def test_an_icon_run_ignores_the_alpha_schedule_when_it_reads_budget_points():
    from rkdo_tune.training.run_setup import schedules_reading_total

    icon = config(3, objective="icon", alpha_schedule="linear")
    assert schedules_reading_total(icon) == []
    assert schedules_reading_total(config(3, alpha_schedule="linear")) == ["alpha_schedule"]
    assert schedules_reading_total(config(3, objective="icon", tau_schedule="cosine")) == [
        "tau_schedule"
    ]
