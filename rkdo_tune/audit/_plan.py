"""What an audit will run, and how long it should take: `--dry-run`'s plan and estimate.

The estimate comes from a short calibration: a few optimiser steps and evaluations of
the audit's own base configuration, timed in this process. Each study's training runs
are then costed by their steps and evaluations, divided over the trials that run at
once, plus fixed costs per study (Tune experiments, floors) measured on the 2-core
CPU box (benchmarks/README.md §3). It is an estimate and says so.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rkdo_tune.audit._studies import Study
from rkdo_tune.config import TrialConfig
from rkdo_tune.sweep.plan import SweepPlan
from rkdo_tune.sweep.space import (
    SearchSpace,
    confirmation_trial_count,
    search_trial_count,
)
from rkdo_tune.training import TrainCallback, train

CALIBRATION_STEPS = 12
CALIBRATION_EVAL_EVERY = 4
RAY_START_S = 6.0  # driver imports and ray.init(), once per audit (benchmarks §3: 5.9 s)
EXPERIMENT_S = 4.0  # one Tune experiment's start, stop and state (per stage of a study)
TRIAL_S = 2.5  # per Tune trial inside the trainable (benchmarks §3: 2.5 s)
STUDY_REPORT_S = 8.0  # reading one study back from MLflow and writing its report


@dataclass(frozen=True)
class Calibration:
    step_s: float  # one optimiser step
    eval_s: float  # one evaluation (probes, kNN, clustering, yardstick)
    steps_per_epoch: int  # a full pass over the train split, at the base batch size


class _Clock(TrainCallback):
    """Wall-clock time of each step and each evaluation."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.evals: list[float] = []
        self.total = 0
        self._last = time.perf_counter()

    def on_start(self, *, config: TrialConfig, total_steps: int, start_step: int) -> None:
        self.total = total_steps
        self._last = time.perf_counter()

    def on_step(self, *, step: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        self.steps.append(now - self._last)
        self._last = now

    def on_eval(self, **_: object) -> bool:
        now = time.perf_counter()
        self.evals.append(now - self._last)
        self._last = now
        return False


def calibrate(config: TrialConfig) -> Calibration:
    """Time a short run of `config` (a dozen steps, three evaluations) in this process."""
    full = TrialConfig(**{**config.to_dict(), "epochs": 1, "steps_per_epoch": None})
    clock = _Clock()
    short = full.to_dict() | {
        "steps_per_epoch": CALIBRATION_STEPS,
        "eval_every_steps": CALIBRATION_EVAL_EVERY,
    }
    train(TrialConfig(**short), callback=clock)
    step_s = statistics.median(clock.steps[1:] or clock.steps)  # the first holds warm-up
    eval_s = statistics.median(clock.evals) if clock.evals else 0.0
    return Calibration(step_s, eval_s, _full_epoch_steps(full))


def _full_epoch_steps(config: TrialConfig) -> int:
    from rkdo_tune.training.run_setup import load_data  # torch: only when calibrating

    data = load_data(config)
    return max(1, len(data.train_labels) // config.batch_size)  # the trainer drops the rest


def run_seconds(config: TrialConfig, calibration: Calibration) -> float:
    """One training run of `config`: its steps and its evaluations (as the trainer plans them)."""
    from rkdo_tune.training.run_setup import evaluation_steps

    per_epoch = config.steps_per_epoch or calibration.steps_per_epoch
    evals = evaluation_steps(config, steps_per_epoch=per_epoch)
    return config.epochs * per_epoch * calibration.step_s + len(evals) * calibration.eval_s


@dataclass(frozen=True)
class StudyPlan:
    study: Study
    space: SearchSpace
    plan: SweepPlan
    trials: int
    training_runs: int
    seconds: float


def plan_study(
    study: Study, space: SearchSpace, plan: SweepPlan, c: Calibration | None
) -> StudyPlan:
    """Its trials, its training runs and (calibrated) their time over the trials run at once."""
    trials = search_trial_count(space) + confirmation_trial_count(space)
    runs = plan.training_runs
    if c is None:
        return StudyPlan(study, space, plan, trials, runs, math.nan)
    concurrent = max(1, space.search.max_concurrent)
    train_s = runs * run_seconds(space.base_config, c) / concurrent
    stages = 1 + bool(space.baseline_search) + (space.confirm is not None)
    overhead = stages * EXPERIMENT_S + trials * TRIAL_S / concurrent + STUDY_REPORT_S
    floors = run_seconds(space.base_config, c)  # the supervised ceiling: one base run
    return StudyPlan(study, space, plan, trials, runs, train_s + overhead + floors)


def plan_lines(name: str, studies: Sequence[StudyPlan], c: Calibration | None) -> list[str]:
    """The dry run's text: each study, its trials and runs, and the time estimate."""
    lines = [f"audit {name}: {len(studies)} studies, one MLflow run with a sweep run each"]
    for s in studies:
        claims = ", ".join(str(n) for n in s.study.claims)
        est = f", about {s.seconds / 60:.1f} min" if c else ""
        lines.append(
            f"  {s.plan.name}: {s.study.file} (claims {claims}): {s.trials} trials, "
            f"{s.training_runs} training runs{est}"
        )
    runs = sum(s.training_runs for s in studies)
    if c is None:
        lines.append(f"  {runs} training runs in all")
        return lines
    total = RAY_START_S + sum(s.seconds for s in studies)
    lines.append(
        f"  {runs} training runs in all; estimate about {total / 60:.1f} min on this machine "
        f"(calibrated: {c.step_s * 1000:.0f} ms per step, {c.eval_s:.2f} s per evaluation, "
        f"{c.steps_per_epoch} steps per full epoch)"
    )
    return lines
