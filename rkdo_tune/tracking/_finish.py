"""End of a sweep, in the driver: close runs that trials left open, record the best trial.

A trial stopped by the scheduler (ASHA, median) has its actor killed before
it can end its own runs; those are ended here as FINISHED with status
`stopped`. After an interrupted or failed sweep they end KILLED instead, and
a resumed trial links its new run to them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rkdo_tune import metrics as m
from rkdo_tune.sweep.protocol import STEP_KEY, SweepOutcome, TrialSummary
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    MlflowClient,
    Run,
    log_metrics,
    make_metric,
    search_runs,
    set_tags,
)

_VOCABULARY = frozenset(m.ALL_METRICS)
_INTERRUPTED = {lay.TAG_STATUS: lay.STATUS_STOPPED, lay.TAG_REASON: "interrupted"}


def _ending(summary: TrialSummary | None, *, interrupted: bool) -> tuple[str, dict[str, str]]:
    """(MLflow status, tags) for a trial run nobody ended."""
    if interrupted or summary is None:
        return KILLED, {
            lay.TAG_STATUS: lay.STATUS_STOPPED,
            lay.TAG_REASON: "the sweep ended before this trial did",
        }
    if summary.status == "error":
        return FAILED, {lay.TAG_STATUS: lay.STATUS_FAILED, lay.TAG_REASON: summary.reason}
    reason = f"stopped by the scheduler after epoch {summary.epochs}"
    return FINISHED, {lay.TAG_STATUS: lay.STATUS_STOPPED, lay.TAG_REASON: reason}


def close_open_trials(
    client: MlflowClient,
    *,
    experiment_id: str,
    parent_run_id: str,
    trials: Sequence[TrialSummary],
    interrupted: bool,
) -> dict[str, str]:
    """End trial and seed runs still RUNNING; returns {trial_id: rkdo.status} of those closed."""
    by_id = {t.trial_id: t for t in trials}
    closed: dict[str, str] = {}
    runs = search_runs(
        client, experiment_id, tags={lay.TAG_PARENT: parent_run_id, lay.TAG_ROLE: lay.ROLE_TRIAL}
    )
    newest = {r.data.tags.get(lay.TAG_TRIAL_ID, ""): r.info.run_id for r in runs}  # oldest first
    for run in runs:
        if run.info.status != RUNNING:
            continue
        trial_id = run.data.tags.get(lay.TAG_TRIAL_ID, "")
        status, tags = _ending(by_id.get(trial_id), interrupted=interrupted)
        earlier = newest[trial_id] != run.info.run_id
        if earlier:  # an attempt its restart could not retire (the server was away then)
            status, tags = KILLED, {**_INTERRUPTED, lay.TAG_SUPERSEDED_BY: newest[trial_id]}
        seeds = search_runs(client, experiment_id, tags={lay.TAG_PARENT: run.info.run_id})
        for open_run in [*(s for s in seeds if s.info.status == RUNNING), run]:
            set_tags(client, open_run.info.run_id, tags)
            client.set_terminated(open_run.info.run_id, status=status)
        if not earlier:
            closed[trial_id] = tags[lay.TAG_STATUS]
    return closed


def finished_trial_runs(
    client: MlflowClient, *, experiment_id: str, parent_run_id: str
) -> dict[str, str]:
    """{trial_id: run id} of each trial's FINISHED run (one per trial id)."""
    runs: Sequence[Run] = search_runs(
        client, experiment_id, tags={lay.TAG_PARENT: parent_run_id, lay.TAG_ROLE: lay.ROLE_TRIAL}
    )
    return {
        r.data.tags.get(lay.TAG_TRIAL_ID, ""): r.info.run_id
        for r in runs
        if r.info.status == FINISHED
    }


def current_trial_runs(
    client: MlflowClient, *, experiment_id: str, parent_run_id: str
) -> dict[str, str]:
    """{trial_id: run id} of each trial's run that is not a superseded (KILLED) attempt:
    the runs the UI link lists, failed ones included."""
    runs: Sequence[Run] = search_runs(
        client, experiment_id, tags={lay.TAG_PARENT: parent_run_id, lay.TAG_ROLE: lay.ROLE_TRIAL}
    )
    return {
        r.data.tags.get(lay.TAG_TRIAL_ID, ""): r.info.run_id
        for r in runs
        if r.info.status != KILLED
    }


def _json_number(value: float) -> float | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Means, stds and per-seed values of vocabulary metrics; Ray's bookkeeping left out."""
    kept = {}
    for key, value in metrics.items():
        base = key.split("/", 1)[1] if key.startswith("seed_") else key
        base = base.removesuffix(lay.STD_SUFFIX)
        if base in _VOCABULARY and isinstance(value, int | float):
            kept[key] = _json_number(float(value))
    return kept


def leaderboard_rows(
    outcome: SweepOutcome, *, run_ids: Mapping[str, str], statuses: Mapping[str, str]
) -> list[dict[str, Any]]:
    """sweep/leaderboard.json: every trial, ranked ones (finite metric) first, best first;
    then the baseline and failed trials, then the confirmation re-runs."""
    ranked = outcome.ranked()
    rank_of = {t.trial_id: i for i, t in enumerate(ranked, start=1)}
    rest = [t for t in outcome.trials if t.trial_id not in rank_of]
    tied = {mark.trial_id: mark.tied for mark in outcome.ties}
    return [
        {
            "rank": rank_of.get(t.trial_id),
            "trial_id": t.trial_id,
            "arm": t.role.arm,
            "stage": t.role.stage,
            "confirms": t.role.confirms or None,
            "tied_with_best": tied.get(t.trial_id),
            "run_id": run_ids.get(t.trial_id),
            "params": dict(t.params),
            "metric": outcome.metric,
            "mode": outcome.mode,
            "value": _json_number(t.value),
            "std": _json_number(t.std),
            "status": statuses.get(t.trial_id, t.status),
            "reason": t.reason,
            "epochs": t.epochs,
            "metrics": _summary_metrics(t.metrics),
        }
        for t in [*ranked, *rest, *outcome.confirmation]
    ]


def record_best(
    client: MlflowClient,
    parent_run_id: str,
    outcome: SweepOutcome,
    *,
    run_ids: Mapping[str, str],
) -> None:
    """Tags naming the best trial and `best/<metric>` for its eval/* and diag/* means."""
    ranked = outcome.ranked()
    if not ranked:
        return
    best = ranked[0]
    tags = {lay.TAG_BEST_TRIAL_ID: best.trial_id}
    if best.trial_id in run_ids:
        tags[lay.TAG_BEST_TRIAL_RUN_ID] = run_ids[best.trial_id]
    set_tags(client, parent_run_id, tags)
    keys = [
        k
        for k in (*m.EVAL_METRICS, *m.DIAG_METRICS)
        if isinstance(best.metrics.get(k), int | float)
    ]
    step = int(best.metrics.get(STEP_KEY, 0) or 0)
    log_metrics(
        client,
        parent_run_id,
        [make_metric(f"{lay.BEST_METRIC_PREFIX}{k}", best.metrics[k], step) for k in keys],
    )


def leaderboard_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=1, allow_nan=False, default=str)
