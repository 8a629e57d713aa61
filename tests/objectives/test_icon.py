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


def reference_icon(z1, z2, *, tau, debias, kernel, df, kl_eps=0.0):
    """Entry-by-entry transcription of the reference I-Con loss; returns (loss, diag q).

    kl_eps > 0: the published tables' code, identity I / (rowsum(I) + eps) and the
    KL sum p log((p + eps) / (q + eps)) / B.
    """
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
            identity = (1.0 / (1.0 + kl_eps) if kl_eps > 0 else 1.0) if i == j else 0.0
            p = (1 - debias) * identity + debias / b
            if i == j:
                positives.append(q)
            if kl_eps > 0:
                loss = loss + p * (math.log(p + kl_eps) - torch.log(q + kl_eps))
            elif p != 0.0:
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


EPS = 1e-8  # the published code's


def _relative_close(got, want, rel):
    """Tensors equal to `rel` of the reference's largest magnitude."""
    torch.testing.assert_close(got, want, rtol=rel, atol=rel * want.abs().max().item())


@pytest.mark.parametrize("kernel", ["gaussian", "student_t"])
@pytest.mark.parametrize("debias", [0.2, 0.0])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
def test_eps_form_matches_the_published_code_in_float64(tau, debias, kernel):
    """In 4 dimensions: at tau 0.05, 25 of the 64 entries of q fall below eps."""
    z1, z2 = _pairs(8, 4, seed=11)
    opts = {"tau": tau, "debias": debias, "kernel": kernel, "df": 1.0, "kl_eps": EPS}
    loss, diag = icon_loss(z1, z2, **opts)
    ref_loss, ref_pos = reference_icon(z1, z2, **opts)
    exact, _ = icon_loss(z1, z2, **{**opts, "kl_eps": 0.0})
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-9)
    assert abs(loss.item() - exact.item()) > 1e-8 * exact.item()  # 10x the tolerance
    assert diag["positive_prob"].item() == pytest.approx(ref_pos.item(), rel=1e-9)
    grads = torch.autograd.grad(loss, (z1, z2))
    for got, want in zip(grads, torch.autograd.grad(ref_loss, (z1, z2)), strict=True):
        _relative_close(got, want, 1e-9)


def test_eps_form_departs_from_the_kl_only_where_q_underflows():
    """Clustered embeddings with debiasing: far apart at tau 0.05, alike at 0.5."""
    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(64, 4, generator=g, dtype=torch.float64), dim=1)
    z2 = F.normalize(z1 + 0.1 * torch.randn(64, 4, generator=g, dtype=torch.float64), dim=1)
    gap = {}
    for tau in (0.05, 0.5):
        exact, _ = icon_loss(z1, z2, tau=tau, debias=0.2)
        eps_form, _ = icon_loss(z1, z2, tau=tau, debias=0.2, kl_eps=EPS)
        gap[tau] = abs(eps_form.item() - exact.item()) / exact.item()
    assert gap[0.05] > 0.2 and gap[0.5] < 1e-6, gap


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
        ({"kl_eps": -1.0}, "kl_eps"),
    ],
)
def test_bad_arguments_raise_one_line_usage_errors(options, name):
    z1, z2 = _pairs(3, 2, seed=0)
    with pytest.raises(UsageError) as info:
        icon_loss(z1, z2, **options)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={next(iter(options.values()))!r}")
