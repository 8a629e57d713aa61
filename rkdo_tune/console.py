"""Terminal presentation of a training run: a progress bar, a metrics table, a JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from rkdo_tune import metrics as m
from rkdo_tune.protocols import PROTOCOL_VERSION
from rkdo_tune.training.callbacks import TrainCallback, TrainResult

MISSING = "n/a"  # how a NaN reads in every terminal table: train, sweep progress, leaderboard


def format_value(value: object) -> str:
    """One table cell: a float to 4 significant digits (NaN as `MISSING`), else `str`."""
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns two spaces apart, trailing blanks stripped; `rows[0]` is the header."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


class ProgressBar(TrainCallback):
    """A tqdm bar over optimiser steps, with the loss and the latest eval score."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_start(self, *, config: Any, total_steps: int, start_step: int) -> None:
        label = f"{config.objective} {config.dataset}"
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            desc=label,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )

    def on_step(self, *, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{metrics[m.TRAIN_LOSS]:.4f}", refresh=False)

    def on_eval(self, *, step: int, epoch: int, metrics: dict[str, float], **_: Any) -> bool:
        if self.bar is not None:
            self.bar.write(
                f"epoch {epoch} step {step}: linear_acc {metrics[m.EVAL_LINEAR_ACC]:.4f}  "
                f"knn_acc {metrics[m.EVAL_KNN_ACC]:.4f}  "
                f"yardstick {metrics[m.EVAL_YARDSTICK_LOSS]:.4f}"
            )
        return False

    def on_end(self, *, result: TrainResult) -> None:
        if self.bar is not None:
            self.bar.close()


def _format(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4f}"


def format_metrics_table(metrics: dict[str, float]) -> str:
    """Two aligned columns, metrics in the order of the shared vocabulary."""
    ordered = [key for key in m.ALL_METRICS if key in metrics]
    ordered += sorted(key for key in metrics if key not in ordered)
    width = max(len(key) for key in ordered) if ordered else 0
    return "\n".join(f"{key:<{width}}  {_format(metrics[key])}" for key in ordered)


def print_result(result: TrainResult) -> None:
    c = result.config
    click.echo(
        f"{c.objective} on {c.dataset} ({c.model}), seed {c.seed}: {result.status} after "
        f"{result.steps} steps / {result.epochs_completed} epochs on {result.device} "
        f"in {result.wall_seconds:.1f}s"
    )
    if result.reason:
        click.echo(f"reason: {result.reason}")
    click.echo(format_metrics_table(result.metrics))


def result_to_dict(result: TrainResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "reason": result.reason,
        "steps": result.steps,
        "epochs_completed": result.epochs_completed,
        "device": result.device,
        "wall_seconds": result.wall_seconds,
        "protocol_version": PROTOCOL_VERSION,
        "config": result.config.to_dict(),
        "metrics": result.metrics,
        "history": result.history.to_dict(),
    }


def write_result_json(result: TrainResult, path: Path) -> None:
    """JSON with NaN written as null, so any JSON reader can load it."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(result_to_dict(result)), indent=2))
