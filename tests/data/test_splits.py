"""The validation split: stratified, fixed, inside the train split, never the test split."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rkdo_tune.config import TrialConfig
from rkdo_tune.data import holdout_validation, load_dataset, validation_indices
from rkdo_tune.errors import UsageError
from rkdo_tune.training.run_setup import load_data


def _rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_holds_out_a_stratified_part_of_train_and_keeps_the_rest(fraction):
    digits = load_dataset("digits")
    held = holdout_validation(digits, fraction)
    train_counts = torch.bincount(digits.train_labels, minlength=10)
    val_counts = torch.bincount(held.test_labels, minlength=10)
    # every class gives round(fraction * its count): the validation split keeps train's mix
    assert val_counts.tolist() == [round(fraction * int(n)) for n in train_counts]
    assert torch.equal(torch.bincount(held.train_labels, minlength=10) + val_counts, train_counts)
    # the two parts partition the train split: same images, nothing from test
    index = validation_indices(digits.train_labels, fraction)
    assert torch.equal(held.test_images, digits.train_images[index])
    assert torch.equal(held.test_labels, digits.train_labels[index])
    rest = torch.ones(len(digits.train_labels), dtype=torch.bool)
    rest[index] = False
    assert torch.equal(held.train_images, digits.train_images[rest])
    assert index.unique().numel() == index.numel()


def test_is_disjoint_from_the_test_split_and_the_same_every_time():
    digits = load_dataset("digits")
    first = holdout_validation(digits, 0.2)
    again = holdout_validation(load_dataset("shapes"), 0.2)  # evict the one-entry cache
    again = holdout_validation(load_dataset("digits"), 0.2)
    assert torch.equal(first.test_images, again.test_images)
    assert torch.equal(first.test_labels, again.test_labels)
    # digits holds a few duplicate images across its splits: compare positions, then pixels
    test = _rows(digits.test_images)
    held = _rows(first.test_images)
    shared = held & test
    duplicated = _rows(digits.train_images) & test  # images train and test already share
    assert shared <= duplicated


def test_load_data_scores_the_split_the_config_names():
    test_run = load_data(TrialConfig(dataset="digits"))
    val_run = load_data(TrialConfig(dataset="digits", eval_split="validation"))
    assert test_run.test_images.shape[0] == 360 and test_run.train_images.shape[0] == 1437
    assert val_run.test_images.shape[0] == 287 and val_run.train_images.shape[0] == 1150
    wider = load_data(
        TrialConfig(dataset="digits", eval_split="validation", validation_fraction=0.5)
    )
    per_class = torch.bincount(test_run.train_labels).tolist()
    assert wider.test_images.shape[0] == sum(round(0.5 * n) for n in per_class)


def test_a_fraction_that_empties_a_part_is_refused_in_one_line():
    tiny = load_dataset("digits")
    few = dataclasses.replace(
        tiny, train_images=tiny.train_images[:3], train_labels=tiny.train_labels[:3]
    )
    with pytest.raises(UsageError) as caught:
        holdout_validation(few, 0.1)
    assert "validation_fraction" in str(caught.value) and "\n" not in str(caught.value)
