"""Optuna's GridSampler for ask-and-tell use (Ray's OptunaSearch), imported only with Optuna."""

from __future__ import annotations

from typing import Any

import optuna


class AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler without the `study.stop()` it calls once the grid is done.

    `Study.stop` only works inside `study.optimize`; under ask-and-tell it raises,
    and Ray's OptunaSearch logs that as a warning on the last grid trial. The
    grid size is enforced by `search.num_samples` instead (at most the grid size).
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None
