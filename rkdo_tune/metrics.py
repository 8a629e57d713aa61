"""The one vocabulary of metric names used by `train`, sweeps and MLflow.

Every metric a trial produces is named here; nothing else spells these
strings. Names are `<group>/<measure>`: `train/` per optimiser step,
`eval/` per evaluation, `diag/` once per trial (derived from the history).
`mean_over_seeds` is the one rule for a metric's mean over a trial's seeds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# Per optimiser step.
TRAIN_LOSS = "train/loss"
TRAIN_LOSS_SLOPE = "train/loss_slope"
TRAIN_LOG_LOSS_SLOPE = "train/log_loss_slope"
TRAIN_TENSION = "train/tension"
TRAIN_ALPHA = "train/alpha"
TRAIN_TAU = "train/tau"
TRAIN_SAMPLES_PER_S = "train/samples_per_s"
TRAIN_EPOCH_LOSS = "train/epoch_loss"  # mean loss of the epoch: the paper's reported loss

# Per evaluation.
EVAL_LINEAR_ACC = "eval/linear_acc"
EVAL_KNN_ACC = "eval/knn_acc"
EVAL_NMI = "eval/nmi"
EVAL_ARI = "eval/ari"
EVAL_NEIGHBORHOOD_ACC = "eval/neighborhood_acc"
EVAL_YARDSTICK_LOSS = "eval/yardstick_loss"
EVAL_ALIGNMENT = "eval/alignment"
EVAL_UNIFORMITY = "eval/uniformity"
EVAL_EFFECTIVE_RANK = "eval/effective_rank"

# Once per trial.
DIAG_EARLY_STOP_STEP = "diag/early_stop_step"
DIAG_PEAK_EVAL_STEP = "diag/peak_eval_step"
DIAG_PEAK_EVAL_VALUE = "diag/peak_eval_value"
DIAG_EVAL_DROP_FROM_PEAK = "diag/eval_drop_from_peak"
DIAG_OVERSPECIALIZED = "diag/overspecialized"
DIAG_DIVERGED = "diag/diverged"
DIAG_STEPS = "diag/steps"
DIAG_STEPS_TO_TARGET = "diag/steps_to_target"

TRAIN_METRICS = (
    TRAIN_LOSS,
    TRAIN_LOSS_SLOPE,
    TRAIN_LOG_LOSS_SLOPE,
    TRAIN_TENSION,
    TRAIN_ALPHA,
    TRAIN_TAU,
    TRAIN_SAMPLES_PER_S,
    TRAIN_EPOCH_LOSS,
)
EVAL_METRICS = (
    EVAL_LINEAR_ACC,
    EVAL_KNN_ACC,
    EVAL_NMI,
    EVAL_ARI,
    EVAL_NEIGHBORHOOD_ACC,
    EVAL_YARDSTICK_LOSS,
    EVAL_ALIGNMENT,
    EVAL_UNIFORMITY,
    EVAL_EFFECTIVE_RANK,
)
DIAG_METRICS = (
    DIAG_EARLY_STOP_STEP,
    DIAG_PEAK_EVAL_STEP,
    DIAG_PEAK_EVAL_VALUE,
    DIAG_EVAL_DROP_FROM_PEAK,
    DIAG_OVERSPECIALIZED,
    DIAG_DIVERGED,
    DIAG_STEPS,
    DIAG_STEPS_TO_TARGET,
)
ALL_METRICS = TRAIN_METRICS + EVAL_METRICS + DIAG_METRICS

# Whether larger is better, for metrics a search may optimise.
MODE_OF = {
    EVAL_LINEAR_ACC: "max",
    EVAL_KNN_ACC: "max",
    EVAL_NMI: "max",
    EVAL_ARI: "max",
    EVAL_NEIGHBORHOOD_ACC: "max",
    EVAL_YARDSTICK_LOSS: "min",
    EVAL_ALIGNMENT: "min",
    EVAL_UNIFORMITY: "min",
    EVAL_EFFECTIVE_RANK: "max",
    TRAIN_LOSS: "min",
    TRAIN_EPOCH_LOSS: "min",
}
SEARCHABLE_METRICS = tuple(MODE_OF)
