"""Compute-to-target: the target, and how many steps each seed run needed to stay at it.

`seeds` and `history` are the tables described in `_stats`. The rules:

- **The target** (`choose_target`) is what the I-Con control reaches at its full
  budget: its final seed-mean of the metric, the control being the verdict's
  (`_verdict.choose_control`: the baseline arm, else the sweep's I-Con trials).
  `--target VALUE` or `--target-fraction F` override it; without an I-Con run the
  fraction rule falls back to the best final mean, and the report says so.
- **Its own seeds.** Against the control's own final mean about half of the control's
  seeds end below it, by construction. Rather than hold seeds out (the shipped
  spaces have no spare control seeds, and 3-5 seeds leave a leave-one-out mean too
  noisy), the ratio is shown at FRACTIONS of the control's final mean: how it moves
  as the target nears the control's own plateau is the honest answer.
- **Reached** means staying at or above the target at every later evaluation
  (`diagnostics.steps_to_target`), so one noisy spike does not count. A seed run
  that never does is censored at its budget (epochs x steps per epoch), not dropped.

`target_reached` has one row per seed run: `trial_id`, `objective`, `seed`, `run_id`,
`step` (NaN when censored), `censored`, `budget`, `time` (step, else budget),
`steps_per_epoch` and `epoch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.diagnostics import target_censoring
from rkdo_tune.report._stats import ICON, RKDO
from rkdo_tune.survival import km_median

FRACTIONS = (0.9, 0.95, 1.0)  # of the control's final mean: where the ratio is shown
FALLBACK_FRACTION = 0.9  # of the best final mean, when the sweep has no I-Con run
RATIO_LABEL = "RKDO / I-Con"
REACHED_COLUMNS = [
    *("trial_id", "objective", "seed", "run_id", "step", "censored", "budget", "time"),
    *("steps_per_epoch", "epoch"),
]


@dataclass(frozen=True)
class Target:
    """The compute-to-target value, and where it came from."""

    value: float
    note: str  # which target, and why: the report prints it
    reference: float = math.nan  # the control's final seed-mean (NaN without a control)
    fraction: float | None = None  # value = fraction of reference (or of the best, fallback)
    control: str | None = None  # the control trial the reference is the final mean of


def fraction_of(reference: float, fraction: float, *, mode: str) -> float:
    """A target `fraction` of the way to `reference`: F * ref ("max"), ref / F ("min")."""
    return fraction * reference if mode == "max" else reference / fraction


def final_mean(seeds: pd.DataFrame, trial_id: str, *, metric: str) -> tuple[float, int]:
    """(mean of `metric` over the trial's seed runs with a finite value, how many)."""
    values = seeds.loc[seeds["trial_id"] == trial_id, metric].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return (float(values.mean()), int(values.size)) if values.size else (math.nan, 0)


def best_final_mean(board: pd.DataFrame, *, metric: str, mode: str) -> float:
    values = board.get(f"{metric} mean", pd.Series(dtype=float)).to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    return float(values.max() if mode == "max" else values.min())


def choose_target(
    *,
    given: float | None,
    fraction: float | None,
    seeds: pd.DataFrame,
    board: pd.DataFrame,
    control: tuple[str, str] | None,
    metric: str,
    mode: str,
) -> Target:
    """The target under the rules above; `control` is (trial id, how the report names it)."""
    if given is not None:
        return Target(given, "given with --target")
    reference, n = final_mean(seeds, control[0], metric=metric) if control else (math.nan, 0)
    if control is not None and math.isfinite(reference):
        share = 1.0 if fraction is None else fraction
        why = "set with --target-fraction" if fraction is not None else "the default"
        note = (
            f"{_share(share)}the final seed-mean of the {control[1]} ({control[0]}, "
            f"{n} seeds, {reference:.4f}): what the baseline reaches at its full budget, "
            f"so the question is how many steps RKDO needs to get there; {why}"
        )
        return Target(fraction_of(reference, share, mode=mode), note, reference, share, control[0])
    share = FALLBACK_FRACTION if fraction is None else fraction
    best = best_final_mean(board, metric=metric, mode=mode)
    note = (
        "this sweep has no I-Con run, so there is no baseline to take the target from: "
        f"falling back to {_share(share)}the best final seed-mean ({best:.4f})"
    )
    return Target(fraction_of(best, share, mode=mode), note, math.nan, share)


def _share(fraction: float) -> str:
    return "" if fraction == 1.0 else f"{fraction:g} × "


def shown_targets(target: Target, *, mode: str) -> list[tuple[float | None, float]]:
    """(fraction, value) of the headline target first, then FRACTIONS of the reference."""
    shown = [(target.fraction if target.control else None, target.value)]
    if math.isfinite(target.reference):
        others = [f for f in FRACTIONS if f != target.fraction]
        shown += [(f, fraction_of(target.reference, f, mode=mode)) for f in others]
    return shown


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def steps_per_epoch_of(row: pd.Series, first_eval_step: float) -> float:
    """The run's steps per epoch: its config value, else diag/steps over its epochs, else
    inferred from its first evaluation (runs logged before either was recorded)."""
    configured = row.get("steps_per_epoch")
    if not _is_missing(configured):
        return float(configured)
    steps, epochs = row.get(m.DIAG_STEPS), row.get("epochs")
    if not _is_missing(steps) and not _is_missing(epochs) and epochs and steps:
        return float(steps) / float(epochs)
    every = row.get("eval_every") or 1
    return float(first_eval_step) / float(every) if math.isfinite(first_eval_step) else math.nan


def budget_of(row: pd.Series, per_epoch: float, last_eval_step: float) -> float:
    """The steps a seed run was given: epochs x steps per epoch, else its last evaluation."""
    epochs = row.get("epochs")
    if not _is_missing(epochs) and math.isfinite(per_epoch):
        return float(epochs) * per_epoch
    return last_eval_step


def target_reached(
    seeds: pd.DataFrame, history: pd.DataFrame, *, metric: str, target: float, mode: str
) -> pd.DataFrame:
    """Per seed run: the step from which `metric` stays at `target`, else censored at its budget."""
    curves = history[history["key"] == metric]
    rows = []
    for _, row in seeds.iterrows():
        curve = curves[curves["run_id"] == row["run_id"]].sort_values("step")
        steps, values = curve["step"].to_numpy(dtype=float), curve["value"].to_numpy(dtype=float)
        per_epoch = steps_per_epoch_of(row, steps[0] if steps.size else math.nan)
        budget = budget_of(row, per_epoch, steps[-1] if steps.size else math.nan)
        time, censored = target_censoring(steps, values, target=target, budget=budget, mode=mode)
        rows.append(
            {
                "trial_id": row["trial_id"],
                "objective": row.get("objective"),
                "seed": int(row["seed"]),
                "run_id": row["run_id"],
                "step": math.nan if censored else time,
                "censored": censored,
                "budget": budget,
                "time": time,
                "steps_per_epoch": per_epoch,
                "epoch": time / per_epoch if per_epoch and math.isfinite(per_epoch) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=REACHED_COLUMNS)


def _reach_summary(group: pd.DataFrame) -> dict[str, float]:
    """Reached fraction and the Kaplan–Meier median steps (and epochs) with its interval."""
    if group.empty:
        return {"n_seeds": 0, "reached": math.nan}
    known = group[np.isfinite(group["time"].to_numpy(dtype=float))]
    median = km_median(known["time"].to_numpy(dtype=float), ~known["censored"].to_numpy(bool))
    per_epoch = group["steps_per_epoch"].to_numpy(dtype=float)
    per_epoch = float(np.nanmedian(per_epoch)) if np.isfinite(per_epoch).any() else math.nan
    return {
        "n_seeds": len(group),
        "reached": float((~group["censored"].astype(bool)).mean()),
        "median_steps": median.median,
        "median_lo": median.lo,
        "median_hi": median.hi,
        "median_epochs": median.median / per_epoch if per_epoch else math.nan,
    }


def compute_to_target_by_trial(reached: pd.DataFrame) -> pd.DataFrame:
    """Per trial: reached fraction and the Kaplan–Meier median steps with its interval."""
    rows = [
        {"trial_id": trial, "objective": group["objective"].iloc[0], **_reach_summary(group)}
        for trial, group in reached.groupby("trial_id", sort=False)
    ]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["order"] = (table["objective"] != RKDO).astype(int)  # RKDO first, then I-Con
    table = table.sort_values(
        ["order", "reached", "median_steps"], ascending=[True, False, True], ignore_index=True
    )
    return table.drop(columns="order")


def compute_to_target_by_objective(
    reached: pd.DataFrame, *, best: Mapping[str, str]
) -> pd.DataFrame:
    """Per objective, its configuration under the verdict and all its configurations pooled.

    `best` maps an objective to its trial under the report's one definition (the
    verdict's RKDO configuration and its I-Con control); an objective missing from it
    gets the pooled row only. The step ratio is `step_ratios`', over matched seeds.
    """
    rows = []
    for objective in (RKDO, ICON):
        pooled = reached[reached["objective"] == objective] if len(reached) else reached
        if pooled.empty:
            continue
        if objective in best:
            chosen = reached[reached["trial_id"] == best[objective]]
            scope = f"best: {best[objective]}"
            rows.append({"objective": objective, "scope": scope, **_reach_summary(chosen)})
        rows.append(
            {"objective": objective, "scope": "all configurations", **_reach_summary(pooled)}
        )
    return pd.DataFrame(rows)


def observations(reached: pd.DataFrame, trial_id: str) -> dict[int, tuple[float, bool]]:
    """{seed: (steps or budget, censored)} of one trial's seed runs with a known budget."""
    rows = reached[(reached["trial_id"] == trial_id) & np.isfinite(reached["time"])]
    return {
        int(s): (float(t), bool(c))
        for s, t, c in zip(rows["seed"], rows["time"], rows["censored"], strict=True)
    }


def seed_metrics(reached: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{seed run id: {steps-to-target, censored flag}}: what goes on each seed run in MLflow."""
    return {
        str(r["run_id"]): {
            m.REPORT_STEPS_TO_TARGET: float(r["time"]),
            m.REPORT_TARGET_CENSORED: 1.0 if r["censored"] else 0.0,
        }
        for _, r in reached.iterrows()
        if math.isfinite(r["time"])
    }
