"""Matched RKDO/I-Con pairs: trials that differ only in the objective, compared seed by seed.

`seeds` is the table described in `_stats`. A pair is (RKDO trial id, I-Con trial id);
values are joined on the seed, so each test is paired.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS, shared_settings_key
from rkdo_tune.inference import ALPHA_LEVEL, holm, paired
from rkdo_tune.report._stats import ICON, RKDO

# Seed runs whose final values are comparable: ASHA-stopped ones ended early on purpose.
COMPARABLE_STATUSES = ("completed", "early_stopped")


def _settings_key(row: pd.Series) -> tuple[tuple[str, str], ...]:
    """Every setting both objectives share (config.shared_settings_key) of a seed row."""
    return shared_settings_key({name: row[name] for name in FIELDS if name in row.index})


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
    """Paired t-test p-value and Cohen's d_z (mean / sample std of a - b); NaN when n < 2.

    a, b: shape (n,), the two trials' values on the same n seeds.
    """
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
    """Per pair and metric: n, both means, Δ = RKDO - I-Con with its 95% CI, p, p_holm, d_z.

    One Holm family ("matched settings") over every test of the table. `better` names
    the objective that wins only where the adjusted p is below ALPHA_LEVEL, else None.
    """
    rows = []
    for rkdo_trial, icon_trial in pairs:
        for metric in metrics:
            joined = paired_values(
                seeds, rkdo_trial=rkdo_trial, icon_trial=icon_trial, metric=metric
            )
            test = paired(joined[RKDO].tolist(), joined[ICON].tolist())
            rows.append(
                {
                    "rkdo_trial": rkdo_trial,
                    "icon_trial": icon_trial,
                    "metric": metric,
                    "n": len(joined),
                    "rkdo_mean": float(joined[RKDO].mean()) if len(joined) else math.nan,
                    "icon_mean": float(joined[ICON].mean()) if len(joined) else math.nan,
                    "diff": test.delta,
                    "ci_lo": test.lo,
                    "ci_hi": test.hi,
                    "p_value": test.p_t,
                    "d_z": paired_test(joined[RKDO], joined[ICON])[1],
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"] = holm(table["p_value"].tolist())
    table["better"] = [
        _better(diff, m.MODE_OF.get(metric, "max")) if p < ALPHA_LEVEL else None
        for diff, metric, p in zip(table["diff"], table["metric"], table["p_holm"], strict=True)
    ]
    return table


def _better(diff: float, mode: str) -> str:
    return RKDO if (diff > 0) == (mode == "max") else ICON


def loss_improvement_pct(*, icon: float, rkdo: float) -> float:
    """The paper's Table 1 measure: 100 * (L_icon - L_rkdo) / L_icon."""
    return 100.0 * (icon - rkdo) / icon if icon else math.nan


def paper_claims(
    seeds: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    probe: str = m.EVAL_LINEAR_ACC,
    verdict_pair: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Per pair: raw final-loss improvement % beside yardstick-loss and probe comparisons.

    Means are over the seeds both trials finished. Improvement % is positive when
    RKDO is lower; `probe_diff` is RKDO - I-Con (positive when RKDO is better).
    `verdict_pair` (the verdict's best RKDO trial and its control) comes first, with
    `compared` = "verdict"; the other pairs follow as "matched".
    """
    ordered = [verdict_pair] if verdict_pair else []
    ordered += [pair for pair in pairs if pair != verdict_pair]
    rows = []
    for rkdo_trial, icon_trial in ordered:
        compared = "verdict" if (rkdo_trial, icon_trial) == verdict_pair else "matched"
        row: dict[str, Any] = {
            "compared": compared,
            "rkdo_trial": rkdo_trial,
            "icon_trial": icon_trial,
        }
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


def _pair_means(
    seeds: pd.DataFrame, rkdo_trial: str, icon_trial: str, metric: str
) -> tuple[float, float]:
    if metric not in seeds.columns:
        return math.nan, math.nan
    joined = paired_values(seeds, rkdo_trial=rkdo_trial, icon_trial=icon_trial, metric=metric)
    if joined.empty:
        return math.nan, math.nan
    return float(joined[RKDO].mean()), float(joined[ICON].mean())
