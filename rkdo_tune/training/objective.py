"""Binds a TrialConfig to one loss from the objectives registry.

The trainer asks for "a loss of (z1, z2, indices, alpha_t, tau_t)"; this
module decides which registered function that is and which config fields
it receives, so the trainer has no objective-specific branches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rkdo_tune.config import TrialConfig
from rkdo_tune.objectives import OBJECTIVES, TemporalField
from rkdo_tune.schedules import loss_beta

LossFn = Callable[[Tensor, Tensor, Tensor, float, float], tuple[Tensor, dict[str, Tensor]]]


class BoundObjective:
    """A config-bound loss. Stateless except for the temporal recursion's field."""

    def __init__(self, config: TrialConfig, *, num_samples: int, device: torch.device) -> None:
        self.config = config
        self.field: TemporalField | None = None
        if config.objective == "rkdo" and config.recursion == "temporal":
            generator = torch.Generator().manual_seed(config.seed)
            count = min(config.temporal_anchors, num_samples)
            anchors = torch.randperm(num_samples, generator=generator)[:count]
            self.field = TemporalField(
                num_samples=num_samples,
                anchor_indices=anchors.to(device),
                dim=config.head_dim,
                device=device,
            )

    @property
    def anchor_indices(self) -> Tensor | None:
        """Dataset indices whose embeddings seed the temporal field's bank, if any."""
        return None if self.field is None else self.field.anchor_indices

    def __call__(
        self, z1: Tensor, z2: Tensor, indices: Tensor, *, alpha: float, tau: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """z1, z2: (B, D) normalised embeddings; indices: (B,) dataset indices."""
        c = self.config
        if self.field is not None:
            return self.field.loss(z1, z2, indices, alpha=alpha, tau=tau)
        loss_fn = OBJECTIVES[c.objective]
        return loss_fn(z1, z2, **self._options(alpha=alpha, tau=tau))

    def _options(self, *, alpha: float, tau: float) -> dict[str, Any]:
        c = self.config
        if c.objective == "icon":
            return {
                "tau": tau,
                "debias": c.debias,
                "kernel": c.kernel,
                "df": c.student_df,
                "kl_eps": c.kl_eps,
                "compiled": c.compile,
            }
        return {
            "alpha": alpha,
            "depth": c.depth,
            "tau": tau,
            "beta": loss_beta(c.tau_schedule, c.beta),
            "detach_target": c.detach_target,
            "kl_eps": c.kl_eps,
            "compiled": c.compile,
        }

    def state_dict(self) -> dict[str, Any]:
        return {} if self.field is None else self.field.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.field is not None and state:
            self.field.load_state_dict(state)
