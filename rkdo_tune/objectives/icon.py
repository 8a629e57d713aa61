"""The I-Con baseline, as the reference code runs it.

Target ``p = (1 - a) I + (a / B) ones`` (``a`` is the debiasing weight), learned
``q = softmax_rows(K / tau)`` with ``K = z1 @ z2.T`` (the "gaussian" kernel on
the unit sphere) or ``K_ij = -log(1 + ||z1_i - z2_j||^2 / df)`` (Student-t),
and the loss ``KL_batchmean(p, q)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.config import check_choice, check_range
from rkdo_tune.objectives._divergence import check_pair, compiled_once, kl_batchmean


def icon_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    tau: float = 0.5,
    debias: float = 0.2,
    kernel: str = "gaussian",
    df: float = 1.0,
    compiled: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """I-Con loss of the positive pairs (z1_i, z2_i); z1, z2 are (B, D), L2-normalised.

    Returns the 0-d loss and detached diagnostics: ``tension`` (the KL itself)
    and ``positive_prob`` (mean of diag q). ``compiled=True`` runs the
    divergence through ``torch.compile`` (once per process), as for RKDO.
    """
    check_pair(z1, z2)
    check_range("tau", tau)  # the config's rules, for callers that bypass a TrialConfig
    check_range("debias", debias)
    check_choice("kernel", kernel)
    check_range("student_df", df, name="df")

    batch = z1.shape[0]
    sim = z1 @ z2.T
    if kernel == "gaussian":
        logits = sim / tau
    else:
        sq_dist = (
            z1.square().sum(1, keepdim=True) + z2.square().sum(1)[None, :] - 2 * sim
        ).clamp_min(0)  # expanded form: one matmul, and a smooth gradient at distance 0
        logits = -torch.log1p(sq_dist / df) / tau
    eye = torch.eye(batch, dtype=logits.dtype, device=logits.device)
    log_p = ((1 - debias) * eye + debias / batch).log()  # -inf off the diagonal when debias = 0
    divergence = compiled_once(_divergence) if compiled else _divergence
    loss, log_q = divergence(logits, log_p)
    diagnostics = {
        "tension": loss.detach(),
        "positive_prob": log_q.detach().diagonal().exp().mean(),
    }
    return loss, diagnostics


def _divergence(logits: Tensor, log_p: Tensor) -> tuple[Tensor, Tensor]:
    """KL_batchmean(p, softmax_rows(logits)) and log q, from (B, B) logits and log p."""
    log_q = F.log_softmax(logits, dim=1)
    return kl_batchmean(log_p, log_q), log_q
