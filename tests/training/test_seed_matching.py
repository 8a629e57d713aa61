"""Seed matching across objectives: for one seed, an RKDO trial and its I-Con baseline
start from the same weights and see the same batches, augmentations and evaluation inputs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from rkdo_tune.config import TrialConfig
from rkdo_tune.data import load_dataset
from rkdo_tune.training import Trainer

DIGITS = load_dataset("digits")
SEED = 7
STEPS_PER_EPOCH = 3
EPOCHS = 2  # two epochs: the second epoch's draws follow an evaluation

ICON = {"objective": "icon"}
RKDO_ARMS = {
    "rkdo_in_batch": {"objective": "rkdo", "recursion": "in_batch"},
    "rkdo_temporal": {"objective": "rkdo", "recursion": "temporal"},
}


@dataclass(frozen=True)
class Seen:
    """What one run was given: initial weights, training views, evaluation inputs."""

    initial: dict[str, Tensor]
    train_inputs: list[Tensor]  # (B, C, H, W) each: view1, view2 of every step, in order
    eval_inputs: list[Tensor]  # every eval-mode forward input after start (probes, yardstick)
    final_generator_state: Tensor
    trainer: Trainer


def _config(arm: dict[str, str], seed: int) -> TrialConfig:
    return TrialConfig(
        dataset="digits",
        model="small_cnn",
        device="cpu",
        seed=seed,
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        batch_size=32,
        slope_window=2,
        **arm,
    )


def _run_and_record(arm: dict[str, str], seed: int = SEED) -> Seen:
    """Run the real trainer, recording every model input through a forward pre-hook.

    The hook goes on after `start()`, so the temporal bank's encoding (its own
    stream, not a training input) is not recorded; train-mode inputs are the
    training views, eval-mode inputs are what `evaluate` encodes.
    """
    trainer = Trainer(_config(arm, seed), data=DIGITS)
    initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    train_inputs: list[Tensor] = []
    eval_inputs: list[Tensor] = []

    def record(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        (train_inputs if module.training else eval_inputs).append(args[0].detach().clone())

    trainer.start()
    handle = trainer.model.register_forward_pre_hook(record)
    try:
        while trainer.run_epoch():
            pass
    finally:
        handle.remove()
    trainer.finish()
    return Seen(initial, train_inputs, eval_inputs, trainer.generator.get_state(), trainer)


@pytest.fixture(scope="module")
def icon_run() -> Seen:
    return _run_and_record(ICON)


@pytest.fixture(scope="module")
def rkdo_runs() -> dict[str, Seen]:
    return {name: _run_and_record(arm) for name, arm in RKDO_ARMS.items()}


def _assert_same_tensors(ours: list[Tensor], theirs: list[Tensor], what: str) -> None:
    assert len(ours) == len(theirs), what
    for position, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if not torch.equal(a, b):
            pytest.fail(f"{what} differ at position {position}")


@pytest.mark.parametrize("arm", list(RKDO_ARMS), ids=list(RKDO_ARMS))
def test_rkdo_and_icon_with_one_seed_see_the_same_weights_batches_and_views(
    arm, icon_run, rkdo_runs
):
    rkdo = rkdo_runs[arm]
    assert rkdo.trainer.status == icon_run.trainer.status == "completed"

    assert rkdo.initial.keys() == icon_run.initial.keys()
    for name, tensor in rkdo.initial.items():
        if not torch.equal(tensor, icon_run.initial[name]):
            pytest.fail(f"initial {name} differs")

    # Both views of every step, first batch included, and so the data order and the
    # augmentation draws, over both epochs (the second after an evaluation).
    assert len(rkdo.train_inputs) == 2 * EPOCHS * STEPS_PER_EPOCH
    _assert_same_tensors(rkdo.train_inputs, icon_run.train_inputs, "training views")
    assert not torch.equal(rkdo.train_inputs[0], rkdo.train_inputs[1])  # two distinct views
    assert torch.equal(rkdo.final_generator_state, icon_run.final_generator_state)


@pytest.mark.parametrize("arm", list(RKDO_ARMS), ids=list(RKDO_ARMS))
def test_rkdo_and_icon_are_scored_on_the_same_subset_and_yardstick_views(arm, icon_run, rkdo_runs):
    rkdo = rkdo_runs[arm]
    assert rkdo.trainer.eval_settings == icon_run.trainer.eval_settings
    assert rkdo.trainer.history.eval_epochs == icon_run.trainer.history.eval_epochs == [1, 2]
    # The probes' test subset and the yardstick's augmented views, at every evaluation.
    assert rkdo.eval_inputs
    _assert_same_tensors(rkdo.eval_inputs, icon_run.eval_inputs, "evaluation inputs")


def test_another_seed_changes_weights_and_views(icon_run):
    """The comparisons above can fail: weights and views do depend on the seed."""
    other = _run_and_record(ICON, seed=SEED + 1)
    assert any(not torch.equal(v, icon_run.initial[k]) for k, v in other.initial.items())
    assert not torch.equal(other.train_inputs[0], icon_run.train_inputs[0])
    assert not torch.equal(other.train_inputs[1], icon_run.train_inputs[1])
