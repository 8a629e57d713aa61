"""`MlflowSweepTracker`: the driver's side of tracking one sweep.

`start` runs once Ray is connected and a trial is known to fit (the server's
reachability is checked before Ray starts, by `app.launch_sweep`),
`observer_factory` is shipped to the trials, and `finish` closes the parent
run and returns lines for the summary.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from rkdo_tune.errors import UsageError
from rkdo_tune.floors import FloorKey, References
from rkdo_tune.protocols import PROTOCOL_VERSION
from rkdo_tune.redaction import redact_uri
from rkdo_tune.sweep.protocol import SearchSpace, SweepOutcome, SweepPlan, SweepTracker
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FAILED,
    FINISHED,
    KILLED,
    NEWEST_FIRST,
    first_line,
    open_client,
    quick_http_failures,
    search_runs,
    set_tags,
    tracking_errors_as_one_line,
)
from rkdo_tune.tracking._finish import (
    close_open_trials,
    current_trial_runs,
    finished_trial_runs,
    leaderboard_json,
    leaderboard_rows,
    record_best,
)
from rkdo_tune.tracking._lost import retire_lost_attempts
from rkdo_tune.tracking._outbox import send_left_behind
from rkdo_tune.tracking._outbox_client import outbox_folder
from rkdo_tune.tracking._parent import ensure_experiment, fixed_settings, open_parent_run
from rkdo_tune.tracking._references import (
    read_references,
    record_environment,
    record_references,
)
from rkdo_tune.tracking._study import record_ranks, record_study
from rkdo_tune.tracking._trial import TrialRunFactory
from rkdo_tune.tracking._uri import check_reachable, ui_lines
from rkdo_tune.tracking.links import RunsLink, link_lines, trial_links


def step_points(environ: Mapping[str, str]) -> int:
    """The per-step points per seed run and key: $RKDO_MLFLOW_STEP_POINTS, else the default."""
    text = environ.get(lay.STEP_POINTS_ENV, "").strip()
    if not text:
        return lay.DEFAULT_STEP_POINTS
    try:
        points = int(text)
    except ValueError:
        points = -1
    if points < 0:
        raise UsageError(
            f"{lay.STEP_POINTS_ENV} has value {text!r}, but it must be a whole number >= 0 "
            "(0 sends every step)"
        )
    return points


class MlflowSweepTracker(SweepTracker):
    """One parent run per sweep in experiment `experiment` (default: the space name).

    `tracking_uri` is already resolved (see `resolve_tracking_uri`): absolute
    for SQLite, since the workers receive it as is.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment: str | None = None,
        nest_under: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`nest_under`: a run (an audit's) the sweep run is shown beneath in the UI;
        `tags`: extra tags of the sweep run (which audit and study it belongs to)."""
        self.tracking_uri = tracking_uri
        self.nest_under = nest_under
        self.extra_tags = dict(tags or {})
        self.experiment_name = experiment
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.sweep_name: str | None = None
        self.space: SearchSpace | None = None
        self.step_points = lay.DEFAULT_STEP_POINTS
        self.links: list[RunsLink] = []
        self.outbox = ""  # the sweep's outbox folder: what trials could not send yet

    def start(self, *, space: SearchSpace, plan: SweepPlan, resume: bool) -> None:
        """Check the store, create the experiment once, create or reattach the parent run."""
        self.step_points = step_points(os.environ)
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
            nesting = {lay.TAG_PARENT: self.nest_under} if self.nest_under else {}
            if nesting or self.extra_tags:
                set_tags(client, self.parent_run_id, {**nesting, **self.extra_tags})
            self.outbox = str(outbox_folder(plan.experiment_path))
            if resume:  # what an earlier run's trials could not send, before any trial restarts
                send_left_behind(client, self.outbox, uri=self.tracking_uri)
        self.experiment_name = name
        self.sweep_name = plan.name
        self.space = space

    def observer_factory(self) -> TrialRunFactory | None:
        if None in (self.parent_run_id, self.experiment_id, self.sweep_name, self.space):
            return None
        space = self.space
        return TrialRunFactory(
            tracking_uri=self.tracking_uri,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            sweep_name=self.sweep_name,
            metric=space.metric,
            log_scaled=tuple(p.name for p in space.searched_parameters if p.log),
            step_points=self.step_points,
            fixed=fixed_settings(space),
            outbox=self.outbox,
        )

    def cached_references(self, key: FloorKey) -> tuple[References, str] | None:
        """Floors already recorded for `key`, and where: this sweep run's (a resumed sweep),
        else the latest finished sweep run of the experiment whose floors have this key
        under the same evaluation protocol version."""
        if self.parent_run_id is None or self.experiment_id is None:
            return None
        with tracking_errors_as_one_line(self.tracking_uri):
            client = open_client(self.tracking_uri)
            own, _ = read_references(client.get_run(self.parent_run_id))
            if own is not None and own.key == key:
                return own, self.OWN_RUN
            wanted = {
                lay.TAG_ROLE: lay.ROLE_SWEEP,
                lay.TAG_FLOOR_KEY: key.tag(),
                lay.TAG_PROTOCOL_VERSION: str(PROTOCOL_VERSION),
            }
            for run in search_runs(client, self.experiment_id, tags=wanted, order_by=NEWEST_FIRST):
                found, _ = read_references(run)
                if run.info.status == FINISHED and found is not None and found.key == key:
                    return found, f"sweep run {run.info.run_id} ({run.info.run_name})"
        return None

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
        send_left_behind(client, self.outbox, uri=self.tracking_uri)  # before reading trial runs
        ids = {"experiment_id": self.experiment_id, "parent_run_id": self.parent_run_id}
        trials = (*outcome.trials, *outcome.confirmation)
        if status == FINISHED:  # every trial known: runs of attempts Tune lost are retired
            retire_lost_attempts(client, trials=trials, **ids)
        closed = close_open_trials(client, trials=trials, interrupted=status != FINISHED, **ids)
        run_ids = finished_trial_runs(client, **ids)
        self.links = trial_links(
            self.tracking_uri,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            confirmation=bool(outcome.confirmation),
        )
        if outcome.environment:
            record_environment(client, self.parent_run_id, outcome.environment)
        if outcome.references is not None or outcome.references_note:
            note = outcome.references_note
            record_references(client, self.parent_run_id, outcome.references, note=note)
        if outcome.trials:
            record_best(client, self.parent_run_id, outcome, run_ids=run_ids)
            record_ranks(client, outcome, run_ids=current_trial_runs(client, **ids))
            record_study(client, self.parent_run_id, outcome, run_ids=run_ids, links=self.links)
            rows = leaderboard_rows(outcome, run_ids=run_ids, statuses=closed)
            client.log_text(self.parent_run_id, leaderboard_json(rows), lay.ARTIFACT_LEADERBOARD)
        if reason:
            set_tags(client, self.parent_run_id, {lay.TAG_REASON: reason})
        elif lay.TAG_REASON in client.get_run(self.parent_run_id).data.tags:
            client.delete_tag(self.parent_run_id, lay.TAG_REASON)  # a resumed sweep's old reason
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
            *link_lines(self.links),
        ]


def _status_of(error: BaseException) -> str:
    return KILLED if isinstance(error, KeyboardInterrupt) else FAILED
