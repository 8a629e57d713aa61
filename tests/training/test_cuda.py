"""The trainer on CUDA: training steps in fp32, in bf16 autocast, and compiled (needs a GPU)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.training import Trainer

pytestmark = pytest.mark.gpu


def cuda_config(**overrides: object) -> TrialConfig:
    """Two epochs with one evaluation at the end, so the first `run_epoch()` only trains."""
    base = {
        "dataset": "synthetic",
        "synthetic_size": 32,
        "synthetic_samples": 200,
        "model": "resnet18",
        "batch_size": 32,
        "epochs": 2,
        "eval_every": 2,
        "steps_per_epoch": 2,
        "device": "cuda",
        "seed": 0,
    }
    return TrialConfig(**{**base, **overrides})


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(module for module in model.modules() if isinstance(module, nn.Conv2d))


def train_one_epoch(trainer: Trainer) -> list[float]:
    """The epoch's per-step losses."""
    trainer.start()
    assert trainer.run_epoch(), "the first epoch ended the run"
    assert not trainer.history.eval_steps
    return trainer.history.train[m.TRAIN_LOSS]


@pytest.mark.parametrize(
    ("precision", "activations"), [("fp32", torch.float32), ("bf16", torch.bfloat16)]
)
def test_cuda_steps_train_in_the_chosen_precision(precision, activations):
    trainer = Trainer(cuda_config(precision=precision))
    conv = first_conv(trainer.model)
    weight_before = conv.weight.detach().clone()
    seen: list[torch.dtype] = []
    hook = conv.register_forward_hook(lambda _module, _inputs, out: seen.append(out.dtype))
    try:
        losses = train_one_epoch(trainer)
    finally:
        hook.remove()

    assert trainer.device.type == "cuda"
    assert len(seen) == 4 and set(seen) == {activations}  # 2 steps x 2 views
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    parameters = list(trainer.model.parameters())
    assert all(p.is_cuda and p.dtype == torch.float32 for p in parameters)  # fp32 master weights
    assert all(bool(torch.isfinite(p).all()) for p in parameters)
    assert not torch.equal(conv.weight.detach(), weight_before)


@pytest.mark.slow
def test_compiled_cuda_steps_match_eager_ones():
    """Same seed, same batches and augmentations: compiling must not change what is trained.

    fp32 only, where the comparison is tight; bf16 with compile is what the GPU
    check's throughput step runs at full size.
    """
    losses = {}
    for compiled in (False, True):
        trainer = Trainer(cuda_config(model="small_cnn", compile=compiled, steps_per_epoch=3))
        losses[compiled] = train_one_epoch(trainer)
        assert (trainer.forward_model is not trainer.model) == compiled
    assert all(math.isfinite(loss) for loss in losses[True])
    torch.testing.assert_close(
        torch.tensor(losses[True]), torch.tensor(losses[False]), rtol=1e-3, atol=1e-4
    )
