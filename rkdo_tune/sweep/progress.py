"""Live sweep progress on the driver: one line per report, and a trial table now and then."""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ray import tune

from rkdo_tune.console import MISSING, format_table, format_value
from rkdo_tune.sweep.protocol import EPOCH_KEY, STATUS_KEY, split_markers
from rkdo_tune.verdict import STAGE_SEARCH

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

TABLE_EVERY_S = 30.0


class LiveProgress(tune.Callback):
    """Prints each trial's per-epoch metric with the best so far, then a status table."""

    def __init__(self, *, metric: str, mode: str, stream: TextIO | None = None) -> None:
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
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        value = float(result.get(self.metric, math.nan))
        role, values = split_markers(trial.config or {})
        ranked = not role.is_baseline and role.stage == STAGE_SEARCH  # what "best" ranks
        if ranked and math.isfinite(value) and self._better(value):
            self.best = (value, trial.trial_id)
        self.latest[trial.trial_id] = {
            "epoch": result.get(EPOCH_KEY),
            "value": value,
            "status": result.get(STATUS_KEY, ""),
        }
        best = f"{format_value(self.best[0])} ({self.best[1]})" if self.best else MISSING
        params = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(values.items()))
        if role.is_baseline or role.stage != STAGE_SEARCH:
            params = f"{role.arm}, {role.stage}: {params}"
        self._write(
            f"[{trial.trial_id}] epoch {result.get(EPOCH_KEY)}  {self.metric} "
            f"{format_value(value)}  best so far {best}  | {params}"
        )
        if time.monotonic() - self.last_table > TABLE_EVERY_S:
            self._table(trials)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._write(f"[{trial.trial_id}] ERROR (see {trial.local_path or 'the trial log'})")

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._table(trials)

    def _table(self, trials: list[Trial]) -> None:
        self.last_table = time.monotonic()
        rows = [("trial", "state", "epoch", self.metric, "status")]
        for trial in trials:
            latest = self.latest.get(trial.trial_id, {})
            rows.append(
                (
                    trial.trial_id,
                    trial.status,
                    format_value(latest.get("epoch", "-")),
                    format_value(latest.get("value", math.nan)),
                    latest.get("status", ""),
                )
            )
        self._write(format_table(rows))
