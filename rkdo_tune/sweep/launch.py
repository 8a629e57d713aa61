"""One call that runs a sweep with MLflow tracking, in the order that keeps failures cheap.

The tracking store is resolved and checked first (no Ray, no MLflow import),
then Ray and MLflow load and the runner takes over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rkdo_tune.sweep.plan import SweepOptions, SweepPlan


def launch_sweep(space: Any, plan: SweepPlan, options: SweepOptions) -> tuple[Any, list[str]]:
    """Run the sweep tracked in MLflow; returns the outcome and the tracker's summary lines."""
    from rkdo_tune.tracking import check_reachable, resolve_tracking_uri

    uri = resolve_tracking_uri(options.tracking_uri, environ=os.environ, cwd=Path.cwd())
    check_reachable(uri)  # an unreachable server fails here, before Ray or MLflow load

    from rkdo_tune.sweep.runner import run_sweep  # imports Ray: only when actually running
    from rkdo_tune.tracking import MlflowSweepTracker  # imports MLflow: likewise

    tracker = MlflowSweepTracker(tracking_uri=uri, experiment=options.experiment)
    return run_sweep(space, plan, options, tracker=tracker)
