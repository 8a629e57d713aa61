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

The targets are mixed in probability space (``p_t = lerp(p_{t-1}, q_{t-1},
alpha)``), which costs one op per level where a log-space mixture costs
several. Where an entry of p underflows to 0 its ``p log p`` term is exactly 0
and its gradient stays finite (the log of a clamped p), with no epsilon in any
term that counts. With ``kl_eps > 0`` each level's term is instead the eps form of
the code behind the paper's published tables, ``sum p log((p + eps) / (q + eps)) / B``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.config import check_range
from rkdo_tune.errors import check_value
from rkdo_tune.objectives._divergence import check_pair, compiled_once, kl_eps_batchmean


def rkdo_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    alpha: float = 0.5,
    depth: int = 3,
    tau: float = 0.5,
    beta: float = 0.1,
    detach_target: bool = False,
    kl_eps: float = 0.0,
    compiled: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """In-batch RKDO loss of the positive pairs (z1_i, z2_i); z1, z2 are (B, D), L2-normalised.

    Returns the 0-d loss and detached diagnostics: ``tension`` (the last
    level's KL(p_d, q_d)), ``positive_prob`` (mean of diag q_d) and
    ``level_losses`` ((depth,), the per-level KL terms that sum to the loss).

    ``compiled=True`` runs the levels through ``torch.compile`` (once per
    process; the first call pays for it), with alpha and the temperatures
    passed as tensors, so values that change every step do not recompile.
    ``kl_eps > 0`` takes the eps form of the KL at every level (0: the exact KL).
    """
    check_pair(z1, z2)
    check_range("alpha", alpha)  # the config's rules, for callers that bypass a TrialConfig
    is_int = isinstance(depth, int) and not isinstance(depth, bool)
    check_value(is_int, "depth", depth, "it must be an integer")  # it counts the levels
    check_range("depth", depth)
    check_range("tau", tau)
    check_range("beta", beta)
    check_range("kl_eps", kl_eps)

    sim = z1 @ z2.T  # (B, B): the only matrix product, shared by every level
    if compiled:
        level = torch.arange(depth + 1, dtype=sim.dtype, device=sim.device)
        inverse_temperatures = level.mul_(-beta / depth).add_(1).mul_(tau).reciprocal_()
        weight = torch.full((), alpha, dtype=sim.dtype, device=sim.device)
        levels = compiled_once(_levels)(sim, inverse_temperatures, weight, detach_target, kl_eps)
    else:
        inverse_temperatures = [1 / (tau * (1 - beta * t / depth)) for t in range(depth + 1)]
        levels = _levels(sim, inverse_temperatures, alpha, detach_target, kl_eps)
    level_losses, log_q_last = levels
    diagnostics = {
        "tension": level_losses[-1].detach(),
        "positive_prob": log_q_last.detach().diagonal().exp().mean(),
        "level_losses": level_losses.detach(),
    }
    return level_losses.sum(), diagnostics


def _levels(
    sim: Tensor,
    inverse_temperatures: Sequence[float] | Tensor,
    alpha: float | Tensor,
    detach_target: bool,
    kl_eps: float,
) -> tuple[Tensor, Tensor]:
    """The d KL terms ((d,)) and log q_d ((B, B)) from S ((B, B)) and 1/tau_0 .. 1/tau_d."""
    batch = sim.shape[0]
    tiny = torch.finfo(sim.dtype).tiny
    log_q = F.log_softmax(sim * inverse_temperatures[0], dim=1)  # log q_0
    target = torch.eye(batch, dtype=sim.dtype, device=sim.device)  # p_0
    terms = []
    for inverse_temperature in inverse_temperatures[1:]:
        source = log_q.exp().detach() if detach_target else log_q.exp()  # q_{t-1}
        target = torch.lerp(target, source, alpha)  # p_t = (1 - alpha) p_{t-1} + alpha q_{t-1}
        log_q = F.log_softmax(sim * inverse_temperature, dim=1)  # log q_t
        if kl_eps > 0:
            terms.append(kl_eps_batchmean(target, log_q.exp(), kl_eps))
        else:
            terms.append((target * (target.clamp_min(tiny).log() - log_q)).sum() / batch)
    return torch.stack(terms), log_q
