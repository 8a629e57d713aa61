"""The trial run, opened inside the Ray trial on the worker, and its seed runs.

`TrialRunFactory` is what the driver ships to Ray (a small picklable value);
on the worker it builds a `TrackingTrialObserver`, which opens the trial run
under the sweep's parent run and one seed run per repeat seed.

A trial that Ray restarts (a retry, or a resumed sweep) finds the runs of its
earlier attempts: those still open end KILLED, a finished one is marked
superseded, and the new runs point back with `rkdo.continues_run_id`. So one
trial id never has two FINISHED trial runs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.protocols import PROTOCOL_VERSION
from rkdo_tune.sweep.protocol import (
    REASON_KEY,
    REPORTED_METRICS,
    SEARCH_ROLE,
    STATUS_KEY,
    STEP_KEY,
    TrialObserver,
    TrialRole,
    seed_key,
)
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    ENDED_BADLY,
    FAILED,
    FINISHED,
    KILLED,
    MlflowClient,
    Run,
    create_run,
    first_line,
    log_metrics,
    log_params,
    make_metric,
    open_client,
    search_runs,
    set_tags,
)
from rkdo_tune.tracking._seed import SeedRunLogger
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

    def __call__(self) -> TrackingTrialObserver:
        return TrackingTrialObserver(self)


def trial_params(params: Mapping[str, Any], first_config: TrialConfig) -> dict[str, Any]:
    """The sampled params under their own names, plus `config.<field>` (minus the seed)."""
    config = {
        f"{lay.CONFIG_PARAM_PREFIX}{key}": value
        for key, value in first_config.to_dict().items()
        if key != "seed"
    }
    return {**params, **config}


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
        self.client = open_client(target.tracking_uri)
        self.trial_run_id: str | None = None
        self.seeds: list[SeedRunLogger] = []
        self.logged_steps: set[int] = set()
        self.ended = False

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
        common = {
            lay.TAG_TRIAL_ID: trial_id,
            lay.TAG_NODE_ID: node_id,
            lay.TAG_SWEEP_NAME: self.target.sweep_name,
            lay.TAG_PROTOCOL_VERSION: str(PROTOCOL_VERSION),
        }
        continues = {lay.TAG_CONTINUES: earlier[-1].info.run_id} if earlier else {}
        self.trial_run_id = create_run(
            self.client,
            experiment_id=self.target.experiment_id,
            run_name=trial_id,
            tags={
                **common,
                **continues,
                lay.TAG_PARENT: self.target.parent_run_id,
                lay.TAG_ROLE: lay.ROLE_TRIAL,
                lay.TAG_SEEDS: ",".join(str(c.seed) for c in configs),
                lay.TAG_STATUS: lay.STATUS_RUNNING,
                **role_tags(role),
            },
        )
        log_params(self.client, self.trial_run_id, trial_params(params, configs[0]))
        self.seeds = [
            SeedRunLogger.open(
                self.client,
                experiment_id=self.target.experiment_id,
                trial_run_id=self.trial_run_id,
                config=config,
                tags=common,
            )
            for config in configs
        ]
        self._retire_earlier(earlier)
        return list(self.seeds)

    def on_report(self, report: Mapping[str, Any]) -> None:
        """Seed means and stds of every eval metric and the epoch loss, at the report's step.

        The final report (the only one with diag/* values) also ends the trial
        run: Ray may stop the trial inside that very report, before `on_finish`.
        """
        if self.trial_run_id is None or self.ended:
            return
        step = int(report[STEP_KEY])
        if step not in self.logged_steps:  # the final report may repeat the last evaluation
            self.logged_steps.add(step)
            keys = [k for key in REPORTED_METRICS for k in (key, f"{key}{lay.STD_SUFFIX}")]
            log_metrics(
                self.client,
                self.trial_run_id,
                [make_metric(key, report[key], step) for key in keys if key in report],
            )
        if m.DIAG_STEPS in report:
            self._complete(report)

    def on_finish(self, *, report: Mapping[str, Any] | None, error: BaseException | None) -> None:
        """Once the trial function ends; a no-op if the final report already ended the run."""
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
        diag = [make_metric(k, report[k], step) for k in m.DIAG_METRICS if k in report]
        log_metrics(
            self.client, self.trial_run_id, [*diag, make_metric(lay.METRIC_FAILED, 0, step)]
        )
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

    def _any_overspecialized(self, report: Mapping[str, Any]) -> bool:
        """True when any seed was flagged (the trial mean is a fraction of seeds)."""
        values = [report.get(seed_key(s.config.seed, m.DIAG_OVERSPECIALIZED)) for s in self.seeds]
        return any(v is not None and math.isfinite(v) and v >= 1.0 for v in values)

    def _stopped_from_outside(self) -> None:
        """Ray ended the trial (SystemExit: a scheduler stop or Ctrl-C on the driver).

        Only buffered metrics are sent; the runs stay open for the driver, which
        knows whether the sweep was interrupted (KILLED) or the scheduler
        stopped this trial (FINISHED, status "stopped").
        """
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
