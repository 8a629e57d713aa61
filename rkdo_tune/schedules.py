"""Schedules of the temperature tau and of the RKDO coupling alpha over training.

Temperature. The reference code cools tau across the recursion levels inside
the loss (``tau_t = tau (1 - beta t / d)``, kind "level"); the paper's text
cools it across training steps (``tau0 (1 - beta step / T)``, kind "linear").
"cosine" is a smooth variant of "linear" and "constant" never cools. A
per-step kind must not also cool per level: pass ``loss_beta(kind, beta)``
to the loss, which is ``beta`` for "level" and 0 otherwise.

Alpha. The paper advises a large alpha early, decayed over training; the
kinds here go from ``alpha0`` down to ``alpha_min``, never outside that range.
"""

from __future__ import annotations

import math
from typing import TypedDict

from rkdo_tune.config import (
    ALPHA_SCHEDULES,
    TAU_SCHEDULES,
    check_alpha_min,
    check_choice,
    check_range,
)
from rkdo_tune.errors import UsageError, check_value

# The kinds are the config's choices of tau_schedule and alpha_schedule, defined there.
TEMPERATURE_KINDS = TAU_SCHEDULES
ALPHA_KINDS = ALPHA_SCHEDULES


class AlphaState(TypedDict):
    """What an `AlphaSchedule` carries across a checkpoint."""

    kind: str
    decays: int
    flat_windows: int


def _check_total_steps(total_steps: int) -> None:
    check_value(total_steps >= 1, "total_steps", total_steps, "it must be >= 1")


def _progress(step: int, total_steps: int) -> float:
    """step / total_steps, clamped to [0, 1]."""
    return min(max(step / total_steps, 0.0), 1.0)


def temperature_at(step: int, total_steps: int, *, kind: str, tau0: float, beta: float) -> float:
    """The temperature the loss gets at optimiser step ``step`` of ``total_steps``.

    Always in ``[tau0 (1 - beta), tau0]``, hence > 0; steps outside
    ``[0, total_steps]`` are clamped.
    """
    check_choice("tau_schedule", kind)
    check_range("tau", tau0)
    check_range("beta", beta)
    _check_total_steps(total_steps)
    if kind in ("level", "constant"):
        return float(tau0)
    progress = _progress(step, total_steps)
    if kind == "linear":
        return tau0 * (1 - beta * progress)
    return tau0 * (1 - beta * (1 - math.cos(math.pi * progress)) / 2)


def loss_beta(kind: str, beta: float) -> float:
    """The per-level cooling the loss should apply under temperature schedule ``kind``."""
    check_choice("tau_schedule", kind)
    return float(beta) if kind == "level" else 0.0


class AlphaSchedule:
    """alpha over training steps, from ``alpha0`` down to ``alpha_min``.

    - "constant": alpha0.
    - "linear", "cosine": alpha0 to alpha_min over ``total_steps``.
    - "exponential": ``alpha0 (alpha_min / alpha0) ** (step / total_steps)``.
    - "step": multiplied by ``decay_factor`` every ``step_every`` steps.
    - "plateau": multiplied by ``decay_factor`` each time ``observe_slope``
      has seen ``patience`` consecutive windows with ``|slope| <
      plateau_threshold`` (the count restarts after each decay).

    All kinds but "constant" are floored at ``alpha_min``, which must then lie
    in ``(0, alpha0]``: the loss needs alpha > 0.
    """

    def __init__(
        self,
        *,
        kind: str,
        alpha0: float,
        alpha_min: float = 0.05,
        total_steps: int = 1,
        decay_factor: float = 0.5,
        step_every: int = 50,
        patience: int = 3,
        plateau_threshold: float = 0.005,
    ) -> None:
        check_choice("alpha_schedule", kind)
        check_range("alpha", alpha0)
        if kind != "constant":
            check_alpha_min(alpha_min, alpha0)
        _check_total_steps(total_steps)
        check_range("alpha_decay_factor", decay_factor)
        check_range("alpha_step_every", step_every)
        check_range("alpha_patience", patience)
        check_range("early_stop_threshold", plateau_threshold, name="plateau_threshold")
        self.kind = kind
        self.alpha0 = float(alpha0)
        self.alpha_min = float(alpha_min) if kind != "constant" else float(alpha0)
        self.total_steps = total_steps
        self.decay_factor = float(decay_factor)
        self.step_every = step_every
        self.patience = patience
        self.plateau_threshold = float(plateau_threshold)
        self.decays = 0  # plateau: decays applied so far
        self.flat_windows = 0  # plateau: consecutive flat windows since the last decay

    def value(self, step: int) -> float:
        """alpha at optimiser step ``step`` (clamped into [alpha_min, alpha0])."""
        a0, a_min = self.alpha0, self.alpha_min
        progress = _progress(step, self.total_steps)
        if self.kind == "constant":
            alpha = a0
        elif self.kind == "linear":
            alpha = a0 + (a_min - a0) * progress
        elif self.kind == "cosine":
            alpha = a_min + (a0 - a_min) * (1 + math.cos(math.pi * progress)) / 2
        elif self.kind == "exponential":
            alpha = a0 * (a_min / a0) ** progress
        elif self.kind == "step":
            alpha = a0 * self.decay_factor ** (max(step, 0) // self.step_every)
        else:  # plateau
            alpha = a0 * self.decay_factor**self.decays
        return min(max(alpha, a_min), a0)

    def observe_slope(self, slope: float) -> None:
        """Feed one slope window's |log-loss slope|; only "plateau" reacts."""
        if self.kind != "plateau":
            return
        if abs(slope) < self.plateau_threshold:
            self.flat_windows += 1
            if self.flat_windows >= self.patience:
                self.decays += 1
                self.flat_windows = 0
        else:
            self.flat_windows = 0

    def state_dict(self) -> AlphaState:
        return {"kind": self.kind, "decays": self.decays, "flat_windows": self.flat_windows}

    def load_state_dict(self, state: AlphaState) -> None:
        if state["kind"] != self.kind:
            raise UsageError(
                f"alpha schedule state: kind {state['kind']!r} does not match this run's "
                f"{self.kind!r}"
            )
        self.decays = int(state["decays"])
        self.flat_windows = int(state["flat_windows"])


# The kinds whose value at a step depends on the run's total steps T: a k-epoch prefix
# of a longer run is then not a k-epoch run (budget points inside one run need neither).
ALPHA_KINDS_OVER_T = ("linear", "cosine", "exponential")
TEMPERATURE_KINDS_OVER_T = ("linear", "cosine")


def schedules_over_total(*, alpha_schedule: str, tau_schedule: str) -> list[str]:
    """The config keys whose schedule reads the total budget (empty: a prefix is a shorter run)."""
    keys = ["alpha_schedule"] if alpha_schedule in ALPHA_KINDS_OVER_T else []
    return keys + (["tau_schedule"] if tau_schedule in TEMPERATURE_KINDS_OVER_T else [])
