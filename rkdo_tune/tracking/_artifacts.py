"""A trial run's own artifacts: the seed-mean learning curve (PNG) and the per-seed table (CSV).

Both come from the trial's Tune reports, which carry every seed's value at each
evaluation, so a trial that a scheduler stopped early gets them too; with
them, the MLflow UI's Compare view has something to put side by side.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rkdo_tune import metrics as m
from rkdo_tune.plots import seed_mean_curve_figure
from rkdo_tune.sweep.protocol import REPORTED_METRICS, STEP_KEY, seed_key
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import MlflowClient


@dataclass(frozen=True)
class SeedRow:
    """What the per-seed table says of one seed besides its values (no run id: a trial's
    writes may still be queued, with placeholder ids, when the table is written)."""

    seed: int
    status: str


@dataclass
class ReportCurves:
    """Each seed's value of each reported metric at each report step, in report order."""

    seeds: tuple[int, ...]
    steps: list[int] = field(default_factory=list)
    values: dict[str, list[list[float]]] = field(default_factory=dict)  # key -> (S, E)

    def add(self, report: Mapping[str, Any]) -> None:
        """Record one report; a step already recorded (the final report repeats it) is skipped."""
        step = int(report[STEP_KEY])
        if step in self.steps:
            return
        self.steps.append(step)
        for key in REPORTED_METRICS:
            per_seed = self.values.setdefault(key, [[] for _ in self.seeds])
            for column, seed in zip(per_seed, self.seeds, strict=True):
                column.append(_number(report.get(seed_key(seed, key))))

    def until(self, step: int) -> ReportCurves:
        """The reports up to `step` (inclusive): a budget point's own curves."""
        kept = sum(1 for at in self.steps if at <= step)
        values = {k: [column[:kept] for column in v] for k, v in self.values.items()}
        return ReportCurves(seeds=self.seeds, steps=self.steps[:kept], values=values)

    def figure_panels(self, metric: str) -> list[tuple[str, list[list[float]]]]:
        keys = [metric, m.TRAIN_EPOCH_LOSS] if metric != m.TRAIN_EPOCH_LOSS else [metric]
        return [(key, self.values[key]) for key in keys if key in self.values]


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def per_seed_csv(rows: Sequence[SeedRow], report: Mapping[str, Any]) -> str:
    """One row per seed: seed, status, then its final value of every metric reported."""
    keys = [k for k in (*REPORTED_METRICS, *m.DIAG_METRICS) if seed_key(rows[0].seed, k) in report]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seed", "status", *keys])
    for row in rows:
        values = [_number(report.get(seed_key(row.seed, key))) for key in keys]
        writer.writerow([row.seed, row.status, *(f"{v:.6g}" for v in values)])
    return out.getvalue()


def log_trial_artifacts(
    client: MlflowClient,
    run_id: str,
    *,
    curves: ReportCurves,
    rows: Sequence[SeedRow],
    report: Mapping[str, Any],
    metric: str,
    title: str,
) -> None:
    """plots/seed_mean_curve.png and tables/per_seed.csv on the trial run."""
    if not rows or not curves.steps:
        return
    figure = seed_mean_curve_figure(
        steps=curves.steps, panels=curves.figure_panels(metric), title=title
    )
    client.log_figure(run_id, figure, lay.ARTIFACT_TRIAL_CURVE)
    client.log_text(run_id, per_seed_csv(rows, report), lay.ARTIFACT_SEED_TABLE)
