"""The application: joins the sweep runner and MLflow tracking, which know nothing of each other.

`sweep/` runs a study through the `SweepTracker` hooks of `sweep.protocol`;
`tracking/` implements them. Only this module (and the CLI above it) sees both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rkdo_tune.sweep.plan import SweepOptions, SweepPlan
    from rkdo_tune.sweep.protocol import SearchSpace, SweepOutcome


def launch_sweep(
    space: SearchSpace,
    plan: SweepPlan,
    options: SweepOptions,
    *,
    nest_under: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> tuple[SweepOutcome, list[str]]:
    """Run the sweep tracked in MLflow; returns the outcome and the tracker's summary lines.

    `nest_under`: an MLflow run (an audit's) to show the sweep run beneath; `tags`: more
    tags of the sweep run.

    The tracking store is resolved and checked first (no Ray, no MLflow import),
    so an unreachable server fails in seconds; then Ray and MLflow load.
    """
    from rkdo_tune.tracking import check_reachable, resolve_tracking_uri

    uri = resolve_tracking_uri(options.tracking_uri, environ=os.environ, cwd=Path.cwd())
    check_reachable(uri)  # before Ray or MLflow load

    from rkdo_tune.sweep.runner import run_sweep  # imports Ray: only when actually running
    from rkdo_tune.tracking import MlflowSweepTracker  # imports MLflow: likewise

    tracker = MlflowSweepTracker(
        tracking_uri=uri, experiment=options.experiment, nest_under=nest_under, tags=tags
    )
    return run_sweep(space, plan, options, tracker=tracker)
