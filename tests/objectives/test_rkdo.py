"""Parity of the in-batch RKDO loss with a slow, loop-based reference (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _support import embedding_pairs as _pairs
from torch.utils._python_dispatch import TorchDispatchMode

from rkdo_tune.errors import UsageError
from rkdo_tune.objectives import OBJECTIVES, icon_loss, rkdo_loss

TOL = 1e-6


def _softmax_row(logits: list) -> list:
    total = sum(torch.exp(x) for x in logits)
    return [torch.exp(x) / total for x in logits]


def reference_rkdo(z1, z2, *, alpha, depth, tau, beta, detach_target=False, kl_eps=0.0):
    """Entry-by-entry transcription of the reference recursion; returns (loss, level terms).

    kl_eps > 0: each level's KL as the published tables' code, sum p log((p+eps)/(q+eps)) / B.
    """
    b = z1.shape[0]
    s = [[(z1[i] * z2[j]).sum() for j in range(b)] for i in range(b)]

    def q_at(temp):
        return [_softmax_row([s[i][j] / temp for j in range(b)]) for i in range(b)]

    p = [[torch.tensor(1.0 if i == j else 0.0, dtype=z1.dtype) for j in range(b)] for i in range(b)]
    q = q_at(tau)
    levels = []
    for t in range(1, depth + 1):
        prev = [
            [q[i][j].detach() if detach_target else q[i][j] for j in range(b)] for i in range(b)
        ]
        p = [[(1 - alpha) * p[i][j] + alpha * prev[i][j] for j in range(b)] for i in range(b)]
        q = q_at(tau * (1 - beta * t / depth))
        term = 0
        for i in range(b):
            for j in range(b):
                if kl_eps > 0:
                    ratio = (p[i][j] + kl_eps) / (q[i][j] + kl_eps)
                    term = term + p[i][j] * torch.log(ratio)
                elif p[i][j].item() != 0.0:
                    term = term + p[i][j] * (torch.log(p[i][j]) - torch.log(q[i][j]))
        levels.append(term / b)
    return sum(levels), levels, q


CASES = [
    # batch, dim, alpha, depth, tau, beta
    (4, 3, 0.5, 3, 0.5, 0.1),
    (5, 4, 0.3, 1, 0.5, 0.0),
    (6, 5, 0.9, 8, 0.2, 0.5),
    (3, 8, 1.0, 2, 1.0, 0.3),
    (7, 2, 0.05, 4, 0.1, 0.9),
]


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize(("batch", "dim", "alpha", "depth", "tau", "beta"), CASES)
def test_rkdo_matches_loop_reference(batch, dim, alpha, depth, tau, beta, detach):
    z1, z2 = _pairs(batch, dim, seed=batch * 100 + depth)
    opts = {"alpha": alpha, "depth": depth, "tau": tau, "beta": beta, "detach_target": detach}
    loss, diag = rkdo_loss(z1, z2, **opts)
    ref_loss, ref_levels, ref_q = reference_rkdo(z1, z2, **opts)

    assert loss.shape == ()
    assert loss.item() == pytest.approx(ref_loss.item(), abs=TOL, rel=TOL)
    torch.testing.assert_close(
        diag["level_losses"], torch.stack(ref_levels).detach(), atol=TOL, rtol=TOL
    )
    assert diag["tension"].item() == pytest.approx(ref_levels[-1].item(), abs=TOL)
    ref_pos = sum(ref_q[i][i] for i in range(batch)).item() / batch
    assert diag["positive_prob"].item() == pytest.approx(ref_pos, abs=TOL)

    grads = torch.autograd.grad(loss, (z1, z2))
    ref_grads = torch.autograd.grad(ref_loss, (z1, z2))
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
def test_eps_form_matches_the_published_code_in_float64(tau, detach):
    """In 4 dimensions: at tau 0.05, 25 of the 64 entries of q_0 fall below eps."""
    z1, z2 = _pairs(8, 4, seed=11)
    opts = {"alpha": 0.5, "depth": 3, "tau": tau, "beta": 0.1, "detach_target": detach}
    loss, diag = rkdo_loss(z1, z2, kl_eps=1e-8, **opts)
    ref_loss, ref_levels, _ = reference_rkdo(z1, z2, kl_eps=1e-8, **opts)
    exact, _ = rkdo_loss(z1, z2, **opts)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-9)
    assert abs(loss.item() - exact.item()) > 1e-8 * exact.item()  # 10x the tolerance
    torch.testing.assert_close(
        diag["level_losses"], torch.stack(ref_levels).detach(), rtol=1e-9, atol=0
    )
    for got, want in zip(
        torch.autograd.grad(loss, (z1, z2)), torch.autograd.grad(ref_loss, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * want.abs().max().item())


def test_detaching_the_target_changes_the_gradient_but_not_the_value():
    z1, z2 = _pairs(6, 4, seed=7)
    opts = {"alpha": 0.5, "depth": 3, "tau": 0.5, "beta": 0.1}
    flowing, _ = rkdo_loss(z1, z2, **opts)
    detached, _ = rkdo_loss(z1, z2, detach_target=True, **opts)
    assert flowing.item() == pytest.approx(detached.item(), abs=1e-12)
    g_flow = torch.autograd.grad(flowing, (z1, z2))
    g_det = torch.autograd.grad(detached, (z1, z2))
    assert not torch.allclose(g_flow[0], g_det[0], atol=1e-4)
    assert not torch.allclose(g_flow[1], g_det[1], atol=1e-4)


def test_diagnostics_are_detached_and_consistent():
    z1, z2 = _pairs(5, 4, seed=3)
    loss, diag = rkdo_loss(z1, z2, depth=4)
    assert {"tension", "positive_prob", "level_losses"} <= set(diag)
    assert all(not v.requires_grad for v in diag.values())
    assert diag["level_losses"].shape == (4,)
    assert diag["level_losses"].sum().item() == pytest.approx(loss.item(), abs=1e-12)
    assert diag["tension"].item() == diag["level_losses"][-1].item()
    assert 0 < diag["positive_prob"].item() < 1


def test_loss_is_the_sum_over_levels_not_the_mean():
    z1, z2 = _pairs(5, 4, seed=11)
    shallow, _ = rkdo_loss(z1, z2, depth=1, beta=0.0)
    _, diag = rkdo_loss(z1, z2, depth=6, beta=0.0)
    # with beta = 0 every level sees the same q, and level 1 is the depth-1 loss
    assert diag["level_losses"][0].item() == pytest.approx(shallow.item(), abs=1e-12)
    assert diag["level_losses"].sum().item() > diag["level_losses"].mean().item()


def test_matches_kl_div_batchmean_at_depth_one():
    z1, z2 = _pairs(6, 3, seed=5)
    loss, _ = rkdo_loss(z1, z2, alpha=0.4, depth=1, tau=0.5, beta=0.0)
    s = z1 @ z2.T
    q = torch.softmax(s / 0.5, dim=1)
    p = 0.6 * torch.eye(6, dtype=s.dtype) + 0.4 * q
    expected = F.kl_div(q.log(), p, reduction="batchmean")
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)


def test_float32_stays_finite_where_q_underflows():
    # tau = 0.005: logits span 400, so exp underflows to exactly 0 in float32
    z1, z2 = (t.detach().float().requires_grad_() for t in _pairs(16, 8, seed=2))
    loss, _ = rkdo_loss(z1, z2, alpha=0.5, depth=8, tau=0.005, beta=0.5)
    assert torch.softmax((z1 @ z2.T) / 0.005, dim=1).eq(0).any()
    grads = torch.autograd.grad(loss, (z1, z2))
    assert math.isfinite(loss.item())
    assert all(torch.isfinite(g).all() for g in grads)


class _CountMatmuls(TorchDispatchMode):
    """Counts the aten matrix-product kernels run while active (forward only here)."""

    KERNELS = ("mm", "bmm", "addmm", "baddbmm", "matmul", "mv", "dot", "addmv")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.KERNELS:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("depth", [1, 3, 8])
def test_similarity_matrix_is_computed_once(depth):
    z1, z2 = _pairs(6, 4, seed=1)
    with _CountMatmuls() as counter:
        rkdo_loss(z1, z2, depth=depth)
    assert counter.count == 1


def test_matmul_counter_sees_a_recomputation():
    z1, z2 = _pairs(4, 3, seed=1)
    with _CountMatmuls() as counter:
        _ = z1 @ z2.T
        _ = torch.matmul(z1, z2.T) / 0.5
    assert counter.count == 2


def test_registry():
    assert set(OBJECTIVES) == {"rkdo", "icon"}
    assert OBJECTIVES["rkdo"] is rkdo_loss
    assert OBJECTIVES["icon"] is icon_loss


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"depth": True}, "depth"),
        ({"tau": 0.0}, "tau"),
        ({"tau": -1.0}, "tau"),
        ({"beta": 1.0}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"kl_eps": -1e-8}, "kl_eps"),
    ],
)
def test_bad_arguments_raise_one_line_usage_errors(options, name):
    z1, z2 = _pairs(3, 2, seed=0)
    with pytest.raises(UsageError) as info:
        rkdo_loss(z1, z2, **options)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={next(iter(options.values()))!r}")
