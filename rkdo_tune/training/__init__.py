"""The shared RKDO/I-Con trainer: one loop, callbacks out, a TrainResult back.

The callback types import no torch; the trainer itself is loaded on first use,
so that the sweep driver and the CLI start without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
