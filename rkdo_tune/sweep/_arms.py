"""The search stage's two arms in Ray Tune: Optuna's samples and the I-Con control arm.

The baseline is one more Tune trial, not an Optuna sample: the searcher hands it
out on its first `suggest` and never tells Optuna about it, and the schedulers
never see it, so it is neither counted by the sampler nor stopped early. Its id
lives in the searcher's own attributes, which Ray pickles with the searcher
(`OptunaSearch.save` saves `__dict__`), so `Tuner.restore` keeps it.

Tune saves a sweep as three files, one after the other: the experiment state
(its trials), the searcher, then the search generator and concurrency limiter.
A driver killed between them leaves a searcher that has not heard of a trial
Tune restores, or that still waits for one Tune has finished. Every scheduler
here hands each trial Tune adds (the restored ones included) to
`StudyLimiter.reconcile` first, so the searcher knows each trial before it
reports, finished ones are told to Optuna, and no configuration is handed out
twice: the searcher stops at its budget of suggestions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils import flatten_dict

from rkdo_tune.sweep._failures import retry_lost_workers
from rkdo_tune.sweep.protocol import TrialRole, split_markers
from rkdo_tune.verdict import ARM_BASELINE

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

_ENDED = ("TERMINATED", "ERROR")  # Trial.TERMINATED, Trial.ERROR: Tune reports no more


def _non_finite(value: object) -> bool:
    return isinstance(value, int | float) and not math.isfinite(value)


class NonFiniteFailsOptunaSearch(OptunaSearch):
    """OptunaSearch that records a NaN/inf final metric (a diverged trial) as FAIL.

    Ray's version passes the NaN to `study.tell`, which rejects it, and the
    Optuna trial stays RUNNING forever. With several objectives (`metric` a list)
    one NaN among them does the same, and so does one missing: the parent tells
    its values only when `result` is empty, so a partial list never reaches Optuna.
    """

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        names = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [(result or {}).get(name) for name in names]
        if any(_non_finite(v) for v in values):
            result, error = None, True  # no values and an error: the parent tells FAIL
        elif len(names) > 1 and None in values:
            result = None  # an objective never reported: PRUNED, or FAIL with `error`
        super().on_trial_complete(trial_id, result, error)


class StudySearch(NonFiniteFailsOptunaSearch):
    """The first suggestion is the baseline arm (when there is one); Optuna samples the rest.

    Not a wrapper with a `.searcher` attribute: Tune's `save_to_dir` walks such
    chains and calls `get_state`, which a plain Searcher does not implement.
    """

    budget: int | None = None  # also for a searcher pickled before it had one

    def __init__(
        self,
        *args: Any,
        baseline: Mapping[str, Any] | None = None,
        budget: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.baseline_params = dict(baseline) if baseline is not None else None
        self.baseline_trial_id: str | None = None
        self.budget = budget  # Tune trials handed out in all, the baseline included

    def _is_baseline(self, trial_id: str) -> bool:
        return self.baseline_trial_id is not None and trial_id == self.baseline_trial_id

    def _handed_out(self) -> int:
        return len(self._ot_trials) + (self.baseline_trial_id is not None)

    def suggest(self, trial_id: str) -> dict | str | None:
        known = trial_id in self._ot_trials or trial_id == self.baseline_trial_id
        if self.budget is not None and not known and self._handed_out() >= self.budget:
            return Searcher.FINISHED  # a search generator restored behind its trials asks again
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

    def reconcile(self, trial: Trial) -> bool:
        """Know `trial`, which Tune restored or just added; True when it was new here.

        A finished trial the searcher still waits for is told to Optuna now.
        """
        role, params = split_markers(trial.config or {})
        if role.is_baseline:
            self.baseline_trial_id = self.baseline_trial_id or trial.trial_id
            return False
        adopted = trial.trial_id not in self._ot_trials
        if adopted:
            self._ot_trials[trial.trial_id] = self._running_trial_for(params)
        if trial.status in _ENDED and trial.trial_id not in self._completed_trials:
            result = flatten_dict(trial.last_result or {})
            self.on_trial_complete(trial.trial_id, result, error=trial.status == "ERROR")
        return adopted

    def _running_trial_for(self, params: Mapping[str, Any]) -> optuna.Trial:
        """The Optuna trial of `params`: one asked for and never owned (a persistent
        study keeps it), else a new running one with those values."""
        owned = {t.number for t in self._ot_trials.values()}
        study = self._ot_study
        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if frozen.number not in owned and frozen.params == dict(params):
                return optuna.Trial(study, frozen._trial_id)
        fixed = optuna.trial.FixedTrial(dict(params))
        self._space(fixed)  # define-by-run: records each parameter's distribution
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING,
                params=dict(params),
                distributions=fixed.distributions,
            )
        )
        return optuna.Trial(study, study.get_trials(deepcopy=False)[-1]._trial_id)


class StudyLimiter(ConcurrencyLimiter):
    """Ray's concurrency limit over a `StudySearch`, kept in step with restored trials."""

    def reconcile(self, trial: Trial) -> None:
        """Count `trial` as live exactly while Tune has not finished it."""
        self.searcher.reconcile(trial)
        live = trial.trial_id in self.live_trials
        if trial.status in _ENDED and live:
            self.live_trials.discard(trial.trial_id)
            self.num_unfinished_live_trials -= 1
        elif trial.status not in _ENDED and not live:
            self.live_trials.add(trial.trial_id)
            self.num_unfinished_live_trials += 1


def _is_baseline(trial: Trial) -> bool:
    role, _ = split_markers(trial.config or {})
    return role.is_baseline


class _Reconciles:
    """Sees every trial Tune adds first (on --resume each restored one, after the searcher
    is restored and before any trial reports): hands it to the searcher, and gives it the
    lost-worker accounting of `_failures`."""

    study: StudyLimiter | None = None  # set by the runner; pickled with the Tuner

    def on_trial_add(self, tune_controller: object, trial: Trial) -> None:
        retry_lost_workers(trial)
        if self.study is not None:
            self.study.reconcile(trial)
        super().on_trial_add(tune_controller, trial)


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


class StudyASHA(_Reconciles, _ExemptsBaseline, ASHAScheduler):
    """ASHA over the searched trials only: the baseline is never stopped early."""


class StudyMedianStopping(_Reconciles, _ExemptsBaseline, MedianStoppingRule):
    """The median stopping rule over the searched trials only."""


class StudyFIFO(_Reconciles, FIFOScheduler):
    """Trials in order, none stopped early (scheduler kind none)."""
