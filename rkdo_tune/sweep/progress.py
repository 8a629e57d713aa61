"""Live sweep progress on the driver: one line per report, a trial table now and then, and
a one-line summary (`_progress_line`): a tqdm bar on a terminal, plain lines otherwise, as
Ray's own reporter does."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray import tune
from ray.tune.experiment import Trial
from tqdm import tqdm

from rkdo_tune import metrics as m
from rkdo_tune.console import MISSING, format_table, format_value
from rkdo_tune.sweep._progress_line import (
    ProgressCounts,
    ProgressTotals,
    status_cell,
    summary_line,
)
from rkdo_tune.sweep.protocol import EPOCH_KEY, STATUS_KEY, split_markers
from rkdo_tune.verdict import STAGE_SEARCH

TABLE_EVERY_S = 30.0


class LiveProgress(tune.Callback):
    """Prints each trial's per-epoch metric with the best so far, a status table and a summary.

    stream: where to write (stdout by default); a terminal gets a tqdm bar for the summary.
    totals: the sweep's size, for the summary (none: no summary).
    """

    def __init__(
        self,
        *,
        metric: str,
        mode: str,
        stream: TextIO | None = None,
        totals: ProgressTotals | None = None,
    ) -> None:
        self.metric, self.mode = metric, mode
        self.stream = stream
        self.totals = totals
        self.counts = ProgressCounts()
        self.best: tuple[float, str] | None = None
        self.latest: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.last_table = self.started
        self.bar: tqdm | None = None

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self._out())
        else:
            print(text, file=self._out(), flush=True)

    def _summary(self, *, line: bool) -> None:
        """Refresh the bar on a terminal; elsewhere print the summary when `line`."""
        if self.totals is None:
            return
        elapsed = time.monotonic() - self.started
        text = summary_line(self.totals, self.counts, elapsed)
        if self.bar is None and self._out().isatty():
            total = self.totals.total_configurations * self.totals.epochs
            self.bar = tqdm(total=total, unit="epoch", file=self._out(), dynamic_ncols=True)
        if self.bar is not None:
            self.bar.set_description_str(text.rsplit(" · elapsed", 1)[0], refresh=False)
            self.bar.update(self.counts.work_done(self.totals) - self.bar.n)
            self.bar.refresh()
        elif line:
            self._write(f"progress: {text}")

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
        self._count_restored(trials)
        value = float(result.get(self.metric, math.nan))
        role, values = split_markers(trial.config or {})
        ranked = not role.is_baseline and role.stage == STAGE_SEARCH  # what "best" ranks
        if ranked and math.isfinite(value) and self._better(value):
            self.best = (value, trial.trial_id)
        self.latest[trial.trial_id] = {
            "epoch": result.get(EPOCH_KEY),
            "value": value,
            # Only the final report (the one with diag/*) says how the trial ended.
            "final": result.get(STATUS_KEY) if m.DIAG_STEPS in result else None,
        }
        self.counts.epochs[trial.trial_id] = int(result.get(EPOCH_KEY) or 0)
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
            self._summary(line=True)
        else:
            self._summary(line=False)

    def _count_restored(self, trials: list[Trial]) -> None:
        """Trials a resumed sweep restored already ended: Tune reports no end for them."""
        for trial in trials:
            seen = trial.trial_id in self.counts.ended or trial.trial_id in self.latest
            if trial.status in (Trial.TERMINATED, Trial.ERROR) and not seen:
                failed = trial.status == Trial.ERROR
                self.counts.end(trial.trial_id, _stage(trial), failed=failed)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.counts.end(trial.trial_id, _stage(trial))
        self._summary(line=True)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.counts.end(trial.trial_id, _stage(trial), failed=True)
        self._write(f"[{trial.trial_id}] ERROR (see {_folder(trial)})")
        self._summary(line=True)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._table(trials)
        if self.bar is not None:
            self.bar.close()
            self.bar = None

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
                    status_cell(trial.status, latest.get("final")),
                )
            )
        self._write(format_table(rows))


def _folder(trial: Trial) -> str:
    """The trial's folder on the driver; a trial without storage (restored, a stub) has none."""
    try:
        return trial.local_path or "the trial log"
    except (AttributeError, RuntimeError, AssertionError):
        return "the trial log"


def _stage(trial: Trial) -> str:
    return split_markers(trial.config or {})[0].stage
