"""What a run needs before its first step: its device, its seeds, its data and the
steps at which it evaluates (shared by the trainer, the floors and the benchmarks)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from rkdo_tune.config import SCOPE_RKDO, SPLIT_VALIDATION, TrialConfig, fields_in_scope
from rkdo_tune.data import ImageData, holdout_validation, load_dataset
from rkdo_tune.errors import UsageError
from rkdo_tune.schedules import schedules_over_total


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_cpu_threads(cpus: float) -> None:
    """Keep torch inside a CPU share (a Ray trial's `cpus`, at least one thread)."""
    torch.set_num_threads(max(1, int(cpus)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


TEMPORAL_BANK_STREAM = 1  # own stream: the training generator runs alike for every objective


def stream_seed(seed: int, stream: int) -> int:
    """A seed for side stream `stream` of trial seed `seed`, independent of the training one."""
    sequence = np.random.SeedSequence(seed % 2**64, spawn_key=(stream,))
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def evaluation_steps(
    config: TrialConfig, *, steps_per_epoch: int, budget_epochs: Sequence[int] = ()
) -> list[int]:
    """The steps at which a full run of `config` evaluates, in order (what `Trainer` does).

    The end of every `eval_every`-th epoch and of every budget point, every multiple of
    `eval_every_steps`, and always the last step.
    """
    total = config.epochs * steps_per_epoch
    points = {
        e * steps_per_epoch for e in range(config.eval_every, config.epochs + 1, config.eval_every)
    }
    points |= {k * steps_per_epoch for k in budget_epochs if k <= config.epochs}
    if config.eval_every_steps is not None:
        points |= set(range(config.eval_every_steps, total + 1, config.eval_every_steps))
    return sorted(points | {total})


def check_budget_epochs(budget_epochs: Sequence[int], *, epochs: int) -> tuple[int, ...]:
    """The budget points short of the run's own `epochs`, sorted; each must be in 1..epochs."""
    for k in budget_epochs:
        if not 1 <= k <= epochs:
            raise UsageError(f"budget point of {k} epochs is outside 1..{epochs} (key 'epochs')")
    return tuple(sorted({k for k in budget_epochs if k < epochs}))


def schedules_reading_total(config: TrialConfig) -> list[str]:
    """The config keys whose schedule in this run reads its total number of steps: then the
    first k epochs of the run are not a k-epoch run (α's schedule only matters to RKDO)."""
    keys = schedules_over_total(
        alpha_schedule=config.alpha_schedule, tau_schedule=config.tau_schedule
    )
    rkdo_only = fields_in_scope(SCOPE_RKDO)
    return [k for k in keys if config.objective == "rkdo" or k not in rkdo_only]


def load_data(config: TrialConfig) -> ImageData:
    """The dataset a config names, in memory as uint8 (shared by seeds of one trial), split
    as its run is scored: on `eval_split` validation, the train split less the held-out
    images, and those images as the split the run is scored on."""
    data = load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        download=config.download,
        synthetic_size=config.synthetic_size,
        synthetic_classes=config.synthetic_classes,
        synthetic_samples=config.synthetic_samples,
    )
    if config.eval_split == SPLIT_VALIDATION:
        return holdout_validation(data, config.validation_fraction)
    return data
