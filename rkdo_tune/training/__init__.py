"""The shared RKDO/I-Con trainer: one loop, callbacks out, a TrainResult back."""

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
from rkdo_tune.training.trainer import Trainer, resolve_device, train

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
    "Trainer",
    "resolve_device",
    "train",
]
