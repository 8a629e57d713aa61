"""A driver killed between Tune's experiment state and its searcher state: resumed cleanly.

Tune saves the experiment state (its trials) first and the searcher's pickle
second. A kill between the two restores a trial the Optuna searcher never
handed out: Ray's searcher then raises KeyError on its first result, the
concurrency limiter drops its completion, and a grid would hand its point out
again. Here the real searcher, limiter and scheduler go through that restore.
"""

from __future__ import annotations

import functools
import math

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from rkdo_tune.sweep._arms import StudyFIFO, StudyLimiter, StudySearch
from rkdo_tune.sweep.protocol import split_markers
from rkdo_tune.sweep.space import load_space, make_sampler, sample_params, search_trial_count

SPACE = """
name: window
description: A grid of three and the I-Con baseline.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, objective: rkdo, epochs: 2, steps_per_epoch: 2}
parameters:
  alpha: {type: categorical, choices: [0.2, 0.5, 0.8]}
search: {algorithm: grid, seed: 0, max_concurrent: 3}
repeats: 1
resources: {cpus: 1, gpus: 0}
"""
METRIC = "eval/linear_acc"


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "window.yaml"
    path.write_text(SPACE)
    return load_space(str(path))


def _study(space) -> tuple[StudyLimiter, StudyFIFO]:
    """What runner.build_tuner builds: the searcher in its limiter, linked to the scheduler."""
    searcher = StudySearch(
        baseline=space.baseline,
        space=functools.partial(sample_params, space),
        metric=space.metric,
        mode=space.mode,
        sampler=make_sampler(space),
        budget=search_trial_count(space),
    )
    limiter = StudyLimiter(searcher, max_concurrent=space.search.max_concurrent)
    scheduler = StudyFIFO()
    scheduler.study = limiter
    return limiter, scheduler


def _trial(trial_id: str, config: dict, status: str = Trial.PENDING, value=None) -> Trial:
    trial = Trial("sweep_trial", config=config, trial_id=trial_id, stub=True)
    trial.set_status(status)
    if value is not None:
        trial.run_metadata.last_result = {METRIC: value, "training_iteration": 2}
    return trial


def _saved_then_killed(space, tmp_path):
    """Suggest the baseline and two grid points; the searcher was saved after the first point."""
    limiter, _ = _study(space)
    configs = {tid: limiter.suggest(tid) for tid in ("t0", "t1")}
    limiter.searcher.save(str(tmp_path / "searcher.pkl"))
    limiter_state = limiter.get_state()
    configs["t2"] = limiter.suggest("t2")  # Tune saved its trials with this one, then died
    assert all(configs.values())
    limiter.on_trial_result("t1", {METRIC: 0.4, "training_iteration": 1})
    return configs, limiter_state


def _restored(space, tmp_path, limiter_state) -> tuple[StudyLimiter, StudyFIFO]:
    limiter, scheduler = _study(space)  # as tuner.pkl holds them
    limiter.searcher.restore(str(tmp_path / "searcher.pkl"))
    limiter.set_state(limiter_state)
    return limiter, scheduler


def test_without_reconciling_the_restored_trial_is_a_key_error(space, tmp_path):
    _, limiter_state = _saved_then_killed(space, tmp_path)
    limiter, _ = _restored(space, tmp_path, limiter_state)
    with pytest.raises(KeyError):
        limiter.on_trial_result("t2", {METRIC: 0.5, "training_iteration": 1})


def test_restored_trials_are_adopted_told_and_never_handed_out_twice(space, tmp_path):
    configs, limiter_state = _saved_then_killed(space, tmp_path)
    limiter, scheduler = _restored(space, tmp_path, limiter_state)
    # Tune re-adds its restored trials: the baseline finished, t1 and t2 to resume.
    scheduler.on_trial_add(None, _trial("t0", configs["t0"], Trial.TERMINATED, value=0.3))
    scheduler.on_trial_add(None, _trial("t1", configs["t1"]))
    scheduler.on_trial_add(None, _trial("t2", configs["t2"]))
    limiter.on_trial_result("t2", {METRIC: 0.5, "training_iteration": 1})  # no KeyError
    configs["t3"] = limiter.suggest("t3")  # the generator, restored one behind, asks again
    for number, tid in enumerate(("t1", "t2", "t3")):
        limiter.on_trial_complete(tid, {METRIC: 0.1 * number, "training_iteration": 2})
    assert limiter.suggest("t4") == Searcher.FINISHED  # and again: the budget is spent

    alphas = sorted(split_markers(configs[tid])[1]["alpha"] for tid in ("t1", "t2", "t3"))
    assert alphas == [0.2, 0.5, 0.8], "a grid point was handed out twice"
    trials = limiter.searcher._ot_study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert sorted(t.params["alpha"] for t in trials) == alphas  # none lost, none twice
    assert limiter.live_trials == set()


def test_a_trial_finished_after_the_searcher_was_saved_is_told_on_restore(space, tmp_path):
    configs, limiter_state = _saved_then_killed(space, tmp_path)
    limiter, scheduler = _restored(space, tmp_path, limiter_state)
    scheduler.on_trial_add(None, _trial("t0", configs["t0"], Trial.TERMINATED, value=0.3))
    scheduler.on_trial_add(None, _trial("t1", configs["t1"], Trial.TERMINATED, value=0.7))
    scheduler.on_trial_add(None, _trial("t2", configs["t2"], Trial.TERMINATED, value=math.nan))
    states = [t.state.name for t in limiter.searcher._ot_study.get_trials(deepcopy=False)]
    assert states == ["COMPLETE", "FAIL"]  # a non-finite final value is a failed trial
    assert limiter.live_trials == set()  # no slot stays taken by a finished trial
