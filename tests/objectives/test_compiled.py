"""Compiled losses agree with the eager ones and do not recompile as alpha and tau move."""

from __future__ import annotations

import pytest
import torch
from _support import embedding_pairs
from torch._dynamo.utils import counters

from rkdo_tune.objectives import icon_loss, rkdo_loss


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """float32, as training runs the losses (the shared helper makes float64)."""
    return tuple(t.detach().float().requires_grad_() for t in embedding_pairs(16, 8, seed=3))


def _value_and_grads(loss_fn, **options):
    z1, z2 = _pairs()
    loss, diagnostics = loss_fn(z1, z2, **options)
    return loss, diagnostics, torch.autograd.grad(loss, (z1, z2))


@pytest.mark.slow
@pytest.mark.parametrize(("detach_target", "kl_eps"), [(False, 0.0), (True, 0.0), (False, 1e-8)])
def test_compiled_rkdo_matches_eager_as_alpha_and_tau_change_every_step(detach_target, kl_eps):
    graphs = None
    for step in range(6):
        options = {
            "alpha": 0.9 - 0.1 * step,
            "depth": 3,
            "tau": 0.5 - 0.03 * step,
            "beta": 0.1,
            "detach_target": detach_target,
            "kl_eps": kl_eps,
        }
        eager, eager_diag, eager_grads = _value_and_grads(rkdo_loss, **options)
        fused, fused_diag, fused_grads = _value_and_grads(rkdo_loss, compiled=True, **options)
        torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-6)
        for key in eager_diag:
            torch.testing.assert_close(fused_diag[key], eager_diag[key], rtol=1e-5, atol=1e-6)
        for got, want in zip(fused_grads, eager_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        if step == 1:
            graphs = counters["stats"]["unique_graphs"]
    assert counters["stats"]["unique_graphs"] == graphs, "a new alpha or tau recompiled the loss"


@pytest.mark.slow
@pytest.mark.parametrize(("debias", "kl_eps"), [(0.0, 0.0), (0.2, 0.0), (0.2, 1e-8)])
def test_compiled_icon_matches_eager(debias, kl_eps):
    options = {"tau": 0.4, "debias": debias, "kl_eps": kl_eps}
    eager, eager_diag, eager_grads = _value_and_grads(icon_loss, **options)
    fused, fused_diag, fused_grads = _value_and_grads(icon_loss, compiled=True, **options)
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused_diag["positive_prob"], eager_diag["positive_prob"])
    for got, want in zip(fused_grads, eager_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
