"""The training objectives: RKDO (in-batch and temporal recursion) and the I-Con baseline.

Every registered loss takes ``(z1, z2, **options)`` with z1, z2 (B, D)
L2-normalised embeddings whose row i is a positive pair, and returns a 0-d
loss and a dict of detached diagnostics (at least ``tension`` and
``positive_prob``).
"""

from __future__ import annotations

from collections.abc import Callable

from rkdo_tune.config import KERNELS  # the kernels icon_loss takes: the config's choices
from rkdo_tune.objectives.icon import icon_loss
from rkdo_tune.objectives.rkdo import rkdo_loss
from rkdo_tune.objectives.temporal import TemporalField, TemporalResult, rkdo_temporal_loss

OBJECTIVES: dict[str, Callable] = {"rkdo": rkdo_loss, "icon": icon_loss}

__all__ = [
    "KERNELS",
    "OBJECTIVES",
    "TemporalField",
    "TemporalResult",
    "icon_loss",
    "rkdo_loss",
    "rkdo_temporal_loss",
]
