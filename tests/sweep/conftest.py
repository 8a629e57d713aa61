"""Shared by the search-space tests: drive a space's own sampler the way Ray's OptunaSearch does."""

from __future__ import annotations

import optuna
import pytest

from rkdo_tune.sweep import make_sampler, sample_params

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run_study(space, sampler=None) -> list[dict]:
    """Every configuration the sampler proposes (ask/tell, points enqueued first)."""
    # One objective: maximised whatever its mode (the values below are made up anyway).
    directions = ["maximize"] * len(space.objectives)
    study = optuna.create_study(sampler=sampler or make_sampler(space), directions=directions)
    for point in space.search.points_to_evaluate:
        study.enqueue_trial(dict(point))
    sampled = []
    for i in range(space.search.num_samples):
        trial = study.ask()
        sampled.append(sample_params(space, trial))
        value = 0.1 * (i % 7)  # as Ray does; a finished grid must not raise here
        values = [value, *[1 - value] * (len(directions) - 1)]  # several: a trade-off
        study.tell(trial, values[0] if len(values) == 1 else values)
    return sampled


@pytest.fixture
def run_study():
    return _run_study
