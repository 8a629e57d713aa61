"""The trial run, opened inside the Ray trial on the worker, and its seed runs.

`TrialRunFactory` is what the driver ships to Ray (a small picklable value);
on the worker it builds a `TrackingTrialObserver`, which opens the trial run
under the sweep's parent run and one seed run per repeat seed.

A trial that Ray restarts (a retry, or a resumed sweep) finds the runs of its
earlier attempts: those still open end KILLED, a finished one is marked
superseded, and the new runs point back with `rkdo.continues_run_id`. So one
trial id never has two FINISHED trial runs.

A trial run carries its searched values (the params Tune handed it) under their
plain names, and its seed-means under `mean/`, `std/` and `ci95/` keys; the
fixed settings are on the sweep run only (see `layout`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.inference import mean_ci
from rkdo_tune.sweep.protocol import (
    BUDGET_PARAM,
    REASON_KEY,
    REPORTED_METRICS,
    SEARCH_ROLE,
    STATUS_KEY,
    STEP_KEY,
    TrialObserver,
    TrialRole,
    budget_points,
    budget_report,
    budget_trial_id,
    seed_key,
)
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._artifacts import ReportCurves, SeedRow, log_trial_artifacts
from rkdo_tune.tracking._client import (
    ENDED_BADLY,
    FAILED,
    FINISHED,
    KILLED,
    Metric,
    MlflowClient,
    Run,
    create_run,
    first_line,
    log_metrics,
    log_params,
    make_metric,
    search_runs,
    set_tags,
)
from rkdo_tune.tracking._outbox_client import OutboxClient
from rkdo_tune.tracking._seed import SeedRunLogger
from rkdo_tune.tracking.naming import seed_run_name, trial_run_name
from rkdo_tune.training.callbacks import TrainCallback


def role_tags(role: TrialRole) -> dict[str, str]:
    """rkdo.arm, rkdo.stage and, on a confirmation run, the search trial it re-runs."""
    tags = {lay.TAG_ARM: role.arm, lay.TAG_STAGE: role.stage}
    if role.confirms:
        tags[lay.TAG_CONFIRMS] = role.confirms
    return tags


@dataclass(frozen=True)
class TrialRunFactory:
    """Zero-argument factory of trial observers; what a Ray worker needs to log a trial."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_name: str
    metric: str = m.EVAL_LINEAR_ACC  # the monitored metric: the trial's learning curve
    log_scaled: tuple[str, ...] = ()  # searched parameters sampled on a log scale
    step_points: int = lay.DEFAULT_STEP_POINTS  # per-step points per seed run and key
    fixed: Mapping[str, Any] = field(default_factory=dict)  # the sweep run's fixed settings
    outbox: str = ""  # where trials journal what the server has not taken yet (_outbox_client)

    def __call__(self) -> TrackingTrialObserver:
        return TrackingTrialObserver(self)


def searched_params(
    params: Mapping[str, Any],
    config: TrialConfig,
    *,
    fixed: Mapping[str, Any],
    log_scaled: Sequence[str],
) -> dict[str, Any]:
    """What sets a trial apart, under plain names: the values Tune handed it, any field its
    config holds apart from the sweep's fixed settings (a preset that a sampled protocol
    changed), and `log10_<name>` of each log-scaled searched value."""
    logged = dict(params)
    for name, value in config.to_dict().items():
        if name in fixed and name not in logged and value != fixed[name]:
            logged[name] = value
    for name in log_scaled:
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            logged[f"{lay.LOG10_PARAM_PREFIX}{name}"] = math.log10(value)
    return logged


def seed_statistics(report: Mapping[str, Any], key: str, seeds: Sequence[int]) -> dict[str, float]:
    """mean/<key>, std/<key> and (2+ finite seeds) ci95/<key> of one metric of a report.

    The mean and std are the report's own (a non-finite seed makes them NaN);
    ci95 is the half-width of the 95% t-interval over the seeds, as the verdict uses.
    """
    stats = {
        f"{lay.MEAN_PREFIX}{key}": report[key],
        f"{lay.STD_PREFIX}{key}": report.get(f"{key}{lay.STD_SUFFIX}", math.nan),
    }
    values = [report.get(seed_key(seed, key), math.nan) for seed in seeds]
    interval = mean_ci(values)
    if interval.n == len(seeds) and math.isfinite(interval.hi - interval.lo):
        stats[f"{lay.CI95_PREFIX}{key}"] = (interval.hi - interval.lo) / 2
    return stats


def _retire(client: MlflowClient, run: Run, *, successor: str) -> None:
    """End an earlier attempt's run: KILLED, pointing at the run that continues it."""
    status = run.info.status
    if status in ENDED_BADLY:
        set_tags(client, run.info.run_id, {lay.TAG_SUPERSEDED_BY: successor})
        return
    tags = {lay.TAG_SUPERSEDED_BY: successor, lay.TAG_REASON: "superseded by a restarted trial"}
    if status != FINISHED:  # it never ended: the worker or the driver died under it
        tags.update({lay.TAG_STATUS: lay.STATUS_STOPPED, lay.TAG_REASON: "interrupted"})
    set_tags(client, run.info.run_id, tags)
    client.set_terminated(run.info.run_id, status=KILLED)


class TrackingTrialObserver(TrialObserver):
    """Logs one Ray trial (all its seeds) to MLflow from the worker."""

    def __init__(self, target: TrialRunFactory) -> None:
        self.target = target
        self.client = OutboxClient(target.tracking_uri, target.outbox)
        self.trial_run_id: str | None = None
        self.seeds: list[SeedRunLogger] = []
        self.logged_steps: set[int] = set()
        self.curves = ReportCurves(seeds=())
        self.last_report: Mapping[str, Any] | None = None
        self.run_name = ""
        self.ended = False
        self.identity: dict[str, Any] = {}  # trial id, Tune values, role: for budget points

    def _earlier_runs(self, trial_id: str) -> list[Run]:
        return search_runs(
            self.client,
            self.target.experiment_id,
            tags={
                lay.TAG_PARENT: self.target.parent_run_id,
                lay.TAG_ROLE: lay.ROLE_TRIAL,
                lay.TAG_TRIAL_ID: trial_id,
            },
        )

    def _seed_runs(self, trial_run_id: str) -> list[Run]:
        return search_runs(
            self.client,
            self.target.experiment_id,
            tags={lay.TAG_PARENT: trial_run_id, lay.TAG_ROLE: lay.ROLE_SEED},
        )

    def _retire_earlier(self, earlier: Sequence[Run]) -> None:
        """End the runs of earlier attempts, linked both ways to the new trial and seed runs."""
        new_seed_runs = {s.config.seed: s.run_id for s in self.seeds}
        for run in earlier:
            for seed_run in self._seed_runs(run.info.run_id):
                seed = int(seed_run.data.tags[lay.TAG_SEED])
                successor = new_seed_runs.get(seed, self.trial_run_id)
                _retire(self.client, seed_run, successor=successor)
                if run is earlier[-1] and seed in new_seed_runs:
                    set_tags(self.client, successor, {lay.TAG_CONTINUES: seed_run.info.run_id})
            _retire(self.client, run, successor=self.trial_run_id)

    def seed_callbacks(
        self,
        *,
        params: Mapping[str, Any],
        configs: Sequence[TrialConfig],
        trial_id: str,
        node_id: str,
        role: TrialRole = SEARCH_ROLE,
    ) -> list[TrainCallback | None]:
        """Open the trial run and one seed run per config; return the seeds' callbacks."""
        earlier = self._earlier_runs(trial_id)
        self.identity = {"trial_id": trial_id, "params": dict(params), "role": role}
        common = {lay.TAG_TRIAL_ID: trial_id}  # what the sweep run holds is not repeated here
        continues = {lay.TAG_CONTINUES: earlier[-1].info.run_id} if earlier else {}
        self.run_name = trial_run_name(params, trial_id=trial_id, role=role)
        self.trial_run_id = create_run(
            self.client,
            experiment_id=self.target.experiment_id,
            run_name=self.run_name,
            tags={
                **common,
                **continues,
                lay.TAG_NODE_ID: node_id,
                lay.TAG_PARENT: self.target.parent_run_id,
                lay.TAG_ROLE: lay.ROLE_TRIAL,
                lay.TAG_STATUS: lay.STATUS_RUNNING,
                **role_tags(role),
            },
        )
        target = self.target
        logged = searched_params(
            params, configs[0], fixed=target.fixed, log_scaled=target.log_scaled
        )
        log_params(self.client, self.trial_run_id, logged)
        self.curves = ReportCurves(seeds=tuple(c.seed for c in configs))
        self.seeds = [
            SeedRunLogger.open(
                self.client,
                experiment_id=self.target.experiment_id,
                trial_run_id=self.trial_run_id,
                config=config,
                tags=common,
                run_name=seed_run_name(config.seed, params, role=role),
                params=logged,
                step_points=self.target.step_points,
            )
            for config in configs
        ]
        self._retire_earlier(earlier)
        return list(self.seeds)

    def on_report(self, report: Mapping[str, Any]) -> None:
        """Seed-mean, std and ci95 of every eval metric and the epoch loss, at the report's step.

        The final report (the only one with diag/* values) also ends the trial
        run: Ray may stop the trial inside that very report, before `on_finish`.
        """
        if self.trial_run_id is None or self.ended:
            return
        step = int(report[STEP_KEY])
        self.last_report = report
        self.curves.add(report)
        if step not in self.logged_steps:  # the final report may repeat the last evaluation
            self.logged_steps.add(step)
            log_metrics(self.client, self.trial_run_id, self._statistics(report, REPORTED_METRICS))
        if m.DIAG_STEPS in report:
            self._complete(report)

    def on_finish(self, *, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        """Once the trial function ends: end the runs, then send what the outbox still holds."""
        try:
            self._end_runs(report, error)
        finally:
            self.client.close()

    def _end_runs(self, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        """A no-op if the final report already ended the run."""
        if self.trial_run_id is None or self.ended:
            return
        if error is not None and not isinstance(error, Exception):
            self._stopped_from_outside()
        elif error is not None or report is None:
            self._fail(error)
        else:
            self.on_report(report)
            self._complete(report)

    def _complete(self, report: Mapping[str, Any]) -> None:
        """diag/* means, status tags, FINISHED (diverged trials too: their status says so)."""
        if self.ended:
            return
        self.ended = True
        step = int(report[STEP_KEY])
        diag = self._statistics(report, m.DIAG_METRICS)
        log_metrics(
            self.client, self.trial_run_id, [*diag, make_metric(lay.METRIC_FAILED, 0, step)]
        )
        self._log_artifacts(report)
        set_tags(
            self.client,
            self.trial_run_id,
            {
                lay.TAG_STATUS: report[STATUS_KEY],
                lay.TAG_REASON: report.get(REASON_KEY, ""),
                lay.TAG_OVERSPECIALIZED: str(self._any_overspecialized(report)).lower(),
            },
        )
        self.client.set_terminated(self.trial_run_id, status=FINISHED)
        for epochs in budget_points(report):
            self._log_budget_point(budget_report(report, epochs), epochs)

    def _log_budget_point(self, report: Mapping[str, Any], epochs: int) -> None:
        """A budget point as its own trial run, `<id>@e<k>` with `epochs: k`, and seed runs:
        what a k-epoch trial would have logged, so the UI and the report pair by budget."""
        trial_id = budget_trial_id(self.identity["trial_id"], epochs)
        role: TrialRole = self.identity["role"]
        params = {**self.identity["params"], BUDGET_PARAM: epochs}
        logged = searched_params(
            params, self.seeds[0].config, fixed=self.target.fixed, log_scaled=self.target.log_scaled
        )
        name = trial_run_name(params, trial_id=trial_id, role=role)
        run_id = create_run(
            self.client,
            experiment_id=self.target.experiment_id,
            run_name=name,
            tags={
                lay.TAG_TRIAL_ID: trial_id,
                lay.TAG_BUDGET_OF: self.trial_run_id,
                lay.TAG_PARENT: self.target.parent_run_id,
                lay.TAG_ROLE: lay.ROLE_TRIAL,
                lay.TAG_STATUS: report[STATUS_KEY],
                lay.TAG_REASON: report.get(REASON_KEY, ""),
                **role_tags(role),
            },
        )
        log_params(self.client, run_id, logged)
        step = int(report[STEP_KEY])
        diag = self._statistics(report, (*REPORTED_METRICS, *m.DIAG_METRICS))
        log_metrics(self.client, run_id, [*diag, make_metric(lay.METRIC_FAILED, 0, step)])
        for seed_logger in self.seeds:
            seed_logger.log_budget_point(
                epochs,
                experiment_id=self.target.experiment_id,
                trial_run_id=run_id,
                tags={lay.TAG_TRIAL_ID: trial_id},
                run_name=seed_run_name(seed_logger.config.seed, params, role=role),
                params=logged,
            )
        self._log_artifacts(report, run_id=run_id, curves=self.curves.until(step), title=name)
        self.client.set_terminated(run_id, status=FINISHED)

    def _statistics(self, report: Mapping[str, Any], keys: Sequence[str]) -> list[Metric]:
        """The seed statistics of `keys` present in `report`, at the report's step."""
        step, seeds = int(report[STEP_KEY]), self.curves.seeds
        stats = {
            k: v
            for key in keys
            if key in report
            for k, v in seed_statistics(report, key, seeds).items()
        }
        return [make_metric(key, value, step) for key, value in stats.items()]

    def _log_artifacts(
        self,
        report: Mapping[str, Any],
        *,
        run_id: str | None = None,
        curves: ReportCurves | None = None,
        title: str | None = None,
    ) -> None:
        """The seed-mean learning curve and the per-seed table (of the trial run, else of
        `run_id`, a budget point's); a failure here only warns."""
        rows = [SeedRow(s.config.seed, s.status) for s in self.seeds]
        try:
            log_trial_artifacts(
                self.client,
                run_id or self.trial_run_id,
                curves=curves or self.curves,
                rows=rows,
                report=report,
                metric=self.target.metric,
                title=title or self.run_name,
            )
        except Exception as exc:
            warnings.warn(
                f"MLflow: could not log the trial's artifacts: {first_line(exc)}", stacklevel=2
            )

    def _any_overspecialized(self, report: Mapping[str, Any]) -> bool:
        """True when any seed was flagged (the trial mean is a fraction of seeds)."""
        values = [report.get(seed_key(s.config.seed, m.DIAG_OVERSPECIALIZED)) for s in self.seeds]
        return any(v is not None and math.isfinite(v) and v >= 1.0 for v in values)

    def _stopped_from_outside(self) -> None:
        """Ray ended the trial (SystemExit: a scheduler stop or Ctrl-C on the driver).

        Only buffered metrics and the trial's artifacts (up to its last report) are
        sent; the runs stay open for the driver, which knows whether the sweep was
        interrupted (KILLED) or the scheduler stopped this trial (FINISHED, "stopped").
        """
        if self.last_report is not None:
            self._log_artifacts(self.last_report)
        for seed_logger in self.seeds:
            try:
                seed_logger.flush()
            except Exception as exc:
                warnings.warn(
                    f"MLflow: could not send buffered metrics: {first_line(exc)}", stacklevel=2
                )

    def _fail(self, error: BaseException | None) -> None:
        """End every open run FAILED; never mask the trial's own exception."""
        reason = first_line(error) if error is not None else "trial ended without a report"
        self.ended = True
        try:
            for seed_logger in self.seeds:
                seed_logger.abort(reason)
            step = max(self.logged_steps, default=0)
            log_metrics(self.client, self.trial_run_id, [make_metric(lay.METRIC_FAILED, 1, step)])
            set_tags(
                self.client,
                self.trial_run_id,
                {lay.TAG_STATUS: lay.STATUS_FAILED, lay.TAG_REASON: reason},
            )
            self.client.set_terminated(self.trial_run_id, status=FAILED)
        except Exception as exc:  # the tracking store may be what failed
            warnings.warn(
                f"MLflow: could not mark trial run {self.trial_run_id} failed: {first_line(exc)}",
                stacklevel=2,
            )
