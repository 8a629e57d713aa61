"""`MlflowSweepTracker`: the driver's side of tracking one sweep.

`start` runs once Ray is connected and a trial is known to fit (the server's
reachability is checked before Ray starts, by `app.launch_sweep`),
`observer_factory` is shipped to the trials, and `finish` closes the parent
run and returns lines for the summary.
"""

from __future__ import annotations

import warnings

from rkdo_tune.redaction import redact_uri
from rkdo_tune.sweep.protocol import SearchSpace, SweepOutcome, SweepPlan, SweepTracker
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FAILED,
    FINISHED,
    KILLED,
    first_line,
    open_client,
    quick_http_failures,
    set_tags,
    tracking_errors_as_one_line,
)
from rkdo_tune.tracking._finish import (
    close_open_trials,
    finished_trial_runs,
    leaderboard_json,
    leaderboard_rows,
    record_best,
)
from rkdo_tune.tracking._parent import ensure_experiment, open_parent_run
from rkdo_tune.tracking._study import record_study
from rkdo_tune.tracking._trial import TrialRunFactory
from rkdo_tune.tracking._uri import check_reachable, ui_lines


class MlflowSweepTracker(SweepTracker):
    """One parent run per sweep in experiment `experiment` (default: the space name).

    `tracking_uri` is already resolved (see `resolve_tracking_uri`): absolute
    for SQLite, since the workers receive it as is.
    """

    def __init__(self, *, tracking_uri: str, experiment: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.sweep_name: str | None = None

    def start(self, *, space: SearchSpace, plan: SweepPlan, resume: bool) -> None:
        """Check the store, create the experiment once, create or reattach the parent run."""
        check_reachable(self.tracking_uri)
        name = self.experiment_name or space.name
        with quick_http_failures(), tracking_errors_as_one_line(self.tracking_uri):
            client = open_client(self.tracking_uri)
            self.experiment_id = ensure_experiment(client, name, uri=self.tracking_uri)
            self.parent_run_id = open_parent_run(
                client,
                experiment_id=self.experiment_id,
                space=space,
                plan=plan,
                resume=resume,
            )
        self.experiment_name = name
        self.sweep_name = plan.name

    def observer_factory(self) -> TrialRunFactory | None:
        if self.parent_run_id is None or self.experiment_id is None or self.sweep_name is None:
            return None
        return TrialRunFactory(
            tracking_uri=self.tracking_uri,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            sweep_name=self.sweep_name,
        )

    def finish(self, outcome: SweepOutcome, *, error: BaseException | None = None) -> list[str]:
        """End the parent run: FINISHED, KILLED (interrupted) or FAILED; lines for the summary."""
        if self.parent_run_id is None:
            return []
        if error is not None:
            try:
                self._end(outcome, status=_status_of(error), reason=first_line(error))
            except Exception as exc:  # never mask the sweep's own exception
                warnings.warn(
                    f"MLflow: could not end the sweep run: {first_line(exc)}", stacklevel=2
                )
            return []
        unfinished = outcome.unfinished
        with tracking_errors_as_one_line(self.tracking_uri):
            if unfinished:
                reason = f"{unfinished} trials unfinished (interrupted); continue with --resume"
                self._end(outcome, status=KILLED, reason=reason)
            else:
                self._end(outcome, status=FINISHED, reason="")
        return self.summary_lines()

    def _end(self, outcome: SweepOutcome, *, status: str, reason: str) -> None:
        client = open_client(self.tracking_uri)
        ids = {"experiment_id": self.experiment_id, "parent_run_id": self.parent_run_id}
        trials = (*outcome.trials, *outcome.confirmation)
        closed = close_open_trials(client, trials=trials, interrupted=status != FINISHED, **ids)
        run_ids = finished_trial_runs(client, **ids)
        if outcome.trials:
            record_best(client, self.parent_run_id, outcome, run_ids=run_ids)
            record_study(client, self.parent_run_id, outcome, run_ids=run_ids)
            rows = leaderboard_rows(outcome, run_ids=run_ids, statuses=closed)
            client.log_text(self.parent_run_id, leaderboard_json(rows), lay.ARTIFACT_LEADERBOARD)
        set_tags(client, self.parent_run_id, {lay.TAG_REASON: reason})  # "" clears a resumed one
        client.set_terminated(self.parent_run_id, status=status)

    def summary_lines(self) -> list[str]:
        """Where the sweep was logged and how to open it."""
        head = (
            f"MLflow: experiment {self.experiment_name} (id {self.experiment_id}), "
            f"sweep run {self.parent_run_id}, tracking URI {redact_uri(self.tracking_uri)}"
        )
        return [
            head,
            *ui_lines(
                self.tracking_uri, experiment_id=self.experiment_id, run_id=self.parent_run_id
            ),
        ]


def _status_of(error: BaseException) -> str:
    return KILLED if isinstance(error, KeyboardInterrupt) else FAILED
