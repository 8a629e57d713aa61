"""Compute efficiency read off an evaluation curve, with no target fixed in advance (pure numpy).

`eval/linear_acc_auc` is the area under the linear probe's curve over optimiser
steps, divided by the steps trained so far. At an evaluation at step s_k, with
evaluations (s_1, v_1), ..., (s_k, v_k) so far:

    AUC_k = ( s_1 · v_1  +  Σ_{i=2..k} (s_i − s_{i−1}) · (v_{i−1} + v_i) / 2 ) / s_k

The curve before the first evaluation is that evaluation's value (nothing was
measured earlier), and it is linear between evaluations (the trapezoid rule).
A run always evaluates at its last step, so its final value is the mean of its
curve over its whole budget, in the probe's own units: a constant curve scores
its value, and of two runs that end at the same accuracy the one that got there
sooner scores higher. Divided by the steps so far, not the planned total, the
running value at step s is the final value of a run of s steps with the same
evaluations: a budget point inside a run reads as that shorter run.
A non-finite value makes every later value NaN.

    curve_scores(history.eval_steps, history.evals, step, scores)   # in the trainer
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rkdo_tune.metrics import EVAL_LINEAR_ACC, EVAL_LINEAR_ACC_AUC

# The rule in one sentence, for reports.
AUC_RULE = (
    f"{EVAL_LINEAR_ACC_AUC} is the area under the {EVAL_LINEAR_ACC} curve over optimiser "
    "steps (the first evaluation's value back to step 0, trapezoids between evaluations) "
    "divided by the steps trained: the probe's mean over the run, higher when it gets there "
    "sooner"
)


def running_auc(steps: Sequence[float], values: Sequence[float]) -> float:
    """The area under the curve through (steps, values) from step 0, over the last step.

    `steps` ascending and >= 0, one value each; NaN for no point. At step 0 it is the value.
    """
    x, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"steps and values must be 1-d of one length, got {x.shape}, {y.shape}")
    if x.size == 0:
        return math.nan
    if x[0] < 0 or np.any(np.diff(x) < 0):
        raise ValueError(f"steps must be ascending and >= 0, got {x.tolist()}")
    if x[-1] == 0:  # an evaluation before any step: the curve is that one value
        return float(y[-1])
    area = x[0] * y[0] + float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
    return float(area / x[-1])


def curve_scores(
    eval_steps: Sequence[int],
    evals: Mapping[str, Sequence[float]],
    step: int,
    scores: Mapping[str, float],
) -> dict[str, float]:
    """The curve measures of an evaluation at `step` scoring `scores`, after the earlier
    ones (`eval_steps`, with `evals` aligned to them, as `History` keeps them)."""
    earlier = list(evals.get(EVAL_LINEAR_ACC, [math.nan] * len(eval_steps)))
    values = [*earlier, scores.get(EVAL_LINEAR_ACC, math.nan)]
    return {EVAL_LINEAR_ACC_AUC: running_auc([*eval_steps, step], values)}
