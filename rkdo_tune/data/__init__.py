"""Datasets in memory as uint8 tensors, and batched on-device augmentation."""

from rkdo_tune.data.augment import (
    AugmentSpec,
    augment_batch,
    augmentation_for,
    normalise,
    two_views,
)
from rkdo_tune.data.sources import DATASETS, ImageData, check_available, load_dataset

__all__ = [
    "DATASETS",
    "AugmentSpec",
    "ImageData",
    "augment_batch",
    "augmentation_for",
    "check_available",
    "load_dataset",
    "normalise",
    "two_views",
]
