"""Helpers shared by the objectives: the batch-mean KL, compilation and the shape check.

All objectives compare a target distribution p with a learned one q, row by
row, as ``KL_batchmean(p, q) = sum_ij p_ij (log p_ij - log q_ij) / B`` -- what
``torch.nn.functional.kl_div(log_q, p, reduction="batchmean")`` computes, or,
with ``kl_eps > 0``, the eps form of the code behind the published tables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor


def kl_batchmean(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``sum_ij p_ij (log p_ij - log q_ij) / B`` from log-probabilities, both (B, C).

    Entries with ``p_ij == 0`` (``log_p == -inf``) contribute exactly 0
    (0·log 0 = 0), whatever ``log_q`` is there, even ``-inf`` (a masked column).
    Working from ``log_p`` rather than ``p`` keeps the term finite, with finite
    gradients, where ``p`` underflows. A ``log_p`` that requires grad must be
    finite where it matters: the gradient of the zeroed branch is not defined.
    """
    terms = torch.where(torch.isneginf(log_p), 0.0, log_p.exp() * (log_p - log_q))
    return terms.sum() / log_p.shape[0]


def kl_eps_batchmean(p: Tensor, q: Tensor, eps: float) -> Tensor:
    """``sum_ij p_ij log((p_ij + eps) / (q_ij + eps)) / B`` of probabilities, both (B, C).

    The form of the code behind the paper's published tables (eps = 1e-8). Where
    q falls far below eps (small temperatures) it is not the KL: the eps caps the
    penalty of such entries, and their gradient nearly vanishes.
    """
    return (p * ((p + eps).log() - (q + eps).log())).sum() / p.shape[0]


@functools.cache
def compiled_once(function: Callable) -> Callable:
    """`function` under ``torch.compile``, built once per process and reused by every call."""
    return torch.compile(function)


def check_pair(z1: Tensor, z2: Tensor) -> None:
    """z1 and z2 must be (B, D) with the same shape; a mismatch is a caller bug."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, D); got {tuple(z1.shape)}, {tuple(z2.shape)}")
