"""A search over several objectives: Ray's OptunaSearch given lists, each sampler on a
multi-objective study, and a NaN in one objective recorded as a failed Optuna trial.

Against real Optuna studies and the real searcher classes; no Ray cluster is started.
"""

from __future__ import annotations

import functools
import math

import optuna
import pytest

from rkdo_tune import metrics as m
from rkdo_tune.sweep import load_space, make_sampler, sample_params
from rkdo_tune.sweep._arms import StudySearch
from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.runner import _scheduler, _searcher

ACC, AUC = m.EVAL_LINEAR_ACC, m.EVAL_LINEAR_ACC_AUC
State = optuna.trial.TrialState


def _searcher_for(metric: str | list[str], mode: str | list[str]) -> StudySearch:
    space = load_space("pareto_alpha_depth")
    return StudySearch(
        space=functools.partial(sample_params, space),
        metric=metric,
        mode=mode,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


def _states(searcher: StudySearch) -> list[tuple[str, list[float] | None]]:
    return [(t.state.name, t.values) for t in searcher._ot_study.get_trials(deepcopy=False)]


def test_a_nan_in_one_objective_fails_the_optuna_trial_instead_of_leaving_it_running():
    searcher = _searcher_for([ACC, AUC], ["max", "max"])
    for i in range(5):
        searcher.suggest(f"t{i}")
    searcher.on_trial_result("t0", {ACC: 0.5, AUC: 0.4})  # no intermediate values: ignored
    searcher.on_trial_complete("t0", {ACC: 0.9, AUC: 0.8})
    searcher.on_trial_complete("t1", {ACC: 0.9, AUC: math.nan})  # diverged late
    searcher.on_trial_complete("t2", {ACC: math.inf, AUC: 0.8}, error=False)
    searcher.on_trial_complete("t3", {ACC: 0.9})  # one objective never reported
    searcher.on_trial_complete("t4", None, error=True)  # the trial raised
    assert _states(searcher) == [
        ("COMPLETE", [0.9, 0.8]),
        ("FAIL", None),
        ("FAIL", None),
        ("PRUNED", None),
        ("FAIL", None),
    ]
    assert searcher._ot_study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2


def test_one_objective_keeps_its_nan_rule():
    searcher = _searcher_for(ACC, "max")
    for i in range(3):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {ACC: 0.9, AUC: math.nan})  # not an objective here
    searcher.on_trial_complete("t1", {ACC: math.nan})
    searcher.on_trial_complete("t2", {AUC: 0.5})
    assert _states(searcher) == [("COMPLETE", [0.9]), ("FAIL", None), ("PRUNED", None)]


def test_the_sweeps_searcher_gets_every_objective_and_the_scheduler_is_fifo(tmp_path):
    space = load_space("pareto_alpha_depth")
    options = SweepOptions(name="mo", storage=str(tmp_path / "results"))
    limiter = _searcher(space, plan_sweep(space, options), options)
    searcher = limiter.searcher
    assert (searcher.metric, searcher.mode) == ([ACC, AUC], ["max", "max"])
    assert len(searcher._ot_study.directions) == 2
    assert type(_scheduler(space)).__name__ == "StudyFIFO"
    assert searcher.suggest("first") == {"rkdo_arm": "baseline", "objective": "icon"}
    assert searcher.suggest("second") == {"alpha": 0.5, "depth": 3}  # the reference, enqueued


@pytest.mark.parametrize("algorithm", ["tpe", "random", "qmc", "grid"])
def test_each_allowed_sampler_runs_a_multi_objective_study(algorithm):
    grid = ["parameters.alpha={type: float, low: 0.1, high: 0.9, step: 0.4}"] * (
        algorithm == "grid"
    )
    overrides = [f"search.algorithm={algorithm}", "search.points_to_evaluate=null", *grid]
    space = load_space("pareto_alpha_depth", overrides=overrides)
    study = optuna.create_study(sampler=make_sampler(space), directions=["maximize"] * 2)
    seen = set()
    for i in range(space.search.num_samples):
        trial = study.ask()
        params = sample_params(space, trial)
        seen.add((params["alpha"], params["depth"]))
        study.tell(trial, [0.1 * (i % 5), 1 - 0.1 * (i % 3)])
    assert len(seen) == space.search.num_samples
    assert all(t.state == State.COMPLETE for t in study.trials)
    assert study.best_trials  # the front Optuna keeps
