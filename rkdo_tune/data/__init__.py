"""Datasets in memory as uint8 tensors, and batched on-device augmentation.

The catalog (names, the on-disk check) imports no torch; everything else is
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from rkdo_tune.data.catalog import DATASETS, check_available

_LAZY = {
    "AugmentSpec": "rkdo_tune.data.augment",
    "augment_batch": "rkdo_tune.data.augment",
    "augmentation_for": "rkdo_tune.data.augment",
    "normalise": "rkdo_tune.data.augment",
    "two_views": "rkdo_tune.data.augment",
    "ImageData": "rkdo_tune.data.sources",
    "load_dataset": "rkdo_tune.data.sources",
}

__all__ = ["DATASETS", "check_available", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
