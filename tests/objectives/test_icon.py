"""Parity of the I-Con loss with a slow, loop-based reference (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _support import embedding_pairs as _pairs

from rkdo_tune.errors import UsageError
from rkdo_tune.objectives import icon_loss

TOL = 1e-6


def reference_icon(z1, z2, *, tau, debias, kernel, df):
    """Entry-by-entry transcription of the reference I-Con loss; returns (loss, diag q)."""
    b = z1.shape[0]
    loss = 0
    positives = []
    for i in range(b):
        logits = []
        for j in range(b):
            if kernel == "gaussian":
                k = (z1[i] * z2[j]).sum()
            else:
                k = -torch.log(1 + ((z1[i] - z2[j]) ** 2).sum() / df)
            logits.append(k / tau)
        total = sum(torch.exp(x) for x in logits)
        for j in range(b):
            q = torch.exp(logits[j]) / total
            p = (1 - debias) * (1.0 if i == j else 0.0) + debias / b
            if i == j:
                positives.append(q)
            if p != 0.0:
                loss = loss + p * (math.log(p) - torch.log(q))
    return loss / b, sum(positives) / b


CASES = [
    # batch, dim, tau, debias, df
    (4, 3, 0.5, 0.2, 1.0),
    (6, 5, 0.1, 0.0, 1.0),
    (5, 2, 1.0, 1.0, 3.0),
    (7, 8, 0.3, 0.5, 0.5),
]


@pytest.mark.parametrize("kernel", ["gaussian", "student_t"])
@pytest.mark.parametrize(("batch", "dim", "tau", "debias", "df"), CASES)
def test_icon_matches_loop_reference(batch, dim, tau, debias, df, kernel):
    z1, z2 = _pairs(batch, dim, seed=batch + dim)
    opts = {"tau": tau, "debias": debias, "kernel": kernel, "df": df}
    loss, diag = icon_loss(z1, z2, **opts)
    ref_loss, ref_pos = reference_icon(z1, z2, **opts)

    assert loss.shape == ()
    assert loss.item() == pytest.approx(ref_loss.item(), abs=TOL, rel=TOL)
    assert diag["tension"].item() == pytest.approx(ref_loss.item(), abs=TOL, rel=TOL)
    assert diag["positive_prob"].item() == pytest.approx(ref_pos.item(), abs=TOL)
    assert all(not v.requires_grad for v in diag.values())

    grads = torch.autograd.grad(loss, (z1, z2))
    ref_grads = torch.autograd.grad(ref_loss, (z1, z2))
    for got, want in zip(grads, ref_grads, strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, atol=TOL, rtol=TOL)


def test_student_t_gradient_is_finite_for_identical_views():
    z1, _ = _pairs(5, 4, seed=0)
    z2 = z1.detach().clone().requires_grad_()
    loss, _ = icon_loss(z1, z2, kernel="student_t")
    grads = torch.autograd.grad(loss, (z1, z2))
    assert all(torch.isfinite(g).all() for g in grads)


def test_gaussian_matches_kl_div_batchmean():
    z1, z2 = _pairs(6, 3, seed=9)
    loss, _ = icon_loss(z1, z2, tau=0.5, debias=0.2)
    q = torch.softmax(z1 @ z2.T / 0.5, dim=1)
    p = 0.8 * torch.eye(6, dtype=q.dtype) + 0.2 / 6
    assert loss.item() == pytest.approx(F.kl_div(q.log(), p, reduction="batchmean").item())


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"tau": 0.0}, "tau"),
        ({"debias": -0.1}, "debias"),
        ({"debias": 1.5}, "debias"),
        ({"kernel": "cauchy"}, "kernel"),
        ({"df": 0.0}, "df"),
    ],
)
def test_bad_arguments_raise_one_line_usage_errors(options, name):
    z1, z2 = _pairs(3, 2, seed=0)
    with pytest.raises(UsageError) as info:
        icon_loss(z1, z2, **options)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={next(iter(options.values()))!r}")
