"""Datasets in memory as uint8 tensors, and batched on-device augmentation.

The catalog (names, the on-disk check) imports no torch; everything else is
loaded on first use.
"""

from __future__ import annotations

from rkdo_tune._lazy import lazy_attributes
from rkdo_tune.data.catalog import DATASETS, check_available

_LAZY = {
    "AugmentSpec": "rkdo_tune.data.augment",
    "augment_batch": "rkdo_tune.data.augment",
    "augmentation_for": "rkdo_tune.data.augment",
    "normalise": "rkdo_tune.data.augment",
    "two_views": "rkdo_tune.data.augment",
    "ImageData": "rkdo_tune.data.sources",
    "load_dataset": "rkdo_tune.data.sources",
    "holdout_validation": "rkdo_tune.data.splits",
    "validation_indices": "rkdo_tune.data.splits",
}

__all__ = ["DATASETS", "check_available", *_LAZY]

__getattr__ = lazy_attributes(__name__, _LAZY)
