"""The confirmation stage: the search's top K and the baseline, again, on fresh seeds.

Selecting on the search seeds and estimating on seeds the search never saw keeps
the winner's estimate unbiased (no winner's curse). The stage is a second Tune
experiment beside the search's (`<name>-confirm`): a fixed list of
configurations, FIFO, under the same tracker and MLflow parent. On `--resume`
it is restored if Tune saved it, so the chosen configurations are never
selected again; otherwise the selection is made from the finished search,
whose results no longer change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ray import tune
from ray.tune.schedulers import FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from rkdo_tune.sweep._tune import make_trainable, run_config_for
from rkdo_tune.sweep.plan import SweepOptions, SweepPlan
from rkdo_tune.sweep.protocol import (
    POINT_KEY,
    ObserverFactory,
    SearchSpace,
    SweepOutcome,
    TrialRole,
    TrialSummary,
    trains_icon,
)
from rkdo_tune.verdict import ARM_BASELINE, ARM_SEARCH, STAGE_CONFIRMATION


def chosen_for_confirmation(outcome: SweepOutcome, top: int) -> list[TrialSummary]:
    """The top `top` search trials under the one definition of best, then the control arm.

    The control arm is the baseline; in a space that samples `objective`, the best
    I-Con trial when it is not among the top already. With a tuned baseline each
    objective's study gives its own top `top`, then both defaults (RKDO's, I-Con's):
    the same selection for both arms, and both comparisons (tuned, default) re-run.
    """
    ranked = outcome.ranked()
    if outcome.reference is not None:
        rkdo = [t for t in ranked if not trains_icon(t)][:top]
        icon = [t for t in ranked if trains_icon(t)][:top]
        defaults = [t for t in (outcome.reference, outcome.baseline) if t is not None]
        return [*rkdo, *icon, *defaults]
    chosen = ranked[:top]
    control = outcome.baseline
    if control is None:
        icon = [t for t in ranked if t.params.get("objective") == "icon"]
        control = icon[0] if icon and icon[0] not in chosen else None
    return [*chosen, *([control] if control is not None else [])]


def confirmation_points(chosen: Sequence[TrialSummary]) -> list[dict[str, Any]]:
    """Tune configs that re-run each chosen trial, marked with its arm and the trial it re-runs."""
    points = []
    for trial in chosen:
        arm = ARM_BASELINE if trial.role.is_baseline else ARM_SEARCH
        role = TrialRole(arm=arm, stage=STAGE_CONFIRMATION, confirms=trial.trial_id)
        points.append({**trial.params, **role.markers()})
    return points


def build_confirmation_tuner(
    space: SearchSpace,
    plan: SweepPlan,
    options: SweepOptions,
    points: Sequence[dict[str, Any]],
    *,
    observer_factory: ObserverFactory | None,
    callbacks: Sequence[tune.Callback],
) -> tune.Tuner:
    """The saved confirmation experiment if there is one, else a new one over `points`."""
    assert space.confirm is not None
    fresh = dataclasses.replace(space, seeds=space.confirm.seeds)
    trainable = make_trainable(fresh, observer_factory)
    path = plan.confirm_experiment_path
    if tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    return tune.Tuner(
        trainable,
        param_space={POINT_KEY: tune.grid_search([dict(p) for p in points])},
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(max_concurrent=space.search.max_concurrent),
            scheduler=FIFOScheduler(),
            num_samples=1,
            metric=space.metric,
            mode=space.mode,
            reuse_actors=True,
        ),
        run_config=run_config_for(path.rsplit("/", 1)[-1], plan, options, callbacks),
    )
