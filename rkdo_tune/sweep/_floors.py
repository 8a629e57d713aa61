"""What a sweep computes once beside its trials: the floors and the environment block.

The floors depend on the dataset, model, protocol, evaluation seed and shared
settings of the space's base settings (`floors.FloorKey`), not on any trial, so a
sweep computes them once, in a Ray task with one trial's resources, while the
trials run. A resumed sweep reuses what its MLflow run holds, and a new one what
an earlier finished sweep of the same key recorded (`SweepTracker.cached_references`):
then the task only reports the environment, and asks for no CPU (a trial's GPU
share still, so that it sees the trials' device).
The same task reports the worker's part of the environment block (device, torch
settings, data hash); the driver adds its own (git, versions, command line).
The driver never imports torch: the task imports `training.floors` on the worker.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import ray
import yaml

from rkdo_tune.environment import driver_environment
from rkdo_tune.floors import FloorKey, References

if TYPE_CHECKING:
    from rkdo_tune.sweep.protocol import SearchSpace, SweepOutcome, SweepTracker

# Config keys that change the floors: a space that searches one gets the base value's floors.
KEY_FIELDS = ("dataset", "model", "protocol")
SideChecks = tuple[References | None, dict[str, str]]


@ray.remote(max_retries=0)
def _side_checks(config_values: dict[str, Any], references: bool, cpus: float) -> SideChecks:
    from rkdo_tune.config import TrialConfig
    from rkdo_tune.training.floors import side_checks
    from rkdo_tune.training.run_setup import set_cpu_threads

    set_cpu_threads(cpus)  # as a trial does: the environment reports the trials' threads
    return side_checks(TrialConfig(**config_values), references=references)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class EvidenceJob:
    """The floors (cached, or computed in a Ray task started at once) and the environment."""

    def __init__(self, space: SearchSpace, tracker: SweepTracker) -> None:
        values = space.base_config.to_dict()
        self.key = FloorKey.of(values)
        self.note = ""
        searched = [p.name for p in space.parameters if p.name in KEY_FIELDS]
        if searched:
            self.note = (
                f"floors of the base settings ({self.key.label()}); the space searches "
                f"{', '.join(searched)}"
            )
        cached = tracker.cached_references(self.key)
        self.cached = cached[0] if cached is not None else None
        if cached is not None and cached[1] != tracker.OWN_RUN:
            reused = f"floors reused from {cached[1]}, computed for the same key"
            self.note = f"{self.note}; {reused}" if self.note else reused
        self.environment = driver_environment(
            resolved_space=yaml.safe_dump(dict(space.raw), sort_keys=False)
        )
        self.ref = self._submit(space, values)

    def _submit(self, space: SearchSpace, values: dict[str, Any]) -> ray.ObjectRef:
        """Computing floors holds one trial's resources. With floors cached, only the
        environment is read (a second or two of imports): the task asks for no CPU, so the
        first trial's worker starts beside it instead of after it."""
        resources = space.resources
        cpus = resources.cpus if self.cached is None else 0
        task = _side_checks.options(num_cpus=cpus, num_gpus=resources.gpus)
        return task.remote(values, self.cached is None, resources.cpus)

    def result(self) -> tuple[References | None, str, dict[str, str]]:
        """The floors and why absent (waiting for the task), and the whole environment."""
        try:
            computed, worker = ray.get(self.ref)
        except Exception as exc:  # a failed side-check must not lose the sweep's results
            reason = _one_line(exc)
            note = "" if self.cached is not None else f"floors not computed: {reason}"
            environment = {**self.environment, "worker part": f"not computed: {reason}"}
            return self.cached, note or self.note, environment
        return self.cached or computed, self.note, {**self.environment, **worker}

    def cancel(self) -> None:
        ray.cancel(self.ref, force=True)

    def attach(self, outcome: SweepOutcome) -> SweepOutcome:
        """The outcome with the floors, any note about them, and the environment block."""
        references, note, environment = self.result()
        return dataclasses.replace(
            outcome, references=references, references_note=note, environment=environment
        )
