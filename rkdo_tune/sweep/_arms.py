"""The search stage's two arms in Ray Tune: Optuna's samples and the I-Con control arm.

The baseline is one more Tune trial, not an Optuna sample: the searcher hands it
out on its first `suggest` and never tells Optuna about it, and the schedulers
never see it, so it is neither counted by the sampler nor stopped early. Its id
lives in the searcher's own attributes, which Ray pickles with the searcher
(`OptunaSearch.save` saves `__dict__`), so `Tuner.restore` keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from rkdo_tune.sweep.protocol import TrialRole, split_markers
from rkdo_tune.verdict import ARM_BASELINE

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


class NonFiniteFailsOptunaSearch(OptunaSearch):
    """OptunaSearch that records a NaN/inf final metric (a diverged trial) as FAIL.

    Ray's version passes the NaN to `study.tell`, which rejects it, and the
    Optuna trial stays RUNNING forever.
    """

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        value = (result or {}).get(self.metric)
        if isinstance(value, float) and not math.isfinite(value):
            result = {k: v for k, v in result.items() if k != self.metric}
            error = True
        super().on_trial_complete(trial_id, result, error)


class StudySearch(NonFiniteFailsOptunaSearch):
    """The first suggestion is the baseline arm (when there is one); Optuna samples the rest.

    Not a wrapper with a `.searcher` attribute: Tune's `save_to_dir` walks such
    chains and calls `get_state`, which a plain Searcher does not implement.
    """

    def __init__(self, *args: Any, baseline: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.baseline_params = dict(baseline) if baseline is not None else None
        self.baseline_trial_id: str | None = None

    def _is_baseline(self, trial_id: str) -> bool:
        return self.baseline_trial_id is not None and trial_id == self.baseline_trial_id

    def suggest(self, trial_id: str) -> dict | None:
        if self.baseline_params is not None and self.baseline_trial_id in (None, trial_id):
            self.baseline_trial_id = trial_id
            return {**TrialRole(arm=ARM_BASELINE).markers(), **self.baseline_params}
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if not self._is_baseline(trial_id):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if not self._is_baseline(trial_id):
            super().on_trial_complete(trial_id, result, error)


def _is_baseline(trial: Trial) -> bool:
    role, _ = split_markers(trial.config or {})
    return role.is_baseline


class _ExemptsBaseline:
    """Every scheduler hook skips the baseline: skipping only some raises KeyError in ASHA."""

    def on_trial_add(self, tune_controller: object, trial: Trial) -> None:
        if not _is_baseline(trial):
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: object, trial: Trial, result: dict) -> str:
        if _is_baseline(trial):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: object, trial: Trial, result: dict) -> None:
        if not _is_baseline(trial):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: object, trial: Trial) -> None:
        if not _is_baseline(trial):
            super().on_trial_remove(tune_controller, trial)


class StudyASHA(_ExemptsBaseline, ASHAScheduler):
    """ASHA over the searched trials only: the baseline is never stopped early."""


class StudyMedianStopping(_ExemptsBaseline, MedianStoppingRule):
    """The median stopping rule over the searched trials only."""
