"""RKDO with the in-batch recursion, as the reference code runs it.

With ``S = z1 @ z2.T`` (computed once and reused at every level)::

    p_0 = I,  q_0 = softmax_rows(S / tau)
    for t in 1..d:
        p_t   = (1 - alpha) p_{t-1} + alpha q_{t-1}
        tau_t = tau (1 - beta t / d)
        q_t   = softmax_rows(S / tau_t)
        L    += KL_batchmean(p_t, q_t)

The loss is the sum over the d levels (its scale grows with d). Gradients
flow through the target p_t, as in the reference; ``detach_target=True``
builds p_t from detached q's instead (an ablation).

The recursion runs in log space: ``log p_t = logaddexp(log(1-alpha) + log p_{t-1},
log alpha + log q_{t-1})``. For t >= 1 this is finite everywhere (alpha > 0
and log_softmax is finite), so neither the loss nor its gradient can hit
0·log 0 even where q underflows, with no epsilon anywhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.objectives._divergence import (
    check_alpha,
    check_beta,
    check_depth,
    check_pair,
    check_tau,
    kl_batchmean,
)


def rkdo_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    alpha: float = 0.5,
    depth: int = 3,
    tau: float = 0.5,
    beta: float = 0.1,
    detach_target: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """In-batch RKDO loss of the positive pairs (z1_i, z2_i); z1, z2 are (B, D), L2-normalised.

    Returns the 0-d loss and detached diagnostics: ``tension`` (the last
    level's KL(p_d, q_d)), ``positive_prob`` (mean of diag q_d) and
    ``level_losses`` ((depth,), the per-level KL terms that sum to the loss).
    """
    check_pair(z1, z2)
    check_alpha(alpha)
    check_depth(depth)
    check_tau(tau)
    check_beta(beta)

    sim = z1 @ z2.T
    log_keep = math.log1p(-alpha) if alpha < 1 else -math.inf
    log_mix = math.log(alpha)
    log_p = torch.eye(sim.shape[0], dtype=sim.dtype, device=sim.device).log()  # log p_0
    log_q = F.log_softmax(sim / tau, dim=1)  # log q_0
    levels = []
    for t in range(1, depth + 1):
        source = log_q.detach() if detach_target else log_q
        log_p = torch.logaddexp(log_keep + log_p, log_mix + source)
        log_q = F.log_softmax(sim / (tau * (1 - beta * t / depth)), dim=1)
        levels.append(kl_batchmean(log_p, log_q))
    level_losses = torch.stack(levels)
    diagnostics = {
        "tension": levels[-1].detach(),
        "positive_prob": log_q.detach().diagonal().exp().mean(),
        "level_losses": level_losses.detach(),
    }
    return level_losses.sum(), diagnostics
