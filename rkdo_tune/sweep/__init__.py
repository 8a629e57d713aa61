"""`rkdo-tune sweep`: search spaces (this package's public API) and the Ray Tune runner.

Importing this package loads no Ray, MLflow or Optuna; the runner lives in
`rkdo_tune.sweep.runner` and is imported only when a sweep actually runs.
"""

from __future__ import annotations

from rkdo_tune.sweep.space import (
    SearchSpace,
    count_trials,
    list_spaces,
    load_space,
    make_sampler,
    resolve_space_path,
    sample_params,
    trial_config,
)

__all__ = [
    "SearchSpace",
    "count_trials",
    "list_spaces",
    "load_space",
    "make_sampler",
    "resolve_space_path",
    "sample_params",
    "trial_config",
]
