"""Attempts Tune lost track of: trial runs of a trial id the finished sweep does not have.

A driver killed after a trial started (or even ended) but before Tune saved
its experiment state resumes without that trial: the searcher hands the same
configuration out again, under a new trial id. The lost attempt's runs are
still in MLflow. At the end of a sweep they end KILLED, pointing with
`rkdo.superseded_by` at the run of the trial that ran the same configuration,
so each configuration keeps exactly one FINISHED trial run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rkdo_tune.sweep.protocol import TrialSummary
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FINISHED,
    KILLED,
    RUNNING,
    MlflowClient,
    Run,
    param_value,
    search_runs,
    set_tags,
)

_OPEN_OR_DONE = (RUNNING, FINISHED)  # a lost attempt that FAILED keeps its status
_LOST = {lay.TAG_STATUS: lay.STATUS_STOPPED, lay.TAG_REASON: "interrupted; the sweep lost it"}


def _same_configuration(run: Run, trial: TrialSummary) -> bool:
    """The run was logged for `trial`'s arm, stage and searched values."""
    tags, params = run.data.tags, run.data.params
    if (tags.get(lay.TAG_ARM), tags.get(lay.TAG_STAGE)) != (trial.role.arm, trial.role.stage):
        return False
    return all(params.get(name) == param_value(value) for name, value in trial.params.items())


def successor_of(run: Run, trials: Sequence[TrialSummary], newest: Mapping[str, str]) -> str:
    """The newest run of the trial that ran `run`'s configuration; "" when none did."""
    for trial in trials:
        if trial.trial_id in newest and _same_configuration(run, trial):
            return newest[trial.trial_id]
    return ""


def retire_lost_attempts(
    client: MlflowClient,
    *,
    experiment_id: str,
    parent_run_id: str,
    trials: Sequence[TrialSummary],
) -> list[str]:
    """End the runs of trial ids not in `trials` KILLED and linked; returns their run ids.

    Call it only with every trial of a sweep that ran to its end.
    """
    known = {t.trial_id for t in trials}
    runs = search_runs(
        client, experiment_id, tags={lay.TAG_PARENT: parent_run_id, lay.TAG_ROLE: lay.ROLE_TRIAL}
    )
    newest = {r.data.tags.get(lay.TAG_TRIAL_ID, ""): r.info.run_id for r in runs}  # oldest first
    retired = []
    for run in runs:
        lost = run.data.tags.get(lay.TAG_TRIAL_ID, "") not in known
        if not lost or run.info.status not in _OPEN_OR_DONE:
            continue
        successor = successor_of(run, trials, newest)
        tags = {**_LOST, **({lay.TAG_SUPERSEDED_BY: successor} if successor else {})}
        seeds = search_runs(client, experiment_id, tags={lay.TAG_PARENT: run.info.run_id})
        for attempt in [*(s for s in seeds if s.info.status in _OPEN_OR_DONE), run]:
            set_tags(client, attempt.info.run_id, tags)
            client.set_terminated(attempt.info.run_id, status=KILLED)
        retired.append(run.info.run_id)
    return retired
