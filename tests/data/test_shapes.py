"""`shapes`: deterministic, fast, balanced, and invisible to a probe on raw pixels."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from rkdo_tune.data import load_dataset
from rkdo_tune.data.shapes import SHAPES, shapes_images
from rkdo_tune.errors import UsageError


def test_deterministic_balanced_and_generated_in_seconds():
    start = time.perf_counter()
    images, labels = shapes_images(32, 10, 2000)
    assert time.perf_counter() - start < 30  # about a second on one core
    assert images.shape == (2000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [200] * 10
    again, again_labels = shapes_images(32, 10, 2000)
    assert torch.equal(again, images) and torch.equal(again_labels, labels)


def test_loads_as_a_dataset_with_the_generated_sizes():
    data = load_dataset("shapes", synthetic_size=16, synthetic_classes=4, synthetic_samples=400)
    assert data.name == "shapes" and data.num_classes == 4
    assert data.train_images.shape == (320, 3, 16, 16)
    assert torch.bincount(data.test_labels).tolist() == [20] * 4
    with pytest.raises(UsageError, match=f"at most {len(SHAPES)} classes"):
        load_dataset("shapes", synthetic_classes=11, synthetic_samples=400)


def _pixels(split: str) -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("shapes", synthetic_samples=2000)
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    return images.flatten(1).float().numpy() / 255, labels.numpy()


def test_raw_pixel_neighbours_stay_near_chance():
    (x_train, y_train), (x_test, y_test) = _pixels("train"), _pixels("test")
    knn = make_pipeline(Normalizer(), KNeighborsClassifier(5)).fit(x_train, y_train)
    assert knn.score(x_test, y_test) <= 0.3  # chance is 0.1; the bar is 0.3


@pytest.mark.slow  # a logistic regression on 3072 pixels: a minute on a busy core
def test_raw_pixel_linear_probe_stays_near_chance():
    (x_train, y_train), (x_test, y_test) = _pixels("train"), _pixels("test")
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=200))
    assert linear.fit(x_train, y_train).score(x_test, y_test) <= 0.3
