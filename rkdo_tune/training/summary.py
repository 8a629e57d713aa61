"""Turns a finished run's history into its TrainResult: last eval scores plus diag/*."""

from __future__ import annotations

import dataclasses

import numpy as np

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.diagnostics import summarize_history
from rkdo_tune.inference import binomial_se
from rkdo_tune.training.callbacks import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    History,
    TrainResult,
)

# Accuracies over the probe's test images: their drop from the peak is noise up to a few
# binomial standard errors of that many images.
PROBE_ACCURACIES = (
    m.EVAL_LINEAR_ACC,
    m.EVAL_KNN_ACC,
    m.EVAL_KNN_ACC_20,
    m.EVAL_KNN_ACC_200,
    m.EVAL_LINEAR_ACC_BACKBONE,
    m.EVAL_LINEAR_ACC_EMBEDDING,
)
NOISE_SES = 2.0  # a drop must exceed this many binomial SEs to flag overspecialisation


def overspecialisation_delta(config: TrialConfig, history: History) -> float:
    """The drop that flags overspecialisation: `overspec_delta`, raised to NOISE_SES binomial
    standard errors of the peak accuracy when the monitored metric is a probe accuracy."""
    values = [v for v in history.evals.get(config.monitor_metric, []) if np.isfinite(v)]
    sizes = history.evals.get(m.EVAL_PROBE_TEST_SIZE, [])
    if config.monitor_metric not in PROBE_ACCURACIES or not values or not sizes:
        return config.overspec_delta
    noise = NOISE_SES * binomial_se(max(values), int(sizes[-1]))
    return max(config.overspec_delta, noise) if np.isfinite(noise) else config.overspec_delta


def final_metrics(config: TrialConfig, history: History, *, status: str, steps: int) -> dict:
    """The last evaluation's scores, the diagnostics of the whole history, and run facts."""
    scores = {key: values[-1] for key, values in history.evals.items() if values}
    monitored = history.evals.get(config.monitor_metric, [])
    diag = summarize_history(
        train_steps=np.asarray(history.steps, dtype=float),
        train_losses=np.asarray(history.train.get(m.TRAIN_LOSS, []), dtype=float),
        eval_steps=np.asarray(history.eval_steps[: len(monitored)], dtype=float),
        eval_values=np.asarray(monitored, dtype=float),
        mode=m.MODE_OF[config.monitor_metric],
        window=config.slope_window,
        threshold=config.early_stop_threshold,
        patience=config.early_stop_patience,
        delta=overspecialisation_delta(config, history),
        target=config.target_metric_value,
    )
    diag[m.DIAG_DIVERGED] = float(status == STATUS_DIVERGED)
    diag[m.DIAG_STEPS] = float(steps)
    return {**scores, **diag}


def summarize_run(
    *,
    config: TrialConfig,
    history: History,
    status: str,
    reason: str,
    steps: int,
    epochs_completed: int,
    device: str,
    wall_seconds: float,
) -> TrainResult:
    return TrainResult(
        config=config,
        status=status,
        metrics=final_metrics(config, history, status=status, steps=steps),
        history=history,
        steps=steps,
        epochs_completed=epochs_completed,
        device=device,
        wall_seconds=wall_seconds,
        reason=reason,
    )


def budget_result(
    run: TrainResult, *, epochs: int, steps_per_epoch: int, wall_seconds: float | None = None
) -> TrainResult:
    """The k-epoch run (k = `epochs`) that the first k epochs of `run` are, under schedules
    that do not read the total budget: the history up to step k x steps_per_epoch, the
    evaluation made there, and diagnostics of that prefix only.

    A run that ended at or before that step (early stop, divergence) ends the k-epoch
    run the same way. `wall_seconds`: the time to the budget point, when it was measured.
    """
    end = epochs * steps_per_epoch
    ended_first = run.steps <= end
    status = run.status if ended_first else STATUS_COMPLETED
    steps = min(run.steps, end)
    return summarize_run(
        config=dataclasses.replace(run.config, epochs=epochs),
        history=run.history.until(end),
        status=status,
        reason=run.reason if ended_first else "",
        steps=steps,
        epochs_completed=min(run.epochs_completed, epochs),
        device=run.device,
        wall_seconds=run.wall_seconds if wall_seconds is None else wall_seconds,
    )
