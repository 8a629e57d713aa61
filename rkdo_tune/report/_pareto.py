"""The Pareto view of a multi-objective sweep: the configurations no other one beats on every
objective, judged on seed means, with the control marked.

Built from the report's leaderboard (one row per configuration: seed means, stds and
95% CIs of every metric; the baseline arm's row included), so its numbers are the
leaderboard's. Non-domination itself is `rkdo_tune.pareto`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.efficiency import AUC_RULE
from rkdo_tune.pareto import dominators
from rkdo_tune.report._markdown import mean_std_ci, param_cell, table
from rkdo_tune.report._plots import Figure, plot_pareto

# An objective as the sweep recorded it: (metric name, mode).
Objectives = Sequence[tuple[str, str]]
FRONT_RULE = (
    "A configuration is on the front when no other one is at least as good on every "
    "objective and better on one, judged on the seed means (equal means tie, and both stay)"
)


@dataclass(frozen=True)
class ParetoView:
    lines: list[str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pareto_frame(board: pd.DataFrame, objectives: Objectives, *, control: str) -> pd.DataFrame:
    """The leaderboard's rows with a finite mean of every objective, plus `on_front`,
    `dominated_by` (trial ids) and `control` (the verdict's control, to be marked)."""
    means = [f"{name} mean" for name, _ in objectives]
    if board.empty or any(c not in board.columns for c in means):
        return board.iloc[:0].assign(on_front=[], dominated_by=[], control=[])
    finite = np.isfinite(board[means].to_numpy(dtype=float)).all(axis=1)
    rows = board[finite].reset_index(drop=True)
    by = dominators(rows[means].astype(float).to_numpy().tolist(), [mo for _, mo in objectives])
    ids = list(rows["trial_id"].astype(str))
    return rows.assign(
        on_front=[not found for found in by],
        dominated_by=[", ".join(ids[j] for j in found) for found in by],
        control=[trial_id == control for trial_id in ids],
    )


def _control_line(frame: pd.DataFrame, control: str) -> str:
    row = frame[frame["control"]]
    if not control:
        return "There is no I-Con control in this sweep to place against the front."
    if row.empty:
        return f"The control (trial {control}) has no finite mean of every objective."
    found = str(row["dominated_by"].iloc[0])
    if not found:
        return f"The I-Con control (trial {control}) is on the front: no configuration beats it."
    count = len(found.split(", "))
    return f"The I-Con control (trial {control}) is dominated by {count} configuration(s): {found}."


def _rows(frame: pd.DataFrame, objectives: Objectives, params: Sequence[str]) -> list[list[str]]:
    first, mode = objectives[0]
    front = frame[frame["on_front"]]
    front = front.sort_values(f"{first} mean", ascending=mode == "min", kind="stable")
    return [
        [
            f"{r['trial_id']}{' (control)' if r['control'] else ''}",
            param_cell(r.get("objective")),
            *(param_cell(r.get(p)) for p in params),
            str(r["n_seeds"]),
            *(mean_std_ci(r, name) for name, _ in objectives),
        ]
        for _, r in front.iterrows()
    ]


def pareto_view(
    board: pd.DataFrame,
    objectives: Objectives,
    *,
    control: str,
    params: Sequence[str],
    out_dir: Path,
) -> ParetoView:
    """The report's Pareto section, its figure and `pareto_front.csv` in `out_dir`."""
    frame = pareto_frame(board, objectives, control=control)
    frame.to_csv(out_dir / "pareto_front.csv", index=False)
    listed = ", ".join(f"{name} ({mode})" for name, mode in objectives)
    lines = ["## Accuracy against compute: the Pareto front", ""]
    lines += [f"The search optimised {len(objectives)} objectives: {listed}. {FRONT_RULE}."]
    if any(name == m.EVAL_LINEAR_ACC_AUC for name, _ in objectives):
        lines += ["", f"{AUC_RULE}."]
    if frame.empty:
        return ParetoView([*lines, "", "No configuration has a finite mean of every objective."])
    shown = [p for p in params if p != "objective" and p in frame.columns]
    header = ["trial", "objective", *shown, "seeds"]
    header += [f"{name} (mean ± std [95% CI])" for name, _ in objectives]
    lines += ["", table(header, _rows(frame, objectives, shown)), ""]
    lines += [_control_line(frame, control), ""]
    left_out = len(board) - len(frame)
    missing = f"; {left_out} configuration(s) with a non-finite mean are left out" * bool(left_out)
    lines.append(
        f"{int(frame['on_front'].sum())} of {len(frame)} configurations are on the front. "
        f"One off it by less than the CIs' width is not shown to be worse{missing}."
    )
    figures, notes = plot_pareto(frame, objectives, out_dir=out_dir)
    return ParetoView(lines, figures, notes)
