"""The I-Con baseline, as the reference code runs it.

Target ``p = (1 - a) I + (a / B) ones`` (``a`` is the debiasing weight), learned
``q = softmax_rows(K / tau)`` with ``K = z1 @ z2.T`` (the "gaussian" kernel on
the unit sphere) or ``K_ij = -log(1 + ||z1_i - z2_j||^2 / df)`` (Student-t),
and the loss ``KL_batchmean(p, q)``.

With ``kl_eps > 0`` it runs as the code behind the paper's published tables: the
identity is first normalised to ``I / (rowsum(I) + eps)``, then blended with the
uniform, and the loss is ``sum p log((p + eps) / (q + eps)) / B``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.config import check_choice, check_range
from rkdo_tune.objectives._divergence import (
    check_pair,
    compiled_once,
    kl_batchmean,
    kl_eps_batchmean,
)


def icon_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    tau: float = 0.5,
    debias: float = 0.2,
    kernel: str = "gaussian",
    df: float = 1.0,
    kl_eps: float = 0.0,
    compiled: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """I-Con loss of the positive pairs (z1_i, z2_i); z1, z2 are (B, D), L2-normalised.

    Returns the 0-d loss and detached diagnostics: ``tension`` (the KL itself)
    and ``positive_prob`` (mean of diag q). ``compiled=True`` runs the
    divergence through ``torch.compile`` (once per process), as for RKDO.
    ``kl_eps > 0``: the published code's eps-normalised identity and eps-form KL.
    """
    check_pair(z1, z2)
    check_range("tau", tau)  # the config's rules, for callers that bypass a TrialConfig
    check_range("debias", debias)
    check_choice("kernel", kernel)
    check_range("student_df", df, name="df")
    check_range("kl_eps", kl_eps)

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
    if kl_eps > 0:
        eye = eye / (eye.sum(1, keepdim=True) + kl_eps)  # the published code's normalisation
    p = (1 - debias) * eye + debias / batch
    divergence = compiled_once(_divergence) if compiled else _divergence
    loss, log_q = divergence(logits, p, kl_eps)
    diagnostics = {
        "tension": loss.detach(),
        "positive_prob": log_q.detach().diagonal().exp().mean(),
    }
    return loss, diagnostics


def _divergence(logits: Tensor, p: Tensor, kl_eps: float) -> tuple[Tensor, Tensor]:
    """KL_batchmean(p, softmax_rows(logits)) (eps form if kl_eps > 0) and log q; all (B, B)."""
    log_q = F.log_softmax(logits, dim=1)
    if kl_eps > 0:
        return kl_eps_batchmean(p, log_q.exp(), kl_eps), log_q
    return kl_batchmean(p.log(), log_q), log_q  # log p is -inf off the diagonal at debias 0
