"""`shapes`: deterministic, balanced, visible through the augmentation, and invisible to a
probe on raw pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from rkdo_tune.data import load_dataset, normalise, shapes
from rkdo_tune.data.augment import GRAY_WEIGHTS
from rkdo_tune.data.shapes import SHAPES, shapes_images
from rkdo_tune.errors import UsageError

CHANCE_BAR = 0.3  # the bar for a pixel probe at 10 classes (chance is 0.1)


def test_deterministic_and_balanced():
    images, labels = shapes_images(32, 10, 500)
    assert images.shape == (500, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (500,) and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [50] * 10
    again, again_labels = shapes_images(32, 10, 500)
    assert torch.equal(again, images) and torch.equal(again_labels, labels)


def test_loads_as_a_dataset_with_the_generated_sizes():
    data = load_dataset("shapes", synthetic_size=16, synthetic_classes=4, synthetic_samples=400)
    assert data.name == "shapes" and data.num_classes == 4
    assert data.train_images.shape == (320, 3, 16, 16)
    assert torch.bincount(data.test_labels).tolist() == [20] * 4
    with pytest.raises(UsageError, match=f"at most {len(SHAPES)} classes"):
        load_dataset("shapes", synthetic_classes=11, synthetic_samples=400)


def test_shapes_differ_from_their_background_in_luma():
    # The augmentation greys a fifth of the views: a shape of the background's luma
    # would vanish from them (the ceiling fell from 0.9 to 0.2 with hue-only contrast).
    g = torch.Generator().manual_seed(0)
    back = shapes._background(1000, 16, g)  # (N, 3, 16, 16)
    colours = shapes._shape_colours(back, g)  # (N, 3)
    weights = torch.tensor(GRAY_WEIGHTS)
    step = (colours @ weights) - (back.mean(dim=(2, 3)) @ weights)
    assert step.abs().min() >= 0.3
    assert 0.3 < (step > 0).float().mean() < 0.7  # lighter and darker shapes alike


def test_mean_colour_carries_no_class():
    images, labels = shapes_images(32, 10, 1000)
    mean_colour = images.float().mean(dim=(2, 3)).numpy() / 255  # (N, 3)
    scores = cross_val_score(LogisticRegression(max_iter=500), mean_colour, labels.numpy(), cv=5)
    assert scores.mean() <= 0.2


def _pixels(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The floors' raw pixels: (N, 3*32*32) in [-1, 1], of shapes_gap.py's 2500 images."""
    data = load_dataset("shapes", synthetic_samples=2500)
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    return normalise(images).flatten(1).numpy(), labels.numpy()


def test_raw_pixel_neighbours_stay_near_chance():
    (x_train, y_train), (x_test, y_test) = _pixels("train"), _pixels("test")
    knn = make_pipeline(Normalizer(), KNeighborsClassifier(5)).fit(x_train, y_train)
    assert knn.score(x_test, y_test) <= CHANCE_BAR  # 0.24 measured


@pytest.mark.slow  # a logistic regression on 3072 pixels: 3 s, more on a busy core
def test_raw_pixel_linear_probe_stays_near_chance():
    (x_train, y_train), (x_test, y_test) = _pixels("train"), _pixels("test")
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=200))
    assert linear.fit(x_train, y_train).score(x_test, y_test) <= CHANCE_BAR  # 0.11 measured
