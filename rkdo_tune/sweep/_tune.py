"""Tune plumbing both stages share: the trainable with its resources, and the run config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from rkdo_tune.sweep.plan import SweepOptions, SweepPlan
from rkdo_tune.sweep.protocol import ObserverFactory, SearchSpace
from rkdo_tune.sweep.trial import sweep_trial


def make_trainable(
    space: SearchSpace, observer_factory: ObserverFactory | None
) -> Callable[[dict[str, Any]], None]:
    """`sweep_trial` bound to `space` (whose seeds it trains) with the space's resources."""
    trainable = tune.with_parameters(sweep_trial, space=space, observer_factory=observer_factory)
    return tune.with_resources(
        trainable, {"cpu": space.resources.cpus, "gpu": space.resources.gpus}
    )


def run_config_for(
    name: str, plan: SweepPlan, options: SweepOptions, callbacks: Sequence[tune.Callback]
) -> tune.RunConfig:
    """Experiment `name` in the sweep's storage, with JSON and CSV results per trial."""
    return tune.RunConfig(
        name=name,
        storage_path=plan.storage_path,
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[*callbacks, JsonLoggerCallback(), CSVLoggerCallback()],
        verbose=0,
    )
