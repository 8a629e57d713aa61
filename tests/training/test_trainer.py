"""The shared trainer on digits: both objectives run, resume is exact, divergence is caught."""

from __future__ import annotations

import itertools
import math

import pytest

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import load_dataset
from rkdo_tune.evaluation import last_only_metrics
from rkdo_tune.training import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    STATUS_EARLY_STOPPED,
    STATUS_STOPPED,
    CallbackList,
    CheckpointEveryEval,
    TrainCallback,
    Trainer,
    train,
)
from rkdo_tune.training.run_setup import evaluation_steps

DIGITS = load_dataset("digits")


def tiny(**overrides) -> TrialConfig:
    base = {
        "dataset": "digits",
        "epochs": 2,
        "steps_per_epoch": 4,
        "batch_size": 32,
        "slope_window": 2,
        "device": "cpu",
    }
    return TrialConfig(**{**base, **overrides})


class StopAfterEpoch(TrainCallback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_eval(self, *, epoch, **_):
        return epoch >= self.epoch


@pytest.mark.parametrize("objective", ["rkdo", "icon"])
def test_one_trainer_runs_both_objectives(objective):
    result = train(tiny(objective=objective), data=DIGITS)
    assert result.status == STATUS_COMPLETED
    assert result.steps == 8 and result.epochs_completed == 2
    assert result.history.steps == list(range(1, 9))
    assert result.history.eval_epochs == [1, 2]
    for key in (*m.EVAL_METRICS, m.DIAG_EARLY_STOP_STEP, m.DIAG_OVERSPECIALIZED, m.DIAG_STEPS):
        assert key in result.metrics
    assert all(math.isfinite(v) for v in result.history.train[m.TRAIN_LOSS])


def test_same_seed_gives_identical_runs_and_other_seed_differs():
    a = train(tiny(seed=1), data=DIGITS).history.train[m.TRAIN_LOSS]
    b = train(tiny(seed=1), data=DIGITS).history.train[m.TRAIN_LOSS]
    c = train(tiny(seed=2), data=DIGITS).history.train[m.TRAIN_LOSS]
    assert a == b
    assert a != c


def test_resume_from_checkpoint_reproduces_an_uninterrupted_run(tmp_path):
    config = tiny(epochs=3)
    whole = train(config, data=DIGITS)
    first = Trainer(
        config,
        data=DIGITS,
        callback=CallbackList([CheckpointEveryEval(tmp_path), StopAfterEpoch(1)]),
    )
    assert first.run().status == STATUS_STOPPED
    resumed = train(config, data=DIGITS, checkpoint_dir=tmp_path)
    assert resumed.history.train[m.TRAIN_LOSS] == whole.history.train[m.TRAIN_LOSS]
    assert resumed.history.evals[m.EVAL_LINEAR_ACC] == whole.history.evals[m.EVAL_LINEAR_ACC]


def test_non_finite_loss_ends_as_diverged_with_step_and_value():
    result = train(tiny(lr=1e12, epochs=3, steps_per_epoch=5), data=DIGITS)
    assert result.status == STATUS_DIVERGED
    assert "non-finite loss" in result.reason and "at step" in result.reason
    assert result.metrics[m.DIAG_DIVERGED] == 1.0


def test_schedules_feed_alpha_and_tau_each_step():
    config = tiny(
        alpha=0.8, alpha_schedule="linear", alpha_min=0.1, tau_schedule="linear", beta=0.5
    )
    history = train(config, data=DIGITS).history
    alphas, taus = history.train[m.TRAIN_ALPHA], history.train[m.TRAIN_TAU]
    assert alphas[0] == pytest.approx(0.8) and alphas[-1] < alphas[0]
    assert all(x >= y for x, y in itertools.pairwise(alphas))
    assert taus[0] == pytest.approx(0.5) and taus[-1] < taus[0]


def test_temporal_recursion_trains_end_to_end():
    result = train(tiny(recursion="temporal", temporal_anchors=64), data=DIGITS)
    assert result.status == STATUS_COMPLETED
    assert all(math.isfinite(v) for v in result.history.train[m.TRAIN_TENSION])


def test_stop_early_stops_at_the_flat_point():
    config = tiny(epochs=5, stop_early=True, early_stop_threshold=10.0, early_stop_patience=1)
    result = train(config, data=DIGITS)
    assert result.status == STATUS_EARLY_STOPPED
    assert result.steps < 20
    assert result.metrics[m.DIAG_EARLY_STOP_STEP] == result.steps


def test_batch_larger_than_dataset_is_a_usage_error():
    from rkdo_tune.errors import UsageError

    with pytest.raises(UsageError, match="batch_size"):
        Trainer(tiny(batch_size=100_000), data=DIGITS)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["rkdo", "icon"])
def test_three_digits_epochs_beat_chance_clearly(objective):
    config = TrialConfig(objective=objective, dataset="digits", epochs=3, device="cpu")
    result = train(config, data=DIGITS)
    assert result.metrics[m.EVAL_LINEAR_ACC] > 0.5  # chance is 0.1


def test_debug_knobs_inject_a_nan_or_an_error():
    result = train(tiny(debug_nan_at_step=3), data=DIGITS)
    assert result.status == STATUS_DIVERGED and "at step 3" in result.reason
    with pytest.raises(RuntimeError, match="injected failure at step 2"):
        train(tiny(debug_raise_at_step=2), data=DIGITS)


def test_corrupt_checkpoint_restarts_from_scratch_with_a_warning(tmp_path):
    from rkdo_tune.training.checkpoint import CHECKPOINT_FILE

    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint at all")
    with pytest.warns(RuntimeWarning, match="starting from scratch"):
        result = train(tiny(), data=DIGITS, checkpoint_dir=tmp_path)
    assert result.status == STATUS_COMPLETED and result.history.steps[0] == 1


def test_evaluation_points_set_by_steps_fall_mid_epoch_too():
    config = tiny(epochs=3, eval_every_steps=3)
    result = train(config, data=DIGITS)
    # Every 3rd step (3, 6, 9, 12) and each epoch's end (4, 8, 12), once each.
    assert result.history.eval_steps == [3, 4, 6, 8, 9, 12]
    assert evaluation_steps(config, steps_per_epoch=4) == result.history.eval_steps
    sparse = tiny(epochs=5, eval_every=2, eval_every_steps=7)
    assert evaluation_steps(sparse, steps_per_epoch=4) == [7, 8, 14, 16, 20]
    assert result.history.eval_epochs == [0, 1, 1, 2, 2, 3]  # epochs completed at each
    for values in result.history.evals.values():
        assert len(values) == 6  # aligned with eval_steps, whatever the key
    # The costly extra probes run at the last evaluation only: NaN before it.
    for key in last_only_metrics(config.eval_features):
        values = result.history.evals[key]
        assert all(math.isnan(v) for v in values[:-1]) and math.isfinite(values[-1]), key
        assert result.metrics[key] == values[-1]
    assert result.metrics[m.DIAG_PEAK_EVAL_STEP] in result.history.eval_steps


def test_a_monitored_extra_probe_is_computed_at_every_evaluation():
    config = tiny(epochs=2, monitor_metric=m.EVAL_LINEAR_ACC_CV)
    result = train(config, data=DIGITS)
    assert m.EVAL_LINEAR_ACC_CV in last_only_metrics(config.eval_features)
    values = result.history.evals[m.EVAL_LINEAR_ACC_CV]
    assert len(values) == len(result.history.eval_steps) == 2
    assert all(math.isfinite(v) for v in values)


@pytest.mark.parametrize("objective", ["rkdo", "icon"])
def test_evaluating_more_often_does_not_change_what_is_trained(objective):
    plain = train(tiny(objective=objective), data=DIGITS)
    dense = train(tiny(objective=objective, eval_every_steps=3), data=DIGITS)  # 3, 6 mid-epoch
    assert dense.history.eval_steps == [3, 4, 6, 8]
    assert dense.history.train[m.TRAIN_LOSS] == plain.history.train[m.TRAIN_LOSS]
    at_epoch_ends = [dense.history.eval_steps.index(s) for s in plain.history.eval_steps]
    for key, values in plain.history.evals.items():
        if key in m.CURVE_METRICS:  # read off the evaluations themselves: more points, new values
            continue
        picked = [dense.history.evals[key][i] for i in at_epoch_ends]
        assert picked == pytest.approx(values, rel=0, abs=0, nan_ok=True), key
