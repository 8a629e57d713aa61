"""Objective-independent evaluation of an encoder: probes, clustering and a yardstick loss.

RKDO and I-Con optimise different losses whose raw values cannot be compared,
so every trial is scored here the same way, whatever its objective:

- probes: linear (logistic regression) and k-NN accuracy;
- clustering: KMeans NMI and ARI; neighbourhood agreement of the k nearest
  neighbours (the reference's "neighborhood accuracy");
- the yardstick: one common held-out InfoNCE loss (I-Con with debias 0 at a
  fixed tau) on identical augmented test batches for every trial;
- geometry: alignment and uniformity (Wang & Isola, 2020) and the effective
  rank of the features (Roy & Vetterli, 2007), a collapse detector.

Two ways, set by `EvalSettings.eval_batches` (from the run's protocol preset):
a number scores the first that many test batches with an 80/20 split, as the
reference code does; None trains the probes on the whole train split and
scores the whole test split.
"""

from __future__ import annotations

from rkdo_tune.evaluation._evaluate import (
    YARDSTICK_KERNEL,
    YARDSTICK_SEED,
    EvalSettings,
    evaluate,
    feature_scores,
    last_only_metrics,
    yardstick_loss,
)
from rkdo_tune.evaluation._geometry import alignment, effective_rank, uniformity
from rkdo_tune.evaluation._probes import (
    full_protocol_scores,
    neighborhood_accuracy,
    paper_protocol_scores,
)

__all__ = [
    "YARDSTICK_KERNEL",
    "YARDSTICK_SEED",
    "EvalSettings",
    "alignment",
    "effective_rank",
    "evaluate",
    "feature_scores",
    "full_protocol_scores",
    "last_only_metrics",
    "neighborhood_accuracy",
    "paper_protocol_scores",
    "uniformity",
    "yardstick_loss",
]
