"""The validation split: a fixed, stratified part of the train split, held out for selection.

A sweep chooses its configurations on the validation split and scores the chosen
ones once on the test split (issue 18 §3). `holdout_validation` returns the data a
validation-scored run sees: the train split less the held-out images, and those
images in the place of the test split, so that training and every probe run
unchanged. The test images are not in what it returns.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from rkdo_tune.data.sources import ImageData
from rkdo_tune.errors import UsageError

# A constant, like the test split's: every trial and every training seed holds out the same
# images, so search trials are ranked on one validation set. Training seeds never touch it.
VALIDATION_SEED = 2025_1203


def validation_indices(labels: torch.Tensor, fraction: float) -> torch.Tensor:
    """Sorted int64 indices into `labels` (N,) of the held-out images.

    Stratified: round(fraction * n_c) of each class's n_c images, drawn by one fixed
    permutation (VALIDATION_SEED), so the same labels and fraction give the same images.
    """
    y = labels.cpu().numpy()
    order = np.random.default_rng(VALIDATION_SEED).permutation(y.shape[0])
    chosen = []
    for label in np.unique(y):
        members = order[y[order] == label]  # this class, in the permutation's order
        chosen.append(members[: round(fraction * members.shape[0])])
    return torch.from_numpy(np.sort(np.concatenate(chosen))).to(torch.int64)


def holdout_validation(data: ImageData, fraction: float) -> ImageData:
    """`data` as a validation-scored run sees it: train = train less the held-out images,
    test = the held-out images (a stratified `fraction` of train, `validation_indices`).

    Raises UsageError when either part would be empty.
    """
    held = validation_indices(data.train_labels, fraction)
    n = int(data.train_labels.shape[0])
    if held.numel() == 0 or held.numel() == n:
        raise UsageError(
            f"key 'validation_fraction' has value {fraction!r}, which holds out {held.numel()} "
            f"of {data.name}'s {n} training images: both parts need images"
        )
    keep = torch.ones(n, dtype=torch.bool)
    keep[held] = False
    return replace(
        data,
        train_images=data.train_images[keep],
        train_labels=data.train_labels[keep],
        test_images=data.train_images[held],
        test_labels=data.train_labels[held],
    )
