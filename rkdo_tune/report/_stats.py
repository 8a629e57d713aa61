"""The report's per-trial numbers, as pure functions over tidy pandas tables.

No MLflow and no plotting here. `seeds` has one row per seed run: `trial_id`,
`seed`, `status`, the TrialConfig fields (`objective`, `alpha`, ...) and the
final value of each metric under its metric name (`eval/linear_acc`, ...).
`history` is long: `run_id`, `key`, `step`, `value`. Matched RKDO/I-Con pairs
are in `_pairs`, compute-to-target in `_targets`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.config import SCOPE_BOOKKEEPING, SCOPE_ICON, SCOPE_RKDO, fields_in_scope
from rkdo_tune.inference import TieMark, mark_ties, mean_ci, rank_order

RKDO, ICON = "rkdo", "icon"
# From the TrialConfig field metadata: the knobs only one objective reads, and the
# fields that do not change what is trained (so they never split a matched group).
RKDO_ONLY = fields_in_scope(SCOPE_RKDO)
ICON_ONLY = fields_in_scope(SCOPE_ICON)
BOOKKEEPING = fields_in_scope(SCOPE_BOOKKEEPING)
# The report describes what the seed runs reached: a NaN seed is left out of a mean.
NON_FINITE: m.NonFinite = "omit"
# ...but ranks on the sweep's rule: a configuration with a non-finite seed ranks last.
RANK_MEAN = "rank_mean"


def present_metrics(seeds: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The metric names that have a column in `seeds`, in the given order."""
    return [name for name in names if name in seeds.columns]


def leaderboard_frame(
    seeds: pd.DataFrame,
    *,
    metric: str,
    mode: str,
    params: Sequence[str],
    metrics: Sequence[str],
    without_seeds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per trial, best first: params, n seeds, `<m> mean/std/ci_lo/ci_hi` per metric.

    Ranked under the one definition of best (`inference.rank_order`): by `rank_mean`,
    the mean of `metric` over all the trial's seeds, NaN when any seed has no finite
    value (the sweep's rule); ties go to the smaller trial id, NaN ranks last.
    Displayed means leave a non-finite seed out. The CI is Student's t over the seeds.
    `without_seeds` (trial id -> status) adds trials that have no seed run, unranked.
    """
    rows = [
        _trial_row(str(trial_id), group, metric=metric, params=params, metrics=metrics)
        for trial_id, group in seeds.groupby("trial_id", sort=False)
    ]
    seen = {row["trial_id"] for row in rows}
    for trial_id, status in (without_seeds or {}).items():
        if trial_id not in seen:  # a trial that failed before any seed run: keep it visible
            rows.append({"trial_id": trial_id, "n_seeds": 0, "status": status})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for key in (f"{metric} mean", RANK_MEAN):
        if key not in table.columns:
            table[key] = math.nan
    order = rank_order(table[RANK_MEAN].astype(float).tolist(), list(table["trial_id"]), mode=mode)
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _trial_row(
    trial_id: str,
    group: pd.DataFrame,
    *,
    metric: str,
    params: Sequence[str],
    metrics: Sequence[str],
) -> dict[str, object]:
    first = group.iloc[0]
    row: dict[str, object] = {"trial_id": trial_id, "objective": first.get("objective")}
    schedule = str(first.get("tau_schedule", "level"))
    row.update(
        {
            name: first.get(name)
            if param_applies(str(first.get("objective")), name, tau_schedule=schedule)
            else None  # e.g. alpha of an I-Con trial: sampled or not, it is not used
            for name in params
            if name != "objective"
        }
    )
    row["n_seeds"] = len(group)
    row["status"] = "/".join(sorted(set(group["status"].astype(str))))
    for name in dict.fromkeys([metric, *metrics]):
        if name in group.columns:
            values = group[name].astype(float)
            row[f"{name} mean"], row[f"{name} std"] = m.mean_over_seeds(
                values, non_finite=NON_FINITE
            )
            interval = mean_ci(values.tolist())
            row[f"{name} ci_lo"], row[f"{name} ci_hi"] = interval.lo, interval.hi
    if metric in group.columns:
        row[RANK_MEAN] = m.mean_over_seeds(group[metric], non_finite="propagate")[0]
    return row


def tie_marks(seeds: pd.DataFrame, board: pd.DataFrame, *, metric: str) -> list[TieMark]:
    """Each ranked configuration with seed runs against the leaderboard's best (family "ties").

    Paired over the seeds each shares with the best; one Holm family. [] without a best.
    """
    if board.empty or metric not in seeds.columns or not math.isfinite(board[RANK_MEAN].iloc[0]):
        return []
    per_seed = {
        str(trial_id): group.set_index(group["seed"].astype(int))[metric].astype(float).to_dict()
        for trial_id, group in seeds.groupby("trial_id", sort=False)
    }
    best = str(board["trial_id"].iloc[0])
    ranked = {t: per_seed[t] for t in board["trial_id"] if t in per_seed}
    return mark_ties(ranked, best=best)


def with_ties(board: pd.DataFrame, marks: Sequence[TieMark]) -> pd.DataFrame:
    """The board plus `tied_with_best`, `delta_vs_best` (this − best) and `p_holm_vs_best`."""
    by_trial = {mark.trial_id: mark for mark in marks}
    table = board.copy()
    table["tied_with_best"] = [
        by_trial[t].tied if t in by_trial else None for t in table["trial_id"]
    ]
    table["delta_vs_best"] = [
        -by_trial[t].comparison.delta
        if t in by_trial and by_trial[t].comparison is not None
        else math.nan
        for t in table["trial_id"]
    ]
    table["p_holm_vs_best"] = [
        by_trial[t].p_holm if t in by_trial else math.nan for t in table["trial_id"]
    ]
    return table


def param_applies(objective: str, param: str, *, tau_schedule: str = "level") -> bool:
    """Whether `param` changes training for `objective` (alpha means nothing to I-Con)."""
    if objective == ICON and param == "beta":
        return tau_schedule != "level"
    return not (objective == ICON and param in RKDO_ONLY) and not (
        objective == RKDO and param in ICON_ONLY
    )


def varying(seeds: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The columns among `names` that take more than one value."""
    return [n for n in names if n in seeds.columns and seeds[n].astype(str).nunique() > 1]


def metric_by_param(seeds: pd.DataFrame, *, param: str, metric: str) -> pd.DataFrame:
    """Columns objective, value, mean, std, n: `metric` over seed runs at each `param` value."""
    rows = []
    for (objective, value), group in seeds.groupby(["objective", param], sort=True):
        mean, std = m.mean_over_seeds(group[metric], non_finite=NON_FINITE)
        rows.append(
            {
                "objective": objective,
                "value": value,
                "mean": mean,
                "std": std,
                "n": int(np.isfinite(group[metric].astype(float)).sum()),
            }
        )
    return pd.DataFrame(rows, columns=["objective", "value", "mean", "std", "n"])


def mean_curve(history: pd.DataFrame, run_ids: Sequence[str], *, key: str) -> pd.DataFrame:
    """Columns step, value: `key` averaged over the given runs at each step."""
    curves = history[(history["key"] == key) & history["run_id"].isin(run_ids)]
    return curves.groupby("step", as_index=False)["value"].mean()
