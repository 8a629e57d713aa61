"""The seed run: one training run of one repeat seed, logged through the trainer's callback.

Step metrics are buffered and sent with one `log_batch` per evaluation and at
the end, never one request per step, and only at a stride that keeps at most
`layout.DEFAULT_STEP_POINTS` points per key (`step_stride`): MLflow's per-step
rows were the main cost of long trials. Every step stays in the run's
`metrics/history.json`. A run restored from a checkpoint also sends the history
before its restart, so the new run holds the whole curve.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.plots import loss_curve_figure
from rkdo_tune.redaction import scrub
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import (
    FAILED,
    FINISHED,
    Metric,
    MlflowClient,
    create_run,
    finite_metric,
    log_metrics,
    log_params,
    make_metric,
    now_ms,
    set_tags,
)
from rkdo_tune.training.callbacks import History, TrainCallback, TrainResult

STEP_METRICS = tuple(key for key in m.TRAIN_METRICS if key != m.TRAIN_EPOCH_LOSS)


def run_title(config: TrialConfig) -> str:
    return f"{config.objective}  alpha={config.alpha:g}  seed={config.seed}"


def step_stride(total_steps: int, max_points: int) -> int:
    """Every how many steps a per-step metric is sent: at most `max_points` (0: every step)."""
    if max_points <= 0 or total_steps <= max_points:
        return 1
    return math.ceil(total_steps / max_points)


def on_stride(step: int, *, stride: int, total_steps: int) -> bool:
    """Whether `step` is sent: the first, every `stride`-th and the last step."""
    return stride == 1 or step == 1 or step % stride == 0 or step == total_steps


def _json_safe(value: Any) -> Any:
    """Non-finite floats as null, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def history_document(result: TrainResult) -> dict[str, Any]:
    """metrics/history.json: the History, the final metrics and how the run ended."""
    return _json_safe(
        {
            **result.history.to_dict(),
            "final_metrics": dict(result.metrics),
            "status": result.status,
            "reason": result.reason,
            "steps_completed": result.steps,
            "epochs_completed": result.epochs_completed,
        }
    )


def metrics_before(
    history: History, step: int, *, stride: int = 1, total_steps: int = 0
) -> list[Metric]:
    """Step and eval metrics of `history` up to `step` (inclusive): what a restored run missed."""
    stamp = now_ms()
    metrics: list[Metric] = []
    for index, at in enumerate(history.steps):
        if at <= step and on_stride(at, stride=stride, total_steps=total_steps):
            for key in STEP_METRICS:
                values = history.train.get(key, [])
                entry = (
                    finite_metric(key, values[index], at, stamp) if index < len(values) else None
                )
                metrics += [entry] if entry is not None else []
    for index, at in enumerate(history.eval_steps):
        if at <= step:
            entries = [
                finite_metric(key, values[index], at, stamp)
                for key, values in history.evals.items()
                if index < len(values)
            ]  # NaN: a key this evaluation did not compute
            metrics += [entry for entry in entries if entry is not None]
    return metrics


def _early_stop_tag(value: float | None) -> str:
    """The step as text; "none" when the loss never flattened (diag value -1) or is unknown."""
    return str(int(value)) if value is not None and math.isfinite(value) and value >= 0 else "none"


class SeedRunLogger(TrainCallback):
    """Logs one seed's training into its own MLflow run (nested under the trial run)."""

    def __init__(
        self,
        *,
        client: MlflowClient,
        run_id: str,
        config: TrialConfig,
        step_points: int = lay.DEFAULT_STEP_POINTS,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.config = config
        self.buffer: list[Metric] = []
        self.start_step = 0
        self.step_points = step_points
        self.stride, self.total_steps = 1, 0
        self.status = lay.STATUS_RUNNING
        self.ended = False
        self.result: TrainResult | None = None  # once the run ended: its budget points

    @classmethod
    def open(
        cls,
        client: MlflowClient,
        *,
        experiment_id: str,
        trial_run_id: str,
        config: TrialConfig,
        tags: Mapping[str, str],
        run_name: str,
        params: Mapping[str, Any],
        step_points: int = lay.DEFAULT_STEP_POINTS,
    ) -> SeedRunLogger:
        """Create the seed run (tags, the trial's searched values and the seed) and its logger."""
        run_id = create_run(
            client,
            experiment_id=experiment_id,
            run_name=run_name,
            tags={
                **tags,
                lay.TAG_PARENT: trial_run_id,
                lay.TAG_ROLE: lay.ROLE_SEED,
                lay.TAG_SEED: str(config.seed),
                lay.TAG_STATUS: lay.STATUS_RUNNING,
            },
        )
        log_params(client, run_id, {**params, lay.PARAM_SEED: config.seed})
        return cls(client=client, run_id=run_id, config=config, step_points=step_points)

    def flush(self) -> None:
        pending, self.buffer = self.buffer, []
        log_metrics(self.client, self.run_id, pending)

    # ----- TrainCallback ----------------------------------------------------------------
    def on_start(self, *, config: TrialConfig, total_steps: int, start_step: int) -> None:
        self.start_step = start_step
        self.total_steps = total_steps
        self.stride = step_stride(total_steps, self.step_points)

    def on_step(self, *, step: int, metrics: dict[str, float]) -> None:
        if not on_stride(step, stride=self.stride, total_steps=self.total_steps):
            return
        stamp = now_ms()
        for key in STEP_METRICS:
            entry = finite_metric(key, metrics.get(key), step, stamp)
            if entry is not None:
                self.buffer.append(entry)

    def on_eval(
        self,
        *,
        step: int,
        epoch: int,
        metrics: dict[str, float],
        save_checkpoint: Callable[[str | Path], Path],
    ) -> bool:
        stamp = now_ms()
        self.buffer += [make_metric(key, value, step, stamp) for key, value in metrics.items()]
        self.flush()
        return False

    def on_end(self, *, result: TrainResult) -> None:
        if self.start_step > 0:
            earlier = metrics_before(
                result.history, self.start_step, stride=self.stride, total_steps=self.total_steps
            )
            self.buffer = earlier + self.buffer
        stamp = now_ms()
        diag = {k: v for k, v in result.metrics.items() if k.startswith("diag/")}
        self.buffer += [make_metric(k, v, result.steps, stamp) for k, v in diag.items()]
        self.flush()
        early_stop = diag.get(m.DIAG_EARLY_STOP_STEP)
        set_tags(
            self.client,
            self.run_id,
            {
                lay.TAG_STATUS: result.status,
                lay.TAG_REASON: result.reason,
                lay.TAG_OVERSPECIALIZED: str(diag.get(m.DIAG_OVERSPECIALIZED) == 1.0).lower(),
                lay.TAG_EARLY_STOP_STEP: _early_stop_tag(early_stop),
            },
        )
        self._log_artifacts(result, early_stop)
        self.client.set_terminated(self.run_id, status=FINISHED)
        self.status = result.status
        self.ended = True
        self.result = result

    def log_budget_point(
        self,
        epochs: int,
        *,
        experiment_id: str,
        trial_run_id: str,
        tags: Mapping[str, str],
        run_name: str,
        params: Mapping[str, Any],
    ) -> None:
        """This seed's k-epoch run (k = `epochs`, a budget point of its run) as a seed run of
        the budget point's trial run: its history up to there, its evaluation and diagnostics."""
        point = self.result.budgets.get(epochs) if self.result is not None else None
        if point is None:
            return
        logger = SeedRunLogger.open(
            self.client,
            experiment_id=experiment_id,
            trial_run_id=trial_run_id,
            config=point.config,
            tags=tags,
            run_name=run_name,
            params=params,
            step_points=self.step_points,
        )
        total = point.config.epochs * max(1, self.total_steps // max(1, self.config.epochs))
        logger.on_start(config=point.config, total_steps=total, start_step=point.steps)
        logger.on_end(result=point)  # start_step: the whole history is sent as restored

    # ----- failure --------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """End the run FAILED (the trial raised before this seed finished)."""
        if self.ended:
            return
        self.ended = True
        self.status = lay.STATUS_FAILED
        self.flush()
        set_tags(
            self.client, self.run_id, {lay.TAG_STATUS: lay.STATUS_FAILED, lay.TAG_REASON: reason}
        )
        self.client.set_terminated(self.run_id, status=FAILED)

    def _log_artifacts(self, result: TrainResult, early_stop: float | None) -> None:
        history = result.history
        figure = loss_curve_figure(
            steps=history.steps,
            losses=history.train.get(m.TRAIN_LOSS, []),
            slopes=history.train.get(m.TRAIN_LOSS_SLOPE, []),
            early_stop_step=early_stop,
            title=run_title(self.config),
            slope_window=self.config.slope_window,
        )
        self.client.log_figure(self.run_id, figure, lay.ARTIFACT_LOSS_CURVE)
        text = json.dumps(history_document(result), indent=1, allow_nan=False)
        self.client.log_text(self.run_id, scrub(text), lay.ARTIFACT_HISTORY)
