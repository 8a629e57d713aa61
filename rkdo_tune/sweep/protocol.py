"""What a sweep tells a tracking layer: the hook classes, the report keys, the outcome.

This is the one module of `sweep/` that `tracking/` imports. It loads no Ray,
Optuna, MLflow or torch, so both the driver and the workers can import it.

    class MyTracker(SweepTracker): ...       # driver: start, observer_factory, finish
    class MyObserver(TrialObserver): ...     # worker: seed_callbacks, on_report, on_finish
    report[STATUS_KEY], report[seed_key(seed, metric)]
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rkdo_tune import metrics as m
from rkdo_tune.config import OBJECTIVE_ICON
from rkdo_tune.floors import FloorKey, References
from rkdo_tune.inference import TieMark, rank_order
from rkdo_tune.sweep._budgets import BUDGET_DIMENSION as BUDGET_PARAM
from rkdo_tune.sweep.plan import SweepPlan
from rkdo_tune.sweep.space import Parameter, SearchSpace
from rkdo_tune.verdict import ARM_BASELINE, ARM_SEARCH, STAGE_SEARCH, Verdict

if TYPE_CHECKING:
    from rkdo_tune.config import TrialConfig
    from rkdo_tune.training.callbacks import TrainCallback

__all__ = [
    "ARM_KEY",
    "CONFIRMS_KEY",
    "EPOCH_KEY",
    "MARKER_KEYS",
    "NODE_KEY",
    "POINT_KEY",
    "REASON_KEY",
    "REPORTED_METRICS",
    "SEARCH_ROLE",
    "STAGE_KEY",
    "STATUS_KEY",
    "STEP_KEY",
    "ObserverFactory",
    "Parameter",
    "SearchSpace",
    "SweepOutcome",
    "SweepPlan",
    "SweepTracker",
    "TrialObserver",
    "TrialRole",
    "TrialSummary",
    "budget_key",
    "budget_points",
    "budget_report",
    "budget_source",
    "budget_trial_id",
    "seed_key",
    "split_markers",
    "trial_device",
    "with_budget_points",
]

# Keys of a trial's Tune report besides the metrics (means, `<metric>_std`, per-seed values).
STATUS_KEY = "trial_status"
REASON_KEY = "trial_reason"
EPOCH_KEY = "epoch"
STEP_KEY = "step"
NODE_KEY = "node_id"
REPORTED_METRICS = (*m.EVAL_METRICS, m.TRAIN_EPOCH_LOSS)
# Keys a trial's Tune config carries besides its config values: which arm and stage it
# belongs to, and which search trial a confirmation trial re-runs. `split_markers` strips them.
ARM_KEY = "rkdo_arm"
STAGE_KEY = "rkdo_stage"
CONFIRMS_KEY = "rkdo_confirms"
MARKER_KEYS = (ARM_KEY, STAGE_KEY, CONFIRMS_KEY)
# The confirmation stage grid-searches over whole configs, which Tune nests under this key.
POINT_KEY = "rkdo_point"


@dataclass(frozen=True)
class TrialRole:
    """Where a trial stands in the study: its arm, its stage, the search trial it re-runs."""

    arm: str = ARM_SEARCH
    stage: str = STAGE_SEARCH
    confirms: str = ""

    @property
    def is_baseline(self) -> bool:
        return self.arm == ARM_BASELINE

    def markers(self) -> dict[str, str]:
        """The Tune config keys that carry this role (none for a plain search trial)."""
        markers = {ARM_KEY: self.arm, STAGE_KEY: self.stage, CONFIRMS_KEY: self.confirms}
        return {k: v for k, v in markers.items() if v and v not in (ARM_SEARCH, STAGE_SEARCH)}


SEARCH_ROLE = TrialRole()  # a trial Optuna proposed, in the search stage


def split_markers(params: Mapping[str, Any]) -> tuple[TrialRole, dict[str, Any]]:
    """A Tune config's role, and its config values without the marker keys."""
    point = params.get(POINT_KEY)
    if isinstance(point, Mapping):
        params = point
    role = TrialRole(
        arm=str(params.get(ARM_KEY, ARM_SEARCH)),
        stage=str(params.get(STAGE_KEY, STAGE_SEARCH)),
        confirms=str(params.get(CONFIRMS_KEY, "")),
    )
    return role, {k: v for k, v in params.items() if k not in MARKER_KEYS}


def seed_key(seed: int, metric: str) -> str:
    """Where one seed's value of `metric` sits in a Tune report."""
    return f"seed_{seed}/{metric}"


# Budget points inside one run (issue 13 §3): the final report of a trial that trained to
# its largest budget also carries each shorter budget's report under `budget/e<k>/`, and
# that budget reads as its own trial, `<trial id>@e<k>`, with `epochs: k`.
BUDGET_PREFIX = "budget/e"
BUDGET_TRIAL_MARK = "@e"
_BUDGET_KEY = re.compile(r"(?:(seed_\d+)/)?budget/e(\d+)/(.+)")


def budget_key(epochs: int, key: str) -> str:
    """Where budget point `epochs`'s `key` sits in a Tune report (per seed: `seed_key` of it)."""
    return f"{BUDGET_PREFIX}{epochs}/{key}"


def budget_trial_id(trial_id: str, epochs: int) -> str:
    return f"{trial_id}{BUDGET_TRIAL_MARK}{epochs}"


def budget_points(report: Mapping[str, Any]) -> list[int]:
    """The budget points (epochs) a final report carries besides its own, ascending."""
    points = {int(match[2]) for key in report if (match := _BUDGET_KEY.fullmatch(key))}
    return sorted(points)


def budget_report(report: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    """The report that a run of `epochs` epochs would have ended with: budget point
    `epochs`'s keys of `report` under their plain names (per-seed keys included)."""
    plain: dict[str, Any] = {}
    for key, value in report.items():
        match = _BUDGET_KEY.fullmatch(key)
        if match and int(match[2]) == epochs:
            plain[f"{match[1]}/{match[3]}" if match[1] else match[3]] = value
    return plain


def trial_device(device: str, space: SearchSpace) -> str:
    """The device a trial trains on: a CPU-only trial (resources.gpus 0) never takes a GPU."""
    return "cpu" if space.resources.gpus == 0 and device == "auto" else device


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
    role: TrialRole = SEARCH_ROLE

    def per_seed(self, metric: str) -> dict[int, float]:
        """{seed: final value} of `metric`, from the per-seed keys of the last report."""
        prefix, suffix = "seed_", f"/{metric}"
        values = {}
        for key, value in self.metrics.items():
            if key.startswith(prefix) and key.endswith(suffix):
                seed = key[len(prefix) : -len(suffix)]
                if seed.isdigit() and isinstance(value, int | float):
                    values[int(seed)] = float(value)
        return values


def trains_icon(trial: TrialSummary) -> bool:
    """Whether the trial trains I-Con: the baseline arm's and a tuned baseline's trials name
    their objective; a trial that does not trains the space's base objective, RKDO."""
    return trial.params.get("objective") == OBJECTIVE_ICON


def with_budget_points(trial: TrialSummary, *, metric: str, epochs: int) -> list[TrialSummary]:
    """The trial, then one summary per budget point its final report carries: the k-epoch
    run's outcome as its own trial, `<id>@e<k>` with `epochs: k` (search stage only).
    `epochs`: the trial's own budget, named in its params when it has budget points."""
    epochs_points = budget_points(trial.metrics)
    if trial.role.stage != STAGE_SEARCH or not epochs_points:
        return [trial]
    failed = trial.status == "error"  # its budget reports predate the error
    points = []
    for k in epochs_points:
        report = budget_report(trial.metrics, k)
        points.append(
            TrialSummary(
                trial_id=budget_trial_id(trial.trial_id, k),
                params={**trial.params, BUDGET_PARAM: k},
                value=float(report.get(metric, math.nan)),
                std=float(report.get(f"{metric}_std", math.nan)),
                status=trial.status if failed else str(report.get(STATUS_KEY, "?")),
                reason=trial.reason if failed else str(report.get(REASON_KEY, "")),
                epochs=int(report.get(EPOCH_KEY, 0) or 0),
                metrics=report,
                role=trial.role,
            )
        )
    whole = dataclasses.replace(trial, params={**trial.params, BUDGET_PARAM: epochs})
    return [whole, *points]


def budget_source(trial_id: str) -> str:
    """The trial whose run holds budget point `trial_id` (itself when it is not one)."""
    head, mark, tail = trial_id.rpartition(BUDGET_TRIAL_MARK)
    return head if mark and tail.isdigit() else trial_id


@dataclass(frozen=True)
class SweepOutcome:
    """A finished (or interrupted) sweep: its search trials, the baseline, the confirmation.

    `trials` holds the search stage (the baseline arm included); `confirmation` the
    re-runs on fresh seeds. "Best" is defined once, in `ranked`.
    """

    plan: SweepPlan
    metric: str
    mode: str
    trials: tuple[TrialSummary, ...]
    errors: int
    unfinished: int = 0  # trials neither terminated nor errored: the sweep was interrupted
    confirmation: tuple[TrialSummary, ...] = ()
    ties: tuple[TieMark, ...] = ()  # each ranked search trial against the best
    verdict: Verdict | None = None  # with a tuned baseline: tuned RKDO against tuned I-Con
    defaults_verdict: Verdict | None = None  # with a tuned baseline: default against default
    references: References | None = None  # the floors and ceiling of the evaluation
    references_note: str = ""  # why they are absent, or what they were computed for
    environment: Mapping[str, str] = field(default_factory=dict)  # `environment.py`'s block

    def ranked(self) -> list[TrialSummary]:
        """Search-arm trials with a finite metric, best first: the best final seed-mean,
        ties to the earlier trial (smaller trial id). The baseline arm is never ranked."""
        finite = [t for t in self.trials if math.isfinite(t.value) and not t.role.is_baseline]
        order = rank_order([t.value for t in finite], [t.trial_id for t in finite], mode=self.mode)
        return [finite[i] for i in order]

    @property
    def baseline(self) -> TrialSummary | None:
        """The search stage's I-Con baseline arm (I-Con's default), if the sweep had one."""
        return next((t for t in self.trials if t.role.is_baseline and trains_icon(t)), None)

    @property
    def reference(self) -> TrialSummary | None:
        """RKDO's default, the other baseline-arm trial of a sweep whose I-Con is tuned."""
        return next((t for t in self.trials if t.role.is_baseline and not trains_icon(t)), None)

    def confirmation_of(self, trial_id: str) -> TrialSummary | None:
        """The confirmation re-run of search trial `trial_id`, if there was one."""
        return next((t for t in self.confirmation if t.role.confirms == trial_id), None)


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
        role: TrialRole = SEARCH_ROLE,
    ) -> list[TrainCallback | None]:
        """One TrainCallback (or None) per seed config, before training starts.

        `params` are the trial's config values (markers stripped); `role` its arm and stage.
        """
        return [None] * len(configs)

    def on_report(self, report: Mapping[str, Any]) -> None:
        """After each per-epoch report (seed means and per-seed values)."""

    def on_finish(self, *, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        """Once: with the final report, or with the exception that ended the trial."""


# Picklable and called once per trial on the worker; None tracks nothing.
ObserverFactory = Callable[[], TrialObserver]


class SweepTracker:
    """What a tracking layer does around a sweep; the default tracks nothing.

    `start` runs on the driver once Ray is connected and a trial is known to fit
    (a sweep that cannot run creates no run); `observer_factory` is shipped to
    every trial; `finish` returns extra lines for the end-of-sweep summary.
    """

    def start(self, *, space: SearchSpace, plan: SweepPlan, resume: bool) -> None:
        """Prepare tracking for the sweep (e.g. create or reattach its parent run)."""

    def observer_factory(self) -> ObserverFactory | None:
        return None

    OWN_RUN = "this sweep run"  # where `cached_references` found a resumed sweep's floors

    def cached_references(self, key: FloorKey) -> tuple[References, str] | None:
        """Floors already recorded for `key` (a resumed sweep's, or an earlier sweep's of the
        same key) and where they come from, else None."""
        return None

    def finish(self, outcome: SweepOutcome, *, error: BaseException | None = None) -> list[str]:
        return []
