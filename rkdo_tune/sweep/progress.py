"""Live sweep progress on the driver: one line per report, and a trial table now and then."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from ray import tune

from rkdo_tune.sweep.trial import EPOCH_KEY, STATUS_KEY

TABLE_EVERY_S = 30.0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


class LiveProgress(tune.Callback):
    """Prints each trial's per-epoch metric with the best so far, then a status table."""

    def __init__(self, *, metric: str, mode: str, stream: Any = None) -> None:
        self.metric, self.mode = metric, mode
        self.stream = stream
        self.best: tuple[float, str] | None = None
        self.latest: dict[str, dict[str, Any]] = {}
        self.last_table = time.monotonic()

    def _write(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best[0] if self.mode == "max" else value < self.best[0]

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        value = float(result.get(self.metric, math.nan))
        if math.isfinite(value) and self._better(value):
            self.best = (value, trial.trial_id)
        self.latest[trial.trial_id] = {
            "epoch": result.get(EPOCH_KEY),
            "value": value,
            "status": result.get(STATUS_KEY, ""),
        }
        best = f"{self.best[0]:.4g} ({self.best[1]})" if self.best else "n/a"
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(trial.config.items()))
        self._write(
            f"[{trial.trial_id}] epoch {result.get(EPOCH_KEY)}  {self.metric} "
            f"{_fmt(value)}  best so far {best}  | {params}"
        )
        if time.monotonic() - self.last_table > TABLE_EVERY_S:
            self._table(trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(f"[{trial.trial_id}] ERROR (see {trial.local_path or 'the trial log'})")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._table(trials)

    def _table(self, trials: list) -> None:
        self.last_table = time.monotonic()
        rows = [("trial", "state", "epoch", self.metric, "status")]
        for trial in trials:
            latest = self.latest.get(trial.trial_id, {})
            rows.append(
                (
                    trial.trial_id,
                    trial.status,
                    _fmt(latest.get("epoch", "-")),
                    _fmt(latest.get("value", math.nan)),
                    latest.get("status", ""),
                )
            )
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
        ]
        self._write("\n".join(lines))
