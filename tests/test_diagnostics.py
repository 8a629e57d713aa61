import math

import numpy as np
import pytest

from rkdo_tune import metrics
from rkdo_tune.diagnostics import (
    early_stop_step,
    loss_slopes,
    overspecialisation,
    sliding_slope,
    steps_to_target,
    summarize_history,
    target_censoring,
)
from rkdo_tune.errors import UsageError


def decay_then_flat(flat_from: int, total: int, rate: float = 0.01) -> np.ndarray:
    """Loss decaying exponentially (log-slope -rate) until `flat_from`, then exactly flat."""
    t = np.arange(total, dtype=np.float64)
    return 5.0 * np.exp(-rate * np.minimum(t, flat_from))


# --- slopes ----------------------------------------------------------------------------


@pytest.mark.parametrize("window", [2, 5, 17])
def test_sliding_slope_matches_polyfit(window):
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=120)) + 0.3 * np.arange(120)
    slopes = sliding_slope(y, window=window)
    assert slopes.shape == y.shape
    assert np.isnan(slopes[: window - 1]).all()
    for end in (window - 1, 40, 77, 119):
        x = np.arange(end - window + 1, end + 1)
        expected = np.polyfit(x, y[x], 1)[0]
        assert slopes[end] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_sliding_slope_short_and_nonfinite():
    assert np.isnan(sliding_slope(np.arange(3.0), window=5)).all()
    y = np.arange(20.0)
    y[10] = np.nan
    slopes = sliding_slope(y, window=4)
    # Windows ending at 10..13 hold the NaN; the others still see slope 1.
    assert np.isnan(slopes[10:14]).all()
    np.testing.assert_allclose(slopes[3:10], 1.0)
    np.testing.assert_allclose(slopes[14:], 1.0)
    with pytest.raises(UsageError, match="slope_window"):
        sliding_slope(y, window=1)


def test_loss_slopes_log_of_nonpositive_is_nan():
    losses = np.exp(-0.1 * np.arange(30.0))
    raw, log = loss_slopes(losses, window=5)
    np.testing.assert_allclose(log[4:], -0.1, rtol=1e-9)
    assert (raw[4:] < 0).all()
    losses[20] = 0.0
    _, log = loss_slopes(losses, window=5)
    assert np.isnan(log[20:25]).all()
    assert np.isfinite(log[25:]).all()


# --- early stop ------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "patience"), [(10, 1), (20, 1), (10, 3)])
def test_early_stop_right_after_flattening(window, patience):
    flat_from = 203
    losses = decay_then_flat(flat_from, 600)
    steps = np.arange(losses.size)
    stop = early_stop_step(steps, losses, window=window, threshold=1e-3, patience=patience)
    assert stop is not None
    # The first all-flat window starts within one window of the flattening point;
    # `patience` flat windows later a trainer could stop.
    assert flat_from <= stop < flat_from + window * (patience + 1)
    assert (stop + 1) % window == 0


def test_early_stop_uses_real_steps_and_raw_scale():
    losses = decay_then_flat(100, 300)
    steps = 5 * np.arange(losses.size)  # logged every 5 optimiser steps
    stop = early_stop_step(steps, losses, window=10, threshold=1e-3, patience=1)
    assert stop is not None and 500 <= stop < 500 + 5 * 20
    # Raw slope of the decay is at most 0.05 per entry, 0.01 per step: threshold 0.1 stops at once.
    assert early_stop_step(steps, losses, window=10, threshold=0.1, patience=1, use_log=False) == 45


def test_linear_decrease_never_stops():
    steps = np.arange(500)
    losses = 10.0 - 0.01 * steps  # log-slope <= -0.001 everywhere, raw slope -0.01
    assert early_stop_step(steps, losses, window=10, threshold=1e-3, patience=1) is None
    assert (
        early_stop_step(steps, losses, window=10, threshold=5e-3, patience=1, use_log=False) is None
    )


def test_early_stop_nan_breaks_the_run():
    losses = np.ones(40)
    losses[15] = np.nan
    steps = np.arange(40)
    # Windows [0,10) flat, [10,20) has NaN, [20,30) and [30,40) flat: patience 2 -> step 39.
    assert early_stop_step(steps, losses, window=10, threshold=1e-3, patience=2) == 39
    assert early_stop_step(steps[:5], losses[:5], window=10, threshold=1e-3, patience=1) is None


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"window": 1, "threshold": 1e-3, "patience": 1}, "slope_window"),
        ({"window": 5, "threshold": 0.0, "patience": 1}, "early_stop_threshold"),
        ({"window": 5, "threshold": 1e-3, "patience": 0}, "early_stop_patience"),
    ],
)
def test_early_stop_rejects_bad_settings(options, key):
    with pytest.raises(UsageError, match=key):
        early_stop_step(np.arange(20), np.ones(20), **options)


# --- overspecialisation ----------------------------------------------------------------


def falling_train(n: int = 101) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(n)
    return steps, 3.0 * np.exp(-0.02 * steps) + 1.0


def test_peak_then_drop_with_falling_train_loss_is_flagged():
    eval_steps = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    eval_values = np.array([0.20, 0.25, 0.31, 0.33, 0.31, 0.30, 0.29, 0.28, 0.28, 0.27])
    report = overspecialisation(eval_steps, eval_values, *falling_train(), mode="max", delta=0.02)
    assert report.peak_step == 40
    assert report.peak_value == pytest.approx(0.33)
    assert report.final_value == pytest.approx(0.27)
    assert report.drop == pytest.approx(0.06)
    assert report.train_loss_fell_after_peak
    assert report.overspecialized
    with pytest.raises(AttributeError):
        report.drop = 0.0  # frozen


def test_rising_eval_is_not_flagged():
    eval_steps = np.arange(10, 110, 10)
    report = overspecialisation(eval_steps, np.linspace(0.1, 0.4, 10), *falling_train())
    assert report.peak_step == 100
    assert report.drop == 0.0
    assert not report.overspecialized


def test_drop_with_rising_train_loss_is_not_flagged():
    eval_steps = np.arange(10, 110, 10)
    eval_values = np.array([0.2, 0.3, 0.4, 0.35, 0.3, 0.3, 0.28, 0.27, 0.26, 0.25])
    train_steps = np.arange(101)
    train_losses = np.where(train_steps <= 30, 3.0 - 0.05 * train_steps, 1.5 + 0.01 * train_steps)
    report = overspecialisation(eval_steps, eval_values, train_steps, train_losses)
    assert report.peak_step == 30
    assert report.drop == pytest.approx(0.15)
    assert not report.train_loss_fell_after_peak
    assert not report.overspecialized


def test_min_mode_first_peak_and_small_drop():
    eval_steps = np.arange(1, 7)
    eval_values = np.array([3.0, 2.0, 1.0, 1.0, 1.01, 1.015])  # a loss-like metric
    report = overspecialisation(eval_steps, eval_values, *falling_train(), mode="min", delta=0.02)
    assert report.peak_step == 3  # first occurrence of the best value
    assert report.drop == pytest.approx(0.015)
    assert report.train_loss_fell_after_peak
    assert not report.overspecialized  # drop below delta


def test_no_finite_eval():
    report = overspecialisation([1, 2], [np.nan, np.nan], *falling_train())
    assert report.peak_step is None and math.isnan(report.drop) and not report.overspecialized


# --- steps to target and summary -------------------------------------------------------


def test_steps_to_target():
    steps = np.array([10, 20, 30, 40])
    values = np.array([0.1, np.nan, 0.3, 0.5])
    assert steps_to_target(steps, values, target=0.3) == 30
    assert steps_to_target(steps, values, target=0.6) is None
    # A NaN breaks the stretch: 0.1 at step 10 counts only as a first crossing.
    assert steps_to_target(steps, values, target=0.1, mode="min") is None
    assert steps_to_target(steps, values, target=0.1, mode="min", consecutive=1) == 10
    with pytest.raises(ValueError, match="mode"):
        steps_to_target(steps, values, target=0.1, mode="best")
    with pytest.raises(ValueError, match="consecutive"):
        steps_to_target(steps, values, target=0.1, consecutive=0)


def noisy_rising_curve(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learning curve 0.8 * (1 - exp(-step / 150)) plus N(0, 0.04) noise, 40 evals."""
    rng = np.random.default_rng(seed)
    steps = np.arange(10, 410, 10)
    clean = 0.8 * (1 - np.exp(-steps / 150))
    return steps, clean + rng.normal(0, 0.04, steps.size)


def test_a_noisy_curve_is_reached_where_it_stays_not_at_its_first_spike():
    steps, values = noisy_rising_curve()
    target = 0.65
    first = steps_to_target(steps, values, target=target, consecutive=1)
    stays = steps_to_target(steps, values, target=target)
    three = steps_to_target(steps, values, target=target, consecutive=3)
    # The noise-free curve crosses 0.65 at step 150 * ln(0.8 / 0.15) = 251.
    assert first is not None and stays is not None and three is not None
    assert first < three <= stays
    assert first <= 251 - 30  # a spike: three evaluations before the clean curve gets there
    assert stays >= 251  # staying there is not claimed before the clean curve crosses
    # "Stays": every later evaluation reaches it, the one before does not.
    at = int(np.flatnonzero(steps == stays)[0])
    assert (values[at:] >= target).all() and values[at - 1] < target
    # k consecutive: the first stretch of three reaching evaluations.
    i = int(np.flatnonzero(steps == three)[0])
    assert (values[i : i + 3] >= target).all()
    assert not any((values[j : j + 3] >= target).all() for j in range(i))


def test_k_consecutive_accepts_a_stretch_cut_short_by_the_end_of_the_run():
    steps, values = np.array([1, 2, 3, 4]), np.array([0.1, 0.1, 0.1, 0.9])
    assert steps_to_target(steps, values, target=0.5, consecutive=3) == 4
    assert steps_to_target(steps, values, target=0.5) == 4


def test_a_run_that_never_stays_is_censored_at_its_budget():
    steps, values = np.array([10, 20, 30]), np.array([0.6, 0.7, 0.4])
    assert target_censoring(steps, values, target=0.5, budget=33) == (33.0, True)
    assert target_censoring(steps, values, target=0.3, budget=33) == (10.0, False)


def test_summarize_history_keys_and_conventions():
    train_steps = np.arange(300)
    train_losses = decay_then_flat(150, 300)
    eval_steps = np.array([50, 100, 150, 200, 250, 299])
    eval_values = np.array([0.2, 0.4, 0.5, 0.45, 0.44, 0.43])
    out = summarize_history(
        train_steps=train_steps,
        train_losses=train_losses,
        eval_steps=eval_steps,
        eval_values=eval_values,
        window=10,
        threshold=1e-3,
        patience=2,
        target=0.4,
    )
    assert set(out) == {
        metrics.DIAG_EARLY_STOP_STEP,
        metrics.DIAG_PEAK_EVAL_STEP,
        metrics.DIAG_PEAK_EVAL_VALUE,
        metrics.DIAG_EVAL_DROP_FROM_PEAK,
        metrics.DIAG_OVERSPECIALIZED,
        metrics.DIAG_STEPS_TO_TARGET,
        metrics.DIAG_TARGET_CENSORED,
    }
    assert all(isinstance(v, float) for v in out.values())
    assert out[metrics.DIAG_EARLY_STOP_STEP] == 169.0
    assert out[metrics.DIAG_PEAK_EVAL_STEP] == 150.0
    assert out[metrics.DIAG_PEAK_EVAL_VALUE] == pytest.approx(0.5)
    assert out[metrics.DIAG_EVAL_DROP_FROM_PEAK] == pytest.approx(0.07)
    # The train loss is flat (not falling) after the peak: no overspecialisation.
    assert out[metrics.DIAG_OVERSPECIALIZED] == 0.0
    assert out[metrics.DIAG_STEPS_TO_TARGET] == 100.0
    assert out[metrics.DIAG_TARGET_CENSORED] == 0.0

    empty = summarize_history(
        train_steps=np.arange(5),
        train_losses=np.linspace(2, 1, 5),
        eval_steps=np.array([]),
        eval_values=np.array([]),
        window=10,
        threshold=1e-3,
        patience=1,
        target=0.4,
    )
    assert empty[metrics.DIAG_EARLY_STOP_STEP] == -1.0
    assert empty[metrics.DIAG_PEAK_EVAL_STEP] == -1.0
    assert math.isnan(empty[metrics.DIAG_PEAK_EVAL_VALUE])
    assert math.isnan(empty[metrics.DIAG_EVAL_DROP_FROM_PEAK])
    assert empty[metrics.DIAG_OVERSPECIALIZED] == 0.0
    # Never reached: censored at the run's last step.
    assert empty[metrics.DIAG_STEPS_TO_TARGET] == 4.0
    assert empty[metrics.DIAG_TARGET_CENSORED] == 1.0
