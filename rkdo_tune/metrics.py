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
# Evaluation choices made visible (issue 18): the probe on each layer, kNN at more k, a
# cross-validated probe where the probe's test part is small, and its size; the yardstick
# at two temperatures neither arm trains at (objective-neutral, unlike the τ 0.5 one).
EVAL_LINEAR_ACC_BACKBONE = "eval/linear_acc_backbone"
EVAL_LINEAR_ACC_EMBEDDING = "eval/linear_acc_embedding"
EVAL_LINEAR_ACC_CV = "eval/linear_acc_cv"
EVAL_PROBE_TEST_SIZE = "eval/probe_test_size"
SMALL_PROBE_TEST = 500  # fewer probe test images than this: the CV probe too, and a warning
EVAL_KNN_ACC_20 = "eval/knn_acc_k20"
EVAL_KNN_ACC_200 = "eval/knn_acc_k200"
EVAL_YARDSTICK_COLD = "eval/yardstick_loss_tau0.02"
EVAL_YARDSTICK_WARM = "eval/yardstick_loss_tau2"
# Per evaluation, from the curve so far rather than the model: the trainer adds it to each
# evaluation's scores (`efficiency.curve_scores`), so every Tune report carries its running
# value (a multi-objective search needs each objective in every report).
EVAL_LINEAR_ACC_AUC = "eval/linear_acc_auc"
CURVE_METRICS = (EVAL_LINEAR_ACC_AUC,)

# Once per trial.
DIAG_EARLY_STOP_STEP = "diag/early_stop_step"
DIAG_PEAK_EVAL_STEP = "diag/peak_eval_step"
DIAG_PEAK_EVAL_VALUE = "diag/peak_eval_value"
DIAG_EVAL_DROP_FROM_PEAK = "diag/eval_drop_from_peak"
DIAG_OVERSPECIALIZED = "diag/overspecialized"
DIAG_DIVERGED = "diag/diverged"
DIAG_STEPS = "diag/steps"
DIAG_STEPS_TO_TARGET = "diag/steps_to_target"  # censored runs: their budget (the flag below)
DIAG_TARGET_CENSORED = "diag/target_censored"  # 1.0 when the run never reached the target

# Written by `rkdo-tune report` onto each seed run: steps to the report's target (the
# I-Con control's final mean), censored runs at their budget, and the censoring flag.
REPORT_STEPS_TO_TARGET = "report/steps_to_target"
REPORT_TARGET_CENSORED = "report/target_censored"

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
    EVAL_LINEAR_ACC_BACKBONE,
    EVAL_LINEAR_ACC_EMBEDDING,
    EVAL_LINEAR_ACC_CV,
    EVAL_PROBE_TEST_SIZE,
    EVAL_KNN_ACC_20,
    EVAL_KNN_ACC_200,
    EVAL_YARDSTICK_COLD,
    EVAL_YARDSTICK_WARM,
    *CURVE_METRICS,
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
    DIAG_TARGET_CENSORED,
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
    EVAL_LINEAR_ACC_BACKBONE: "max",
    EVAL_LINEAR_ACC_EMBEDDING: "max",
    EVAL_LINEAR_ACC_CV: "max",
    EVAL_KNN_ACC_20: "max",
    EVAL_KNN_ACC_200: "max",
    EVAL_YARDSTICK_COLD: "min",
    EVAL_YARDSTICK_WARM: "min",
    EVAL_LINEAR_ACC_AUC: "max",
    TRAIN_LOSS: "min",
    TRAIN_EPOCH_LOSS: "min",
}
SEARCHABLE_METRICS = tuple(MODE_OF)

# How a person reads each evaluation metric, in tables and verdict sentences. The
# yardstick is InfoNCE at tau 0.5: I-Con's own family, so its label says so.
LABEL_OF = {
    EVAL_LINEAR_ACC: "linear probe",
    EVAL_KNN_ACC: "kNN accuracy",
    EVAL_NMI: "NMI",
    EVAL_ARI: "ARI",
    EVAL_NEIGHBORHOOD_ACC: "neighbourhood accuracy",
    EVAL_YARDSTICK_LOSS: "yardstick loss (InfoNCE τ 0.5, I-Con's family)",
    EVAL_LINEAR_ACC_BACKBONE: "linear probe on the backbone",
    EVAL_LINEAR_ACC_EMBEDDING: "linear probe on the head's embedding",
    EVAL_LINEAR_ACC_CV: "linear probe, repeated stratified CV",
    EVAL_PROBE_TEST_SIZE: "probe test images",
    EVAL_KNN_ACC_20: "kNN accuracy (k 20)",
    EVAL_KNN_ACC_200: "kNN accuracy (k 200)",
    EVAL_YARDSTICK_COLD: "neutral yardstick (InfoNCE τ 0.02)",
    EVAL_YARDSTICK_WARM: "neutral yardstick (InfoNCE τ 2)",
    EVAL_ALIGNMENT: "alignment",
    EVAL_UNIFORMITY: "uniformity",
    EVAL_EFFECTIVE_RANK: "effective rank",
    EVAL_LINEAR_ACC_AUC: "linear probe's area under its curve over steps",
    TRAIN_EPOCH_LOSS: "raw training loss",
}
# The measures a verdict compares: none of them is either arm's training objective.
VERDICT_METRICS = (
    EVAL_LINEAR_ACC,
    EVAL_KNN_ACC,
    EVAL_NMI,
    EVAL_ARI,
    EVAL_NEIGHBORHOOD_ACC,
    EVAL_YARDSTICK_LOSS,
    EVAL_YARDSTICK_COLD,
    EVAL_YARDSTICK_WARM,
)

# What a NaN or inf seed value does to a mean over seeds; see `mean_over_seeds`.
NonFinite = Literal["propagate", "omit"]
NON_FINITE_RULES: tuple[NonFinite, ...] = ("propagate", "omit")


def mean_over_seeds(values: ArrayLike, *, non_finite: NonFinite) -> tuple[float, float]:
    """Mean and sample std (ddof=1) of one metric over a trial's seeds, `values` shape (seeds,).

    One value gives std 0.0, none gives (NaN, NaN). A NaN or inf value (a seed that
    diverged or never got there) is handled as the caller says, because the two
    readers of this mean ask different questions:

    - "propagate": the result is (NaN, NaN). The sweep ranks and schedules trials on
      it, and a configuration that diverges on one seed must not win on the others.
    - "omit": the value is dropped and the finite ones averaged. The report says
      what the seed runs reached, with their count and status shown beside it.
    """
    import numpy as np  # here, not at the top: the CLI imports this module at start-up

    if non_finite not in NON_FINITE_RULES:
        raise ValueError(f"non_finite must be one of {NON_FINITE_RULES}, got {non_finite!r}")
    array = np.asarray(values, dtype=float)
    finite = np.isfinite(array)
    if non_finite == "omit":
        array = array[finite]
    elif not finite.all():
        return math.nan, math.nan
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0
