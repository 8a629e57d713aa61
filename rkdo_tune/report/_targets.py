"""Compute-to-target: how many steps and epochs each seed run needed to reach a metric value.

`seeds` and `history` are the tables described in `_stats`. `reached` (from
`target_reached`) has one row per seed run: `trial_id`, `objective`, `seed`,
and the `step` and `epoch` of the first evaluation reaching the target (NaN if none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rkdo_tune.diagnostics import steps_to_target
from rkdo_tune.report._stats import ICON, RKDO

DEFAULT_TARGET_FRACTION = 0.9
RATIO_LABEL = "RKDO / I-Con"


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


def _reach_summary(group: pd.DataFrame) -> dict[str, float]:
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


def compute_to_target_by_objective(
    reached: pd.DataFrame, *, best: Mapping[str, str]
) -> pd.DataFrame:
    """Per objective, its best configuration and all configurations pooled, then RKDO/I-Con.

    `best` maps an objective to its trial under the report's one definition (the
    verdict's RKDO configuration and its I-Con control); an objective missing from it
    gets the pooled row only. Ratio rows divide RKDO's steps and epochs by I-Con's;
    `saving_pct` is 100 * (1 - ratio), the paper's "fewer resources".
    """
    rows = []
    for objective in (RKDO, ICON):
        pooled = reached[reached["objective"] == objective] if len(reached) else reached
        if pooled.empty:
            continue
        if objective in best:
            best_group = reached[reached["trial_id"] == best[objective]]
            scope = f"best: {best[objective]}"
            rows.append({"objective": objective, "scope": scope, **_reach_summary(best_group)})
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
