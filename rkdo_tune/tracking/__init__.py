"""MLflow tracking of sweeps: the only place in the package that imports MLflow.

One experiment per space (or --experiment), one parent run per sweep, one
trial run per Ray trial (opened on the worker) and one seed run per repeat
seed; `layout` names every tag, param and artifact of that layout. The
trainer never sees MLflow: seed runs are fed through `TrainCallback` and
trial runs through the sweep's `TrialObserver`.

    uri = resolve_tracking_uri(flag, environ=os.environ, cwd=Path.cwd())
    check_reachable(uri)                      # seconds, before MLflow or Ray load
    tracker = MlflowSweepTracker(tracking_uri=uri, experiment=name)
    outcome, lines = run_sweep(space, plan, options, tracker=tracker)

URI handling and `layout` import no MLflow and no Ray; the classes below
are loaded on first use, so that an unreachable server fails fast.
"""

from __future__ import annotations

from rkdo_tune._lazy import lazy_attributes
from rkdo_tune.redaction import redact_uri, scrub
from rkdo_tune.tracking import layout
from rkdo_tune.tracking._uri import check_reachable, resolve_tracking_uri, ui_lines

_LAZY = {
    "AuditTracker": "rkdo_tune.tracking._audit",
    "StudyRun": "rkdo_tune.tracking._audit",
    "MlflowSweepTracker": "rkdo_tune.tracking._tracker",
    "SeedRunLogger": "rkdo_tune.tracking._seed",
    "TrackingTrialObserver": "rkdo_tune.tracking._trial",
    "TrialRunFactory": "rkdo_tune.tracking._trial",
    "resolved_space": "rkdo_tune.tracking._parent",
    "space_params": "rkdo_tune.tracking._parent",
}

__all__ = [
    "AuditTracker",
    "MlflowSweepTracker",
    "SeedRunLogger",
    "StudyRun",
    "TrackingTrialObserver",
    "TrialRunFactory",
    "check_reachable",
    "layout",
    "redact_uri",
    "resolve_tracking_uri",
    "resolved_space",
    "scrub",
    "space_params",
    "ui_lines",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
