"""The Ray Tune trial: one sampled configuration, trained over every repeat seed in lockstep.

Seeds run epoch by epoch side by side, so each report carries the mean over
seeds (what Optuna and the scheduler act on) and every seed's own value
(what paired tests need). Each report carries a checkpoint of every seed's
full trainer state, so a resumed trial continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.sweep.protocol import (
    EPOCH_KEY,
    NODE_KEY,
    REASON_KEY,
    REPORTED_METRICS,
    STATUS_KEY,
    STEP_KEY,
    ObserverFactory,
    SearchSpace,
    TrialObserver,
    TrialRole,
    budget_key,
    seed_key,
    split_markers,
    trial_device,
)
from rkdo_tune.training.callbacks import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    TrainCallback,
    TrainResult,
)
from rkdo_tune.verdict import STAGE_SEARCH

if TYPE_CHECKING:  # torch and the trainer load on the worker only, not in the sweep driver
    from rkdo_tune.training import Trainer

# Called with each report before Tune gets it (a TrialObserver's `on_report`).
ReportHook = Callable[[Mapping[str, Any]], None]


def _latest_evals(trainer: Trainer) -> dict[str, float]:
    return {key: values[-1] for key, values in trainer.history.evals.items() if values}


def aggregate(
    trainers: Sequence[Trainer], results: Sequence[TrainResult] | None = None
) -> dict[str, Any]:
    """One Tune result from the seeds' latest evaluations (and, at the end, their diagnostics
    and each budget point's own result under `budget/e<k>/`)."""
    seeds = [trainer.config.seed for trainer in trainers]
    if results is None:
        report = _scores(seeds, [_latest_evals(t) for t in trainers], REPORTED_METRICS)
        report.update(_run_fields(seeds, [(t.status, t.reason, t.epoch, t.step) for t in trainers]))
        return report
    report = _final_fields(seeds, results, name=str)
    for k in sorted(results[0].budgets):
        points = [result.budgets[k] for result in results]
        report.update(_final_fields(seeds, points, name=lambda key, k=k: budget_key(k, key)))
    return report


def _final_fields(
    seeds: Sequence[int], results: Sequence[TrainResult], *, name: Callable[[str], str]
) -> dict[str, Any]:
    """Scores, diagnostics, status and progress of finished runs (one per seed), each key
    under `name(key)`."""
    keys = REPORTED_METRICS + m.DIAG_METRICS
    fields = _scores(seeds, [result.metrics for result in results], keys, name=name)
    ends = [(r.status, r.reason, r.epochs_completed, r.steps) for r in results]
    return {**fields, **_run_fields(seeds, ends, name=name)}


def _scores(
    seeds: Sequence[int],
    per_seed: Sequence[Mapping[str, float]],
    keys: Sequence[str],
    *,
    name: Callable[[str], str] = str,
) -> dict[str, Any]:
    """Seed-mean, `_std` and every seed's own value of each of `keys` (under `name(key)`)."""
    report: dict[str, Any] = {}
    for key in keys:
        values = [scores.get(key, math.nan) for scores in per_seed]
        mean, std = m.mean_over_seeds(values, non_finite="propagate")
        report[name(key)], report[name(f"{key}_std")] = mean, std
        for seed, value in zip(seeds, values, strict=True):
            report[seed_key(seed, name(key))] = value
    return report


def _run_fields(
    seeds: Sequence[int],
    ends: Sequence[tuple[str, str, int, int]],
    *,
    name: Callable[[str], str] = str,
) -> dict[str, Any]:
    """Status, reasons, epoch and step of runs given as (status, reason, epoch, step)."""
    statuses = [status for status, *_ in ends]
    reasons = [f"seed {seed}: {end[1]}" for seed, end in zip(seeds, ends, strict=True) if end[1]]
    status = STATUS_DIVERGED if STATUS_DIVERGED in statuses else _common_status(statuses)
    return {
        name(STATUS_KEY): status,
        name(REASON_KEY): "; ".join(reasons),
        name(EPOCH_KEY): max(end[2] for end in ends),
        name(STEP_KEY): max(end[3] for end in ends),
    }


def _common_status(statuses: Sequence[str]) -> str:
    unique = set(statuses)
    return unique.pop() if len(unique) == 1 else STATUS_COMPLETED


def _restore(trainers: Sequence[Trainer]) -> None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return
    with checkpoint.as_directory() as directory:
        for trainer in trainers:
            trainer.restore(Path(directory) / f"seed_{trainer.config.seed}")


def _report(
    trainers: Sequence[Trainer], report: dict[str, Any], on_report: ReportHook | None
) -> None:
    report[NODE_KEY] = trial_identity()[1]
    report.update(device_memory_peaks())
    if on_report is not None:
        on_report(report)
    with tempfile.TemporaryDirectory(prefix="rkdo-ckpt-") as directory:
        for trainer in trainers:
            trainer.save_checkpoint(Path(directory) / f"seed_{trainer.config.seed}")
        tune.report(dict(report), checkpoint=tune.Checkpoint.from_directory(directory))


def build_trainers(
    configs: Sequence[TrialConfig],
    callbacks: Sequence[TrainCallback | None],
    *,
    budget_epochs: Sequence[int] = (),
) -> list[Trainer]:
    """One trainer per seed, sharing one in-memory copy of the dataset."""
    from rkdo_tune.training.run_setup import load_data
    from rkdo_tune.training.trainer import Trainer

    data = load_data(configs[0])
    return [
        Trainer(config, data=data, callback=callback, budget_epochs=budget_epochs)
        for config, callback in zip(configs, callbacks, strict=True)
    ]


def trial_budget_epochs(space: SearchSpace, role: TrialRole, config: TrialConfig) -> list[int]:
    """The budget points a trial records inside its run: the space's, up to its own epochs.
    A confirmation re-runs one budget point, so it records none."""
    if role.stage != STAGE_SEARCH:
        return []
    return [k for k in space.budget_epochs if k < config.epochs]


def run_seeds_in_lockstep(
    trainers: Sequence[Trainer], *, on_report: ReportHook | None = None
) -> tuple[list[TrainResult], dict[str, Any]]:
    """Drive every seed one epoch at a time; report after each evaluation and at the end."""
    _restore(trainers)
    for trainer in trainers:
        trainer.start()
    reported_evals = len(trainers[0].history.eval_steps)
    while True:
        alive = [trainer.run_epoch() for trainer in trainers]
        if not any(alive):
            results = [trainer.finish() for trainer in trainers]
            report = aggregate(trainers, results)
            _report(trainers, report, on_report)
            return results, report
        evals = len(trainers[0].history.eval_steps)
        if evals > reported_evals:
            reported_evals = evals
            _report(trainers, aggregate(trainers), on_report)


def trial_identity() -> tuple[str, str]:
    """(Ray trial id, Ray node id) of the running trial."""
    import ray

    return tune.get_context().get_trial_id(), ray.get_runtime_context().get_node_id()


def sweep_trial(
    params: dict[str, Any],
    *,
    space: SearchSpace,
    observer_factory: ObserverFactory | None = None,
) -> None:
    """The function Ray Tune runs for one trial (one configuration over every seed).

    Ray reuses the worker process for the next trial, so nothing here may leave
    state behind: torch threads and RNGs are set per trial, MLflow is reached
    through explicit clients and run ids only, and the CUDA cache is released.
    """
    from rkdo_tune.sweep.space import trial_config
    from rkdo_tune.training.run_setup import set_cpu_threads

    set_cpu_threads(space.resources.cpus)  # the CPU share Ray gave this trial
    role, values = split_markers(params)  # trial_config rejects keys that are not config fields
    configs = [trial_config(space, values, seed=seed) for seed in space.seeds]
    configs = [
        dataclasses.replace(
            c, device=trial_device(c.device, space), eval_split=space.eval_split(role.stage)
        )
        for c in configs
    ]
    observer = observer_factory() if observer_factory is not None else TrialObserver()
    trial_id, node_id = trial_identity()
    try:
        callbacks = observer.seed_callbacks(
            params=values, role=role, configs=configs, trial_id=trial_id, node_id=node_id
        )
        budgets = trial_budget_epochs(space, role, configs[0])
        trainers = build_trainers(configs, callbacks, budget_epochs=budgets)
        _, final = run_seeds_in_lockstep(trainers, on_report=observer.on_report)
    except BaseException as exc:
        observer.on_finish(report=None, error=exc)
        # The traceback's frames hold the trainers (model, optimiser, data on the device):
        # drop them, or the release below frees nothing after a scheduler stop (ray#23971).
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        release_device_memory()
    observer.on_finish(report=final, error=None)


def release_device_memory() -> None:
    """Hand cached CUDA blocks back: Ray reuses this worker, and fractional-GPU
    neighbours on the same device need the memory more than the next trial does."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # the next trial's peaks start from here


CUDA_PEAK_ALLOCATED_KEY = "cuda_peak_allocated_mb"
CUDA_PEAK_RESERVED_KEY = "cuda_peak_reserved_mb"


def device_memory_peaks() -> dict[str, float]:
    """This worker's peak CUDA memory (MiB) since its trial began; empty when CUDA is unused.

    Tensors (allocated) and the caching allocator's hold on the device
    (reserved): the latter is what fractional-GPU neighbours compete for.
    """
    import torch

    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return {}
    return {
        CUDA_PEAK_ALLOCATED_KEY: torch.cuda.max_memory_allocated() / 2**20,
        CUDA_PEAK_RESERVED_KEY: torch.cuda.max_memory_reserved() / 2**20,
    }
