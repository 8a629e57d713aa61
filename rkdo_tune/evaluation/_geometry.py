"""Geometry of embeddings: alignment and uniformity (Wang & Isola, 2020), effective rank."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

Embeddings = Tensor | np.ndarray  # (N, D), as a tensor or an array


def _as_float_tensor(x: Embeddings) -> Tensor:
    return torch.as_tensor(x).detach().float()


def alignment(z1: Embeddings, z2: Embeddings) -> float:
    """Mean ||z1_i - z2_i||^2 over positive pairs (lower is better); z1, z2: (B, D)."""
    a, b = _as_float_tensor(z1), _as_float_tensor(z2)
    return float((a - b).pow(2).sum(dim=1).mean())


def uniformity(z: Embeddings, t: float = 2.0) -> float:
    """log mean exp(-t ||z_i - z_j||^2) over pairs i < j (lower is more uniform); z: (B, D)."""
    x = _as_float_tensor(z)
    if x.shape[0] < 2:
        return math.nan
    sq = torch.pdist(x).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel()))


def effective_rank(x: Embeddings) -> float:
    """exp(entropy of the normalised singular values) of centred x: (N, D) (Roy & Vetterli).

    1 for rank-one data, close to d for an isotropic d-dimensional cloud, 0
    for a matrix whose rows are all equal (total collapse). Singular values
    at the level of the input's rounding noise count as zero, so collapsed
    float32 embeddings do not read as full-rank noise. NaN if x is not finite.
    """
    array = torch.as_tensor(x).detach().cpu().numpy()
    eps = np.finfo(array.dtype).eps if np.issubdtype(array.dtype, np.floating) else 2.0**-52
    x64 = array.astype(np.float64)
    if x64.ndim != 2 or x64.size == 0 or not np.isfinite(x64).all():
        return math.nan
    s = np.linalg.svd(x64 - x64.mean(axis=0), compute_uv=False)
    tol = max(x64.shape) * eps * max(np.linalg.norm(x64), np.finfo(np.float64).tiny)
    s = s[s > tol]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
