"""What a sweep tells a tracking layer: the hook classes, the report keys, the outcome.

This is the one module of `sweep/` that `tracking/` imports. It loads no Ray,
Optuna, MLflow or torch, so both the driver and the workers can import it.

    class MyTracker(SweepTracker): ...       # driver: start, observer_factory, finish
    class MyObserver(TrialObserver): ...     # worker: seed_callbacks, on_report, on_finish
    report[STATUS_KEY], report[seed_key(seed, metric)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rkdo_tune import metrics as m
from rkdo_tune.sweep.plan import SweepPlan
from rkdo_tune.sweep.space import Parameter, SearchSpace

if TYPE_CHECKING:
    from rkdo_tune.config import TrialConfig
    from rkdo_tune.training.callbacks import TrainCallback

__all__ = [
    "EPOCH_KEY",
    "NODE_KEY",
    "REASON_KEY",
    "REPORTED_METRICS",
    "STATUS_KEY",
    "STEP_KEY",
    "ObserverFactory",
    "Parameter",
    "SearchSpace",
    "SweepOutcome",
    "SweepPlan",
    "SweepTracker",
    "TrialObserver",
    "TrialSummary",
    "seed_key",
]

# Keys of a trial's Tune report besides the metrics (means, `<metric>_std`, per-seed values).
STATUS_KEY = "trial_status"
REASON_KEY = "trial_reason"
EPOCH_KEY = "epoch"
STEP_KEY = "step"
NODE_KEY = "node_id"
REPORTED_METRICS = (*m.EVAL_METRICS, m.TRAIN_EPOCH_LOSS)


def seed_key(seed: int, metric: str) -> str:
    """Where one seed's value of `metric` sits in a Tune report."""
    return f"seed_{seed}/{metric}"


@dataclass(frozen=True)
class TrialSummary:
    """One configuration's outcome, already averaged over its seeds."""

    trial_id: str
    params: dict[str, Any]
    value: float
    std: float
    status: str
    reason: str
    epochs: int
    metrics: dict[str, Any]


@dataclass(frozen=True)
class SweepOutcome:
    plan: SweepPlan
    metric: str
    mode: str
    trials: tuple[TrialSummary, ...]
    errors: int
    unfinished: int = 0  # trials neither terminated nor errored: the sweep was interrupted

    def ranked(self) -> list[TrialSummary]:
        """Trials with a finite metric, best first."""
        finite = [t for t in self.trials if math.isfinite(t.value)]
        return sorted(finite, key=lambda t: t.value, reverse=self.mode == "max")


class TrialObserver:
    """Hooks a tracking layer plugs into a sweep trial. Runs on the Ray worker.

    The default does nothing; `rkdo_tune.tracking` subclasses it. A sweep passes
    a picklable zero-argument factory, so the observer is built on the worker.
    """

    def seed_callbacks(
        self,
        *,
        params: Mapping[str, Any],
        configs: Sequence[TrialConfig],
        trial_id: str,
        node_id: str,
    ) -> list[TrainCallback | None]:
        """One TrainCallback (or None) per seed config, before training starts."""
        return [None] * len(configs)

    def on_report(self, report: Mapping[str, Any]) -> None:
        """After each per-epoch report (seed means and per-seed values)."""

    def on_finish(self, *, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        """Once: with the final report, or with the exception that ended the trial."""


# Picklable and called once per trial on the worker; None tracks nothing.
ObserverFactory = Callable[[], TrialObserver]


class SweepTracker:
    """What a tracking layer does around a sweep; the default tracks nothing.

    `start` runs on the driver before Ray starts (so an unreachable tracking
    server fails fast and starts nothing); `observer_factory` is shipped to
    every trial; `finish` returns extra lines for the end-of-sweep summary.
    """

    def start(self, *, space: SearchSpace, plan: SweepPlan, resume: bool) -> None:
        """Prepare tracking for the sweep (e.g. create or reattach its parent run)."""

    def observer_factory(self) -> ObserverFactory | None:
        return None

    def finish(self, outcome: SweepOutcome, *, error: BaseException | None = None) -> list[str]:
        return []
