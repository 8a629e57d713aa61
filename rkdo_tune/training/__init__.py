"""The shared RKDO/I-Con trainer: one loop, callbacks out, a TrainResult back.

The callback types import no torch; the trainer itself is loaded on first use,
so that the sweep driver and the CLI start without torch.
"""

from __future__ import annotations

from rkdo_tune._lazy import lazy_attributes
from rkdo_tune.training.callbacks import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    STATUS_EARLY_STOPPED,
    STATUS_STOPPED,
    CallbackList,
    CheckpointEveryEval,
    History,
    TrainCallback,
    TrainResult,
)

_LAZY = {
    "Trainer": "rkdo_tune.training.trainer",
    "resolve_device": "rkdo_tune.training.trainer",
    "train": "rkdo_tune.training.trainer",
}

__all__ = [
    "STATUS_COMPLETED",
    "STATUS_DIVERGED",
    "STATUS_EARLY_STOPPED",
    "STATUS_STOPPED",
    "CallbackList",
    "CheckpointEveryEval",
    "History",
    "TrainCallback",
    "TrainResult",
    *_LAZY,
]

__getattr__ = lazy_attributes(__name__, _LAZY)
