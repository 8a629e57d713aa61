"""The one training loop that serves both RKDO and I-Con.

Data lives on the training device as uint8; both views are augmented in one
batched call per step; the loss comes from the objectives registry through
`BoundObjective`. Host-side reads of metrics happen every `log_every` steps,
so a CUDA run does not sync on every step. A non-finite loss ends the run
as "diverged" instead of raising.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import ImageData, augmentation_for, two_views
from rkdo_tune.diagnostics import early_stop_step, loss_slopes
from rkdo_tune.efficiency import curve_scores
from rkdo_tune.errors import UsageError
from rkdo_tune.evaluation import EvalSettings, evaluate, last_only_metrics
from rkdo_tune.models import build_model
from rkdo_tune.schedules import AlphaSchedule, temperature_at
from rkdo_tune.training.callbacks import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    STATUS_EARLY_STOPPED,
    STATUS_STOPPED,
    History,
    TrainCallback,
    TrainResult,
)
from rkdo_tune.training.checkpoint import load_state, save_state
from rkdo_tune.training.objective import BoundObjective
from rkdo_tune.training.run_setup import (
    TEMPORAL_BANK_STREAM,
    check_budget_epochs,
    load_data,
    resolve_device,
    schedules_reading_total,
    seed_everything,
    stream_seed,
)
from rkdo_tune.training.summary import budget_result, summarize_run


class Trainer:
    """One run of one config. Build it, then call `run()` once.

    `budget_epochs`: budget points (issue 13 §3); the result carries each k-epoch run's
    result (`TrainResult.budgets`). Where the first k epochs of this run are that run (no
    schedule reads the total budget), the run makes at the end of epoch k the complete
    evaluation a k-epoch run ends with, and the point is read off it; otherwise each
    point is trained after this run as a run of its own (`schedules_reading_total`).
    """

    def __init__(
        self,
        config: TrialConfig,
        *,
        callback: TrainCallback | None = None,
        data: ImageData | None = None,
        budget_epochs: Sequence[int] = (),
    ) -> None:
        self.config = config
        self.budget_epochs = check_budget_epochs(budget_epochs, epochs=config.epochs)
        self.budgets_separately = bool(schedules_reading_total(config))
        self._budget_seconds: dict[int, float] = {}
        self.callback = callback or TrainCallback()
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        raw = data if data is not None else load_data(config)
        self.data = raw.to(self.device)
        self.augment_spec = augmentation_for(
            config.dataset, image_size=self.data.image_size, channels=self.data.channels
        )
        self.model = self._build_model()
        self.forward_model = torch.compile(self.model) if config.compile else self.model
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        num_train = int(self.data.train_labels.shape[0])
        if config.batch_size > num_train:
            raise UsageError(
                f"key 'batch_size' has value {config.batch_size}, but {config.dataset} has only "
                f"{num_train} training images"
            )
        self.steps_per_epoch = config.steps_per_epoch or max(1, num_train // config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.alpha_schedule = AlphaSchedule(
            kind=config.alpha_schedule,
            alpha0=config.alpha,
            alpha_min=config.alpha_min,
            total_steps=self.total_steps,
            decay_factor=config.alpha_decay_factor,
            step_every=config.alpha_step_every,
            patience=config.alpha_patience,
            plateau_threshold=config.early_stop_threshold,
        )
        self.objective = BoundObjective(config, num_samples=num_train, device=self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.eval_settings = EvalSettings.from_config(config)
        self.history = History()
        self.step = 0
        self.epoch = 0
        self.status, self.reason = STATUS_COMPLETED, ""
        self._started = time.perf_counter()

    def _build_model(self) -> torch.nn.Module:
        c = self.config
        model = build_model(
            c.model,
            in_channels=self.data.channels,
            head_hidden=c.head_hidden,
            head_dim=c.head_dim,
            head_batchnorm=c.head_batchnorm,
        ).to(self.device)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    # ----- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "alpha_schedule": self.alpha_schedule.state_dict(),
            "objective": self.objective.state_dict(),
            "history": self.history.to_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.alpha_schedule.load_state_dict(state["alpha_schedule"])
        self.objective.load_state_dict(state["objective"])
        self.history = History.from_dict(state["history"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])

    def save_checkpoint(self, directory: Any) -> Any:
        return save_state(self.state_dict(), directory)

    def restore(self, directory: Any) -> bool:
        """Load a checkpoint from `directory` if a usable one is there."""
        state = load_state(directory)
        if state is None:
            return False
        self.load_state_dict(state)
        return True

    # ----- the loop ----------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train every remaining epoch and return the result."""
        self.start()
        while self.run_epoch():
            pass
        return self.finish()

    def start(self) -> None:
        """Announce the run and prepare state that needs the model (temporal bank)."""
        self._started = time.perf_counter()
        self.callback.on_start(
            config=self.config, total_steps=self.total_steps, start_step=self.step
        )
        self._init_temporal_bank()

    def run_epoch(self) -> bool:
        """Train one epoch (and evaluate if due). True while more epochs should follow.

        Multi-seed sweeps drive several trainers in lockstep through this.
        """
        if self.status != STATUS_COMPLETED or self.epoch >= self.config.epochs:
            return False
        self.status, self.reason = self._run_epoch()
        return self.status == STATUS_COMPLETED and self.epoch < self.config.epochs

    def finish(self) -> TrainResult:
        """Summarise the run (diagnostics and budget points included); tell the callback."""
        result = summarize_run(
            config=self.config,
            history=self.history,
            status=self.status,
            reason=self.reason,
            steps=self.step,
            epochs_completed=self.epoch,
            device=str(self.device),
            wall_seconds=time.perf_counter() - self._started,
        )
        result = dataclasses.replace(result, budgets=self._budget_results(result))
        self.callback.on_end(result=result)
        return result

    def _budget_results(self, result: TrainResult) -> dict[int, TrainResult]:
        """Each budget point's k-epoch run: read off this run, or, when a schedule reads the
        total budget, trained now as a run of its own (same seed, same data)."""
        if self.budgets_separately:
            return {
                k: Trainer(dataclasses.replace(self.config, epochs=k), data=self.data).run()
                for k in self.budget_epochs
            }
        return {
            k: budget_result(
                result,
                epochs=k,
                steps_per_epoch=self.steps_per_epoch,
                wall_seconds=self._budget_seconds.get(k),
            )
            for k in self.budget_epochs
        }

    def _run_epoch(self) -> tuple[str, str]:
        """One epoch of steps, then an evaluation if due. Returns (status, reason)."""
        self.model.train()
        batches = self._epoch_batches()
        pending: list[dict[str, Tensor]] = []
        tick = time.perf_counter()
        for position, batch_indices in enumerate(batches, start=1):
            pending.append(self._train_step(batch_indices))
            self.step += 1
            mid_epoch_eval = self._step_eval_due() and position < len(batches)
            if len(pending) >= self.config.log_every or position == len(batches) or mid_epoch_eval:
                status, reason = self._flush(pending, time.perf_counter() - tick)
                pending, tick = [], time.perf_counter()
                if status == STATUS_COMPLETED and mid_epoch_eval:
                    status, reason = self._evaluate()
                if status != STATUS_COMPLETED:
                    return self._finish_early(status, reason)
        self.epoch += 1
        if self._eval_due() or self._step_eval_due():
            return self._evaluate()
        return STATUS_COMPLETED, ""

    def _finish_early(self, status: str, reason: str) -> tuple[str, str]:
        if status == STATUS_EARLY_STOPPED:
            self.epoch += 1
            self._evaluate(last=True)
        return status, reason

    def _eval_due(self) -> bool:
        c = self.config
        return self.epoch % c.eval_every == 0 or self.epoch >= c.epochs or self._at_budget()

    def _at_budget(self) -> bool:
        """The end of a budget point's last epoch: its k-epoch run would end here."""
        if self.budgets_separately:
            return False
        return any(self.step == k * self.steps_per_epoch for k in self.budget_epochs)

    def _step_eval_due(self) -> bool:
        """An evaluation point set by steps (`eval_every_steps`), mid-epoch or not."""
        every = self.config.eval_every_steps
        return every is not None and self.step % every == 0

    def _epoch_batches(self) -> list[Tensor]:
        """steps_per_epoch index batches, (B,) each, from fresh permutations (drop_last)."""
        n = int(self.data.train_labels.shape[0])
        b = self.config.batch_size
        per_permutation = n // b
        count = math.ceil(self.steps_per_epoch / per_permutation)
        perms = [
            torch.randperm(n, generator=self.generator, device=self.device)[: per_permutation * b]
            for _ in range(count)
        ]
        return list(torch.cat(perms).view(-1, b)[: self.steps_per_epoch])

    def _train_step(self, indices: Tensor) -> dict[str, Tensor]:
        """One optimiser step on the batch `indices` (B,). Returns device-side scalars."""
        c = self.config
        alpha = self.alpha_schedule.value(self.step)
        tau = temperature_at(
            self.step, self.total_steps, kind=c.tau_schedule, tau0=c.tau, beta=c.beta
        )
        view1, view2 = two_views(self.data.train_images[indices], self.augment_spec, self.generator)
        if self.device.type == "cuda":
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        autocast = self.device.type == "cuda" and c.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
            z1 = self.forward_model(view1)
            z2 = self.forward_model(view2)
        loss, diag = self.objective(z1.float(), z2.float(), indices, alpha=alpha, tau=tau)
        loss = self._inject_faults(loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            m.TRAIN_LOSS: loss.detach(),
            m.TRAIN_TENSION: diag["tension"].detach(),
            m.TRAIN_ALPHA: torch.tensor(alpha),
            m.TRAIN_TAU: torch.tensor(tau),
        }

    def _inject_faults(self, loss: Tensor) -> Tensor:
        """The debug knobs: a NaN loss or an exception at a chosen step (1-based)."""
        step = self.step + 1
        if step == self.config.debug_raise_at_step:
            raise RuntimeError(f"debug_raise_at_step: injected failure at step {step}")
        if step == self.config.debug_nan_at_step:
            return loss * math.nan
        return loss

    def _flush(self, pending: list[dict[str, Tensor]], seconds: float) -> tuple[str, str]:
        """Bring pending step metrics to the host, log them, and check stop rules."""
        first_step = self.step - len(pending) + 1
        keys = list(pending[0])
        values = torch.stack([torch.stack([p[k].float().cpu() for k in keys]) for p in pending])
        rate = len(pending) * self.config.batch_size / max(seconds, 1e-9)
        for offset, row in enumerate(values.tolist()):
            step = first_step + offset
            record = dict(zip(keys, row, strict=True))
            if not math.isfinite(record[m.TRAIN_LOSS]):
                return STATUS_DIVERGED, f"non-finite loss {record[m.TRAIN_LOSS]} at step {step}"
            record.update(self._slopes_with(record[m.TRAIN_LOSS]))
            record[m.TRAIN_SAMPLES_PER_S] = rate
            self.history.add_step(step, record)
            self.callback.on_step(step=step, metrics=record)
            if step % self.config.slope_window == 0:
                stop = self._on_window_end(record)
                if stop:
                    return STATUS_EARLY_STOPPED, f"loss slope flat since step {stop}"
        return STATUS_COMPLETED, ""

    def _slopes_with(self, loss: float) -> dict[str, float]:
        window = self.config.slope_window
        losses = self.history.train.get(m.TRAIN_LOSS, [])
        recent = np.asarray([*losses[max(0, len(losses) - window + 1) :], loss])
        if len(recent) < window:
            return {m.TRAIN_LOSS_SLOPE: math.nan, m.TRAIN_LOG_LOSS_SLOPE: math.nan}
        slope, log_slope = loss_slopes(recent, window=window)
        return {m.TRAIN_LOSS_SLOPE: float(slope[-1]), m.TRAIN_LOG_LOSS_SLOPE: float(log_slope[-1])}

    def _on_window_end(self, record: dict[str, float]) -> int | None:
        """Feed the plateau schedule; return the early-stop step if training should stop."""
        log_slope = record[m.TRAIN_LOG_LOSS_SLOPE]
        if math.isfinite(log_slope):
            self.alpha_schedule.observe_slope(abs(log_slope))
        if not self.config.stop_early:
            return None
        c = self.config
        return early_stop_step(
            np.asarray(self.history.steps),
            np.asarray(self.history.train[m.TRAIN_LOSS]),
            window=c.slope_window,
            threshold=c.early_stop_threshold,
            patience=c.early_stop_patience,
        )

    def _evaluate(self, *, last: bool = False) -> tuple[str, str]:
        """Score the model; the costly extra probes only at the run's last evaluation,
        unless the run monitors one of them (then a scheduler needs it at every one)."""
        c = self.config
        monitored = c.monitor_metric in last_only_metrics(c.eval_features)
        at_budget = self._at_budget()
        scores = evaluate(
            self.model,
            self.data,
            settings=self.eval_settings,
            augment_spec=self.augment_spec,
            device=self.device,
            extras=last or monitored or at_budget or self.step >= self.total_steps,
        )
        if at_budget:
            self._budget_seconds[self.step // self.steps_per_epoch] = (
                time.perf_counter() - self._started
            )
        scores[m.TRAIN_EPOCH_LOSS] = self._epoch_mean_loss()
        scores |= curve_scores(self.history.eval_steps, self.history.evals, self.step, scores)
        self.history.add_eval(self.step, self.epoch, scores)
        stop = self.callback.on_eval(
            step=self.step, epoch=self.epoch, metrics=scores, save_checkpoint=self.save_checkpoint
        )
        if stop:
            return STATUS_STOPPED, "stopped by the caller after evaluation"
        return STATUS_COMPLETED, ""

    def _epoch_mean_loss(self) -> float:
        losses = self.history.train.get(m.TRAIN_LOSS, [])
        recent = losses[-self.steps_per_epoch :]
        return float(np.mean(recent)) if recent else math.nan

    @torch.no_grad()
    def _init_temporal_bank(self) -> None:
        """Fill the temporal field's anchor bank from second views, if that mode is on."""
        anchors = self.objective.anchor_indices
        if anchors is None or self.step > 0:
            return
        was_training = self.model.training
        self.model.eval()
        seed = stream_seed(self.config.seed, TEMPORAL_BANK_STREAM)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        chunks = []
        for chunk in anchors.split(256):
            _, view2 = two_views(self.data.train_images[chunk], self.augment_spec, generator)
            chunks.append(self.model(view2).float())
        self.objective.field.init_bank(torch.cat(chunks))
        self.model.train(was_training)


def train(
    config: TrialConfig,
    *,
    callback: TrainCallback | None = None,
    checkpoint_dir: Any = None,
    data: ImageData | None = None,
    budget_epochs: Sequence[int] = (),
) -> TrainResult:
    """Run one trial; resume from `checkpoint_dir` when it holds a usable checkpoint."""
    trainer = Trainer(config, callback=callback, data=data, budget_epochs=budget_epochs)
    if checkpoint_dir is not None:
        trainer.restore(checkpoint_dir)
    return trainer.run()
