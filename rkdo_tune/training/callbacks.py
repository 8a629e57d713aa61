"""What the trainer tells the outside world while it runs, and what it returns.

The trainer knows nothing about Ray, MLflow or the terminal: the sweep and
CLI layers subclass `TrainCallback` to report, checkpoint or draw progress.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rkdo_tune.config import TrialConfig

STATUS_COMPLETED = "completed"
STATUS_EARLY_STOPPED = "early_stopped"
STATUS_DIVERGED = "diverged"
STATUS_STOPPED = "stopped"  # asked to stop by a callback (e.g. a scheduler)


@dataclass
class History:
    """Per-step and per-evaluation records of one run (plain lists, checkpointable)."""

    steps: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=dict)

    def add_step(self, step: int, metrics: dict[str, float]) -> None:
        self.steps.append(step)
        for key, value in metrics.items():
            self.train.setdefault(key, []).append(value)

    def add_eval(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        """Record one evaluation. Every list in `evals` stays aligned with `eval_steps`: a
        key absent at an evaluation (the extra probes run at the last one only) is NaN there.
        """
        earlier = len(self.eval_steps)
        self.eval_steps.append(step)
        self.eval_epochs.append(epoch)
        for key, value in metrics.items():
            self.evals.setdefault(key, [math.nan] * earlier).append(value)
        for values in self.evals.values():
            if len(values) == earlier:
                values.append(math.nan)

    def until(self, step: int) -> History:
        """The records up to `step` (inclusive): what a run that ended there would hold."""
        kept = sum(1 for at in self.steps if at <= step)
        evals = sum(1 for at in self.eval_steps if at <= step)
        return History(
            steps=self.steps[:kept],
            train={k: v[:kept] for k, v in self.train.items()},
            eval_steps=self.eval_steps[:evals],
            eval_epochs=self.eval_epochs[:evals],
            evals={k: v[:evals] for k, v in self.evals.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "train": {k: list(v) for k, v in self.train.items()},
            "eval_steps": list(self.eval_steps),
            "eval_epochs": list(self.eval_epochs),
            "evals": {k: list(v) for k, v in self.evals.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(
            steps=list(data["steps"]),
            train={k: list(v) for k, v in data["train"].items()},
            eval_steps=list(data["eval_steps"]),
            eval_epochs=list(data["eval_epochs"]),
            evals={k: list(v) for k, v in data["evals"].items()},
        )


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one run: status, final metrics (eval + diag) and the history.

    `budgets`: a run with budget points inside it (issue 13 §3) holds, for each budget
    of k epochs short of its own, the result of that k-epoch run: its config with
    `epochs=k`, the history up to there and the complete evaluation made there.
    """

    config: TrialConfig
    status: str
    metrics: dict[str, float]
    history: History
    steps: int
    epochs_completed: int
    device: str
    wall_seconds: float
    reason: str = ""
    budgets: dict[int, TrainResult] = field(default_factory=dict)


class TrainCallback:
    """Hooks the trainer calls; override what you need. All default to doing nothing."""

    def on_start(self, *, config: TrialConfig, total_steps: int, start_step: int) -> None:
        """Before the first step (after a resume, start_step > 0)."""

    def on_step(self, *, step: int, metrics: dict[str, float]) -> None:
        """After each logged optimiser step, with host-side train/* metrics."""

    def on_eval(
        self,
        *,
        step: int,
        epoch: int,
        metrics: dict[str, float],
        save_checkpoint: Callable[[str | Path], Path],
    ) -> bool:
        """After each evaluation. Return True to stop training (e.g. a scheduler said so)."""
        return False

    def on_end(self, *, result: TrainResult) -> None:
        """After the run, whatever its status."""


class CallbackList(TrainCallback):
    """Fan one event out to several callbacks."""

    def __init__(self, callbacks: list[TrainCallback]) -> None:
        self.callbacks = list(callbacks)

    def on_start(self, **kwargs: Any) -> None:
        for callback in self.callbacks:
            callback.on_start(**kwargs)

    def on_step(self, **kwargs: Any) -> None:
        for callback in self.callbacks:
            callback.on_step(**kwargs)

    def on_eval(self, **kwargs: Any) -> bool:
        stops = [callback.on_eval(**kwargs) for callback in self.callbacks]
        return any(stops)

    def on_end(self, **kwargs: Any) -> None:
        for callback in self.callbacks:
            callback.on_end(**kwargs)


class CheckpointEveryEval(TrainCallback):
    """Save the full trainer state into `directory` after every evaluation."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def on_eval(
        self,
        *,
        step: int,
        epoch: int,
        metrics: dict[str, float],
        save_checkpoint: Callable[[str | Path], Path],
    ) -> bool:
        save_checkpoint(self.directory)
        return False
