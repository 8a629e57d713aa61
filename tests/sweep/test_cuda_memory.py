"""CUDA memory is back between two trials on one reused Ray worker, the first stopped by ASHA.

ray#23971: a scheduler stops a function trainable by raising SystemExit in its
thread at the next report. While that exception is in flight (or kept by
Ray), its traceback holds the stopped trial's frames, and with them its
trainers: model, optimiser state and dataset on the GPU. `sweep_trial`
releases device memory in a `finally`; this checks, on a GPU, that the
memory really is back when the reused worker starts its next trial.

Three trials run one after another on one worker (`reuse_actors`), with ASHA
(grace 1, factor 2) on the mean epoch loss: RKDO's loss is the sum of its
level terms, so depth 8 scores well above depth 2 and the second trial is
stopped at its first rung, while the first trial sets the bar. The third trial
(depth 1, below the bar) is the "next trial" whose start is measured.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.protocol import SweepTracker, TrialObserver
from rkdo_tune.sweep.space import load_space

EPOCHS = 3
SLACK_MB = 1.0  # cuBLAS workspaces and the like may stay; a leaked resnet18 is ~130 MiB

SPACE = f"""
name: cuda-memory
description: Three trials on one worker; ASHA stops the second at its first rung.
metric: {{name: train/epoch_loss, mode: min}}
base:
  dataset: synthetic
  synthetic_size: 32
  synthetic_samples: 400
  model: resnet18
  batch_size: 64
  epochs: {EPOCHS}
  steps_per_epoch: 3
  protocol: paper
parameters:  # sampling the objective keeps out an extra I-Con arm; all three points are RKDO
  objective: {{type: categorical, choices: [rkdo, icon]}}
  depth: {{type: categorical, choices: [1, 2, 8], when: {{objective: [rkdo]}}}}
search:
  algorithm: random
  seed: 0
  num_samples: 3
  max_concurrent: 1
  points_to_evaluate:
    - {{objective: rkdo, depth: 2}}
    - {{objective: rkdo, depth: 8}}
    - {{objective: rkdo, depth: 1}}
scheduler: {{kind: asha, grace_period: 1, reduction_factor: 2}}
repeats: 1
"""


def _memory_mb() -> dict[str, float]:
    """This worker's CUDA memory now (0 before CUDA starts), and its live trainers."""
    import torch

    from rkdo_tune.training.trainer import Trainer

    live = sum(isinstance(obj, Trainer) for obj in gc.get_objects())
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return {"allocated_mb": 0.0, "reserved_mb": 0.0, "live_trainers": live}
    return {
        "allocated_mb": torch.cuda.memory_allocated() / 2**20,
        "reserved_mb": torch.cuda.memory_reserved() / 2**20,
        "live_trainers": live,
    }


class MemoryProbe(TrialObserver):
    """Appends one JSON line per trial event (start, report, finish) with the worker's memory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.trial_id = ""

    def _record(self, event: str, **extra: Any) -> None:
        entry = {"event": event, "trial_id": self.trial_id, "pid": os.getpid(), **_memory_mb()}
        with open(self.path, "a") as log:
            log.write(json.dumps({**entry, **extra}) + "\n")

    def seed_callbacks(
        self,
        *,
        params: Mapping[str, Any],
        configs: Sequence[Any],
        trial_id: str,
        node_id: str,
        role: object = None,
    ) -> list[None]:
        self.trial_id = trial_id
        self._record("start", params=dict(params))
        return [None] * len(configs)

    def on_report(self, report: Mapping[str, Any]) -> None:
        self._record("report", epoch=report["epoch"])

    def on_finish(self, *, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        self._record("finish", error=type(error).__name__ if error is not None else None)


class ProbeTracker(SweepTracker):
    def __init__(self, path: Path) -> None:
        self.path = path

    def observer_factory(self) -> functools.partial:
        return functools.partial(MemoryProbe, str(self.path))


def run_probed_sweep(tmp_path: Path, *, device: str, gpus: float) -> dict[str, Any]:
    """The three-trial sweep; each trial's probe events (in order) and last Tune report."""
    import ray
    import ray.cloudpickle

    from rkdo_tune.sweep.runner import run_sweep

    # Ray workers cannot import a test module: ship MemoryProbe by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    space_file = tmp_path / "cuda_memory.yaml"
    space_file.write_text(SPACE)
    overrides = [f"base.device={device}", f"resources.gpus={gpus}", "resources.cpus=1"]
    space = load_space(space_file, overrides=overrides)
    options = SweepOptions(name="cuda-memory", storage=str(tmp_path / "ray"))
    probe_log = tmp_path / "probe.jsonl"
    try:
        outcome, _ = run_sweep(
            space, plan_sweep(space, options), options, tracker=ProbeTracker(probe_log)
        )
    finally:
        ray.shutdown()
    events = [json.loads(line) for line in probe_log.read_text().splitlines()]
    order = list(dict.fromkeys(e["trial_id"] for e in events))
    last = {t.trial_id: t.metrics for t in outcome.trials}
    return {
        "order": order,
        "events": {tid: [e for e in events if e["trial_id"] == tid] for tid in order},
        "last_report": last,
    }


def _event(events: list[dict], name: str) -> dict:
    return next(e for e in events if e["event"] == name)


@pytest.mark.gpu
@pytest.mark.ray
@pytest.mark.slow
def test_cuda_memory_is_back_when_the_worker_starts_its_next_trial(tmp_path):
    run = run_probed_sweep(tmp_path, device="cuda", gpus=1)
    first, stopped, following = (run["events"][tid] for tid in run["order"])
    stopped_id = run["order"][1]

    # The setting: one worker throughout, and ASHA stopped the second trial at its first rung.
    assert len({e["pid"] for events in (first, stopped, following) for e in events}) == 1, (
        "Ray did not reuse the worker"
    )
    assert run["last_report"][stopped_id]["training_iteration"] == 1 < EPOCHS
    assert _event(stopped, "finish")["error"] is not None, "the stop did not come from outside"

    # The stopped trial held real memory, so a leak would show.
    assert _event(stopped, "report")["allocated_mb"] > 50
    before, after = _event(stopped, "start"), _event(following, "start")
    assert after["live_trainers"] == 0, "the stopped trial's trainers are still alive"
    assert after["allocated_mb"] <= before["allocated_mb"] + SLACK_MB
    assert after["reserved_mb"] <= before["reserved_mb"] + SLACK_MB
