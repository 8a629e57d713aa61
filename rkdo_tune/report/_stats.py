"""The report's numbers, as pure functions over tidy pandas tables (no MLflow, no plotting).

`seeds` has one row per seed run: `trial_id`, `seed`, `status`, the TrialConfig
fields (`objective`, `alpha`, ...) and the final value of each metric under its
metric name (`eval/linear_acc`, ...). `history` is long: `run_id`, `key`,
`step`, `value`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS
from rkdo_tune.diagnostics import steps_to_target

RKDO, ICON = "rkdo", "icon"
RKDO_ONLY = (
    "alpha",
    "depth",
    "detach_target",
    "recursion",
    "temporal_anchors",
    "alpha_schedule",
    "alpha_min",
    "alpha_decay_factor",
    "alpha_step_every",
    "alpha_patience",
)
ICON_ONLY = ("debias", "kernel", "student_df")
# Fields that do not change what is trained, so they never split a matched group.
BOOKKEEPING = ("seed", "objective", "data_dir", "download", "log_every", "target_metric_value")
# Seed runs whose final values are comparable: ASHA-stopped ones ended early on purpose.
COMPARABLE_STATUSES = ("completed", "early_stopped")
DEFAULT_TARGET_FRACTION = 0.9
RATIO_LABEL = "RKDO / I-Con"


def mean_std(values: pd.Series) -> tuple[float, float]:
    """Mean and sample std (ddof=1) of the finite values; std 0 for one value, NaN for none."""
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0


def present_metrics(seeds: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The metric names that have a column in `seeds`, in the given order."""
    return [name for name in names if name in seeds.columns]


def leaderboard(
    seeds: pd.DataFrame,
    *,
    metric: str,
    mode: str,
    params: Sequence[str],
    metrics: Sequence[str],
    without_seeds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per trial, best first: params, n seeds, and `<metric> mean`/`<metric> std`.

    Ranked by the mean of `metric` (descending for mode "max"); NaN means rank last.
    `without_seeds` (trial id -> status) adds trials that have no seed run, unranked.
    """
    rows = []
    for trial_id, group in seeds.groupby("trial_id", sort=False):
        first = group.iloc[0]
        row: dict[str, Any] = {"trial_id": trial_id, "objective": first.get("objective")}
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
                row[f"{name} mean"], row[f"{name} std"] = mean_std(group[name])
        rows.append(row)
    seen = {row["trial_id"] for row in rows}
    for trial_id, status in (without_seeds or {}).items():
        if trial_id not in seen:  # a trial that failed before any seed run: keep it visible
            rows.append({"trial_id": trial_id, "n_seeds": 0, "status": status})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    key = f"{metric} mean"
    if key not in table.columns:
        table[key] = math.nan
    table = table.sort_values(key, ascending=mode != "max", na_position="last", ignore_index=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def default_target(board: pd.DataFrame, *, metric: str, mode: str) -> float:
    """90% of the best final mean ("max"), or the best plus 10% of its size ("min")."""
    values = board.get(f"{metric} mean", pd.Series(dtype=float)).to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    if mode == "max":
        return float(DEFAULT_TARGET_FRACTION * values.max())
    best = float(values.min())
    return best + (1 - DEFAULT_TARGET_FRACTION) * abs(best)


def _settings_key(row: pd.Series) -> tuple[tuple[str, str], ...]:
    """Every setting both objectives share; objective-specific knobs and seed left out."""
    skip = set(BOOKKEEPING) | set(RKDO_ONLY) | set(ICON_ONLY)
    # Under the "level" schedule beta cools tau across RKDO's recursion levels only.
    if row.get("tau_schedule", "level") == "level":
        skip.add("beta")
    return tuple(
        (name, repr(row[name])) for name in FIELDS if name in row.index and name not in skip
    )


def matched_trial_pairs(seeds: pd.DataFrame) -> list[tuple[str, str]]:
    """(RKDO trial, I-Con trial) pairs that share every setting but the objective's own."""
    usable = seeds[seeds["status"].isin(COMPARABLE_STATUSES)]
    firsts = usable.groupby("trial_id", sort=True).first()
    keys = {trial: (row["objective"], _settings_key(row)) for trial, row in firsts.iterrows()}
    return [
        (rkdo_trial, icon_trial)
        for rkdo_trial, (rkdo_obj, rkdo_key) in keys.items()
        if rkdo_obj == RKDO
        for icon_trial, (icon_obj, icon_key) in keys.items()
        if icon_obj == ICON and icon_key == rkdo_key
    ]


def paired_values(
    seeds: pd.DataFrame, *, rkdo_trial: str, icon_trial: str, metric: str
) -> pd.DataFrame:
    """Columns seed, rkdo, icon: the two trials' values joined on seed, finite pairs only."""
    usable = seeds[seeds["status"].isin(COMPARABLE_STATUSES)]
    left = usable.loc[usable["trial_id"] == rkdo_trial, ["seed", metric]]
    right = usable.loc[usable["trial_id"] == icon_trial, ["seed", metric]]
    joined = left.merge(right, on="seed", suffixes=("_rkdo", "_icon"))
    joined.columns = ["seed", RKDO, ICON]
    finite = np.isfinite(joined[RKDO].astype(float)) & np.isfinite(joined[ICON].astype(float))
    return joined[finite].sort_values("seed", ignore_index=True)


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Paired t-test p-value and Cohen's d_z (mean / sample std of a - b); NaN when n < 2."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    if diff.size < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-variance differences: scipy warns, returns NaN/0
        p_value = float(stats.ttest_rel(a, b).pvalue)
    sd = float(diff.std(ddof=1))
    mean = float(diff.mean())
    d_z = mean / sd if sd > 0 else (math.nan if mean == 0 else math.copysign(math.inf, mean))
    return p_value, d_z


def matched_comparison(
    seeds: pd.DataFrame, pairs: Sequence[tuple[str, str]], *, metrics: Sequence[str]
) -> pd.DataFrame:
    """Per pair and metric: n, both means, mean difference (RKDO - I-Con), p, d_z, which wins."""
    rows = []
    for rkdo_trial, icon_trial in pairs:
        for metric in metrics:
            joined = paired_values(
                seeds, rkdo_trial=rkdo_trial, icon_trial=icon_trial, metric=metric
            )
            p_value, d_z = paired_test(joined[RKDO], joined[ICON])
            diff = float((joined[RKDO] - joined[ICON]).mean()) if len(joined) else math.nan
            rows.append(
                {
                    "rkdo_trial": rkdo_trial,
                    "icon_trial": icon_trial,
                    "metric": metric,
                    "n": len(joined),
                    "rkdo_mean": float(joined[RKDO].mean()) if len(joined) else math.nan,
                    "icon_mean": float(joined[ICON].mean()) if len(joined) else math.nan,
                    "diff": diff,
                    "p_value": p_value,
                    "d_z": d_z,
                    "better": _better(diff, m.MODE_OF.get(metric, "max")),
                }
            )
    return pd.DataFrame(rows)


def _better(diff: float, mode: str) -> str:
    if not math.isfinite(diff) or diff == 0:
        return "tie" if diff == 0 else "n/a"
    return RKDO if (diff > 0) == (mode == "max") else ICON


def steps_per_epoch_of(row: pd.Series, first_eval_step: float) -> float:
    """The run's steps per epoch: its config value, else inferred from its first evaluation."""
    configured = row.get("steps_per_epoch")
    if configured is not None and not (isinstance(configured, float) and math.isnan(configured)):
        return float(configured)
    every = row.get("eval_every") or 1
    return float(first_eval_step) / float(every) if math.isfinite(first_eval_step) else math.nan


def target_reached(
    seeds: pd.DataFrame, history: pd.DataFrame, *, metric: str, target: float, mode: str
) -> pd.DataFrame:
    """Per seed run: the first eval step (and epoch) whose `metric` reaches `target`, else NaN."""
    curves = history[history["key"] == metric]
    rows = []
    for _, row in seeds.iterrows():
        curve = curves[curves["run_id"] == row["run_id"]].sort_values("step")
        steps, values = curve["step"].to_numpy(), curve["value"].to_numpy(dtype=float)
        hit = steps_to_target(steps, values, target=target, mode=mode) if len(curve) else None
        per_epoch = steps_per_epoch_of(row, float(steps[0]) if len(steps) else math.nan)
        step = math.nan if hit is None else float(hit)
        rows.append(
            {
                "trial_id": row["trial_id"],
                "objective": row.get("objective"),
                "seed": row["seed"],
                "step": step,
                "epoch": step / per_epoch if per_epoch and math.isfinite(per_epoch) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["trial_id", "objective", "seed", "step", "epoch"])


def _reach_summary(group: pd.DataFrame) -> dict[str, Any]:
    reached = group["step"].notna()
    return {
        "n_seeds": len(group),
        "reached": float(reached.mean()) if len(group) else math.nan,
        "mean_steps": float(group.loc[reached, "step"].mean()) if reached.any() else math.nan,
        "mean_epochs": float(group.loc[reached, "epoch"].mean()) if reached.any() else math.nan,
    }


def compute_to_target_by_trial(reached: pd.DataFrame) -> pd.DataFrame:
    """Per trial: fraction of seeds reaching the target and mean steps/epochs of those that did."""
    rows = [
        {"trial_id": trial, "objective": group["objective"].iloc[0], **_reach_summary(group)}
        for trial, group in reached.groupby("trial_id", sort=False)
    ]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["order"] = (table["objective"] != RKDO).astype(int)  # RKDO first, then I-Con
    table = table.sort_values(
        ["order", "reached", "mean_steps"], ascending=[True, False, True], ignore_index=True
    )
    return table.drop(columns="order")


def compute_to_target_by_objective(reached: pd.DataFrame) -> pd.DataFrame:
    """Per objective, its best configuration and all configurations pooled, then RKDO/I-Con.

    The best configuration reaches the target with the most seeds, then in the fewest
    steps. Ratio rows divide RKDO's steps and epochs by I-Con's; `saving_pct` is
    100 * (1 - ratio), the paper's "fewer resources".
    """
    by_trial = compute_to_target_by_trial(reached)
    rows = []
    for objective in (RKDO, ICON):
        trials = by_trial[by_trial["objective"] == objective] if len(by_trial) else by_trial
        if trials.empty:
            continue
        best = trials.iloc[0]
        best_group = reached[reached["trial_id"] == best["trial_id"]]
        rows.append(
            {
                "objective": objective,
                "scope": f"best: {best['trial_id']}",
                **_reach_summary(best_group),
            }
        )
        pooled = reached[reached["objective"] == objective]
        rows.append(
            {"objective": objective, "scope": "all configurations", **_reach_summary(pooled)}
        )
    table = pd.DataFrame(rows)
    for scope in ("best", "all configurations"):
        table = pd.concat([table, _ratio_row(table, scope)], ignore_index=True)
    return table


def _ratio_row(table: pd.DataFrame, scope: str) -> pd.DataFrame:
    if table.empty:
        return table
    picked = table[table["scope"].str.startswith(scope)].set_index("objective")
    if RKDO not in picked.index or ICON not in picked.index:
        return pd.DataFrame()
    steps = picked.at[RKDO, "mean_steps"] / picked.at[ICON, "mean_steps"]
    epochs = picked.at[RKDO, "mean_epochs"] / picked.at[ICON, "mean_epochs"]
    row = {
        "objective": RATIO_LABEL,
        "scope": scope,
        "mean_steps": steps,
        "mean_epochs": epochs,
        "saving_pct": 100 * (1 - steps),
    }
    return pd.DataFrame([row])


def loss_improvement_pct(*, icon: float, rkdo: float) -> float:
    """The paper's Table 1 measure: 100 * (L_icon - L_rkdo) / L_icon."""
    return 100.0 * (icon - rkdo) / icon if icon else math.nan


def paper_claims(
    seeds: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    probe: str = m.EVAL_LINEAR_ACC,
) -> pd.DataFrame:
    """Per pair: raw final-loss improvement % beside yardstick-loss and probe comparisons.

    Means are over the seeds both trials finished. Improvement % is positive when
    RKDO is lower; `probe_diff` is RKDO - I-Con (positive when RKDO is better).
    """
    rows = []
    for rkdo_trial, icon_trial in pairs:
        row: dict[str, Any] = {"rkdo_trial": rkdo_trial, "icon_trial": icon_trial}
        epochs = seeds.loc[seeds["trial_id"] == rkdo_trial, "epochs"]
        row["epochs"] = epochs.iloc[0] if len(epochs) else math.nan
        for metric, label in (
            (m.TRAIN_EPOCH_LOSS, "loss"),
            (m.EVAL_YARDSTICK_LOSS, "yardstick"),
            (probe, "probe"),
        ):
            means = _pair_means(seeds, rkdo_trial, icon_trial, metric)
            row[f"{label}_rkdo"], row[f"{label}_icon"] = means
        row["loss_improvement_pct"] = loss_improvement_pct(
            icon=row["loss_icon"], rkdo=row["loss_rkdo"]
        )
        row["yardstick_improvement_pct"] = loss_improvement_pct(
            icon=row["yardstick_icon"], rkdo=row["yardstick_rkdo"]
        )
        row["probe_diff"] = row["probe_rkdo"] - row["probe_icon"]
        rows.append(row)
    return pd.DataFrame(rows)


def _pair_means(seeds: pd.DataFrame, rkdo_trial: str, icon_trial: str, metric: str) -> tuple:
    if metric not in seeds.columns:
        return math.nan, math.nan
    joined = paired_values(seeds, rkdo_trial=rkdo_trial, icon_trial=icon_trial, metric=metric)
    if joined.empty:
        return math.nan, math.nan
    return float(joined[RKDO].mean()), float(joined[ICON].mean())


def best_trial_per_objective(board: pd.DataFrame) -> list[tuple[str, str]]:
    """(best RKDO trial, best I-Con trial) by the leaderboard ranking, or [] if one is missing."""
    firsts = board.groupby("objective", sort=False)["trial_id"].first() if len(board) else {}
    if RKDO in firsts and ICON in firsts:
        return [(firsts[RKDO], firsts[ICON])]
    return []


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
        mean, std = mean_std(group[metric])
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
