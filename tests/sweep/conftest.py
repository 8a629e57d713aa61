"""Shared by the search-space tests: drive a space's own sampler the way Ray's OptunaSearch does."""

from __future__ import annotations

import optuna
import pytest

from rkdo_tune.sweep import make_sampler, sample_params

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run_study(space, sampler=None) -> list[dict]:
    """Every configuration the sampler proposes (ask/tell, points enqueued first)."""
    study = optuna.create_study(sampler=sampler or make_sampler(space), direction="maximize")
    for point in space.search.points_to_evaluate:
        study.enqueue_trial(dict(point))
    sampled = []
    for i in range(space.search.num_samples):
        trial = study.ask()
        sampled.append(sample_params(space, trial))
        study.tell(trial, 0.1 * (i % 7))  # as Ray does; a finished grid must not raise here
    return sampled


@pytest.fixture
def run_study():
    return _run_study
