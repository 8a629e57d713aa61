"""The temporal recursion: a loop-based reference, the reduction to the in-batch recursion,
persistence across batches, and the state round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rkdo_tune.errors import UsageError
from rkdo_tune.objectives import TemporalField, rkdo_loss, rkdo_temporal_loss

TOL = 1e-6
F64 = torch.float64


def _embed(rows: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = F.normalize(torch.randn(rows, dim, generator=g, dtype=F64), dim=1)
    z2 = F.normalize(z1 + 0.7 * torch.randn(rows, dim, generator=g, dtype=F64), dim=1)
    return z1, z2


class ReferenceField:
    """Entry-by-entry transcription of the design in temporal.py's docstring."""

    def __init__(self, num_samples: int, anchors: list[int], bank: torch.Tensor) -> None:
        self.anchors = anchors
        self.bank = [bank[m].clone() for m in range(len(anchors))]
        width = 1 + len(anchors)
        self.target = {n: [1.0] + [0.0] * (width - 1) for n in range(num_samples)}
        self.q: dict[int, list] = {}

    def loss(self, z1, z2, indices: list[int], *, alpha: float, tau: float):
        b = len(indices)
        row_of = {n: r for r, n in enumerate(indices)}
        columns = [
            z2[row_of[a]] if a in row_of else self.bank[m] for m, a in enumerate(self.anchors)
        ]
        total_loss = 0
        for i, n in enumerate(indices):
            logits = [(z1[i] * z2[i]).sum() / tau]
            keep = [True]
            for m, a in enumerate(self.anchors):
                logits.append((z1[i] * columns[m]).sum() / tau)
                keep.append(a != n)
            norm = sum(torch.exp(x) for x, k in zip(logits, keep, strict=True) if k)
            q = [
                torch.exp(x) / norm if k else torch.zeros((), dtype=F64)
                for x, k in zip(logits, keep, strict=True)
            ]
            q_prev = self.q.get(n, [v.item() for v in q])
            p = [(1 - alpha) * f + alpha * qp for f, qp in zip(self.target[n], q_prev, strict=True)]
            for pc, qc in zip(p, q, strict=True):
                if pc != 0.0:
                    total_loss = total_loss + pc * (math.log(pc) - torch.log(qc))
            self.target[n] = p
            self.q[n] = [v.item() for v in q]
        for m, a in enumerate(self.anchors):
            if a in row_of:
                self.bank[m] = z2[row_of[a]].detach().clone()
        return total_loss / b


def test_field_matches_loop_reference_over_differing_batches():
    num, dim, alpha, tau = 10, 4, 0.4, 0.5
    anchors = [7, 2, 5, 0]
    _, bank = _embed(len(anchors), dim, seed=99)
    field = TemporalField(num_samples=num, anchor_indices=torch.tensor(anchors), dim=dim, dtype=F64)
    field.init_bank(bank)
    reference = ReferenceField(num, anchors, bank)
    # batches overlap, revisit samples, and hold some anchors but not others
    batches = [[0, 1, 2, 3], [4, 5, 6], [2, 8, 9, 1], [7, 0, 3, 5, 4], [1, 2, 3], [9, 6]]
    for step, batch in enumerate(batches):
        z1, z2 = _embed(len(batch), dim, seed=step)  # a model that moves between steps
        z1.requires_grad_()
        z2.requires_grad_()
        loss, diag = field.loss(z1, z2, torch.tensor(batch), alpha=alpha, tau=tau)
        ref = reference.loss(z1, z2, batch, alpha=alpha, tau=tau)
        assert loss.item() == pytest.approx(ref.item(), abs=TOL, rel=TOL), step
        assert diag["tension"].item() == pytest.approx(ref.item(), abs=TOL, rel=TOL)
        assert not any(v.requires_grad for v in diag.values())
        grads = torch.autograd.grad(loss, (z1, z2))
        ref_grads = torch.autograd.grad(ref, (z1, z2))
        for got, want in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(got, want, atol=TOL, rtol=TOL)
    for n in range(num):
        torch.testing.assert_close(field.target[n], torch.tensor(reference.target[n], dtype=F64))
    torch.testing.assert_close(field.bank, torch.stack(reference.bank))
    assert field.visited.tolist() == [n in {i for b in batches for i in b} for n in range(num)]


@pytest.mark.parametrize(("alpha", "depth"), [(0.5, 3), (0.2, 1), (0.9, 8), (1.0, 4)])
def test_reduces_to_the_in_batch_recursion_for_a_frozen_model(alpha, depth):
    num, dim, tau = 6, 5, 0.4
    g = torch.Generator().manual_seed(depth)
    anchors = torch.randperm(num, generator=g)  # all samples, in some order
    order = torch.randperm(num, generator=g)  # the one batch: all samples, fixed order
    z1, z2 = _embed(num, dim, seed=depth)  # frozen model: rows follow `order`
    _, diag = rkdo_loss(z1, z2, alpha=alpha, depth=depth, tau=tau, beta=0.0)

    field = TemporalField(num_samples=num, anchor_indices=anchors, dim=dim, dtype=F64)
    field.init_bank(torch.zeros(num, dim, dtype=F64))  # every anchor is live in the batch
    steps = [field.loss(z1, z2, order, alpha=alpha, tau=tau)[0].item() for _ in range(depth)]
    torch.testing.assert_close(
        torch.tensor(steps, dtype=F64), diag["level_losses"], atol=TOL, rtol=0
    )


def test_self_anchor_is_masked_and_positive_comes_first():
    z1, z2 = _embed(3, 4, seed=1)
    anchors, _ = _embed(2, 4, seed=2)
    result = rkdo_temporal_loss(
        z1,
        z2,
        anchors,
        self_anchor=torch.tensor([1, -1, 0]),
        prev_target=F.one_hot(torch.zeros(3, dtype=torch.long), 3).to(F64),
        prev_q=torch.zeros(3, 3, dtype=F64),
        first_visit=torch.ones(3, dtype=torch.bool),
        alpha=0.5,
        tau=0.5,
    )
    assert result.q[0, 2] == 0 and result.q[2, 1] == 0
    assert result.target[0, 2] == 0 and result.target[2, 1] == 0
    assert (result.q[1] > 0).all()
    torch.testing.assert_close(result.q.sum(1), torch.ones(3, dtype=F64))
    expected_pos = torch.exp((z1[1] @ z2[1]) / 0.5) / (
        torch.exp((z1[1] @ z2[1]) / 0.5) + torch.exp((anchors @ z1[1]) / 0.5).sum()
    )
    assert result.q[1, 0].item() == pytest.approx(expected_pos.item())
    assert result.diagnostics["positive_prob"].item() == pytest.approx(result.q[:, 0].mean().item())
    assert math.isfinite(result.loss.item())


def test_state_dict_round_trips():
    num, dim = 12, 3
    anchors = torch.tensor([3, 8, 11, 0, 5])
    _, bank = _embed(5, dim, seed=4)

    def fresh() -> TemporalField:
        field = TemporalField(num_samples=num, anchor_indices=anchors, dim=dim)
        return field

    field = fresh()
    field.init_bank(bank.float())
    for step, batch in enumerate([[0, 1, 2, 3], [3, 4, 5, 6], [7, 8, 9, 10]]):
        z1, z2 = _embed(len(batch), dim, seed=10 + step)
        field.loss(z1.float(), z2.float(), torch.tensor(batch), alpha=0.5, tau=0.5)
    state = field.state_dict()
    restored = fresh()
    restored.load_state_dict(state)
    assert restored.bank_ready
    for key, value in state.items():
        torch.testing.assert_close(restored.state_dict()[key], value, rtol=0, atol=0)

    z1, z2 = _embed(4, dim, seed=50)
    batch = torch.tensor([1, 3, 8, 11])  # revisits and anchors
    want, _ = field.loss(z1.float(), z2.float(), batch, alpha=0.5, tau=0.5)
    got, _ = restored.loss(z1.float(), z2.float(), batch, alpha=0.5, tau=0.5)
    assert got.item() == want.item()
    # the snapshot is a copy: later steps do not change it
    assert not torch.equal(state["target"], field.target)


def test_state_from_another_anchor_set_is_refused():
    field = TemporalField(num_samples=6, anchor_indices=torch.tensor([0, 1]), dim=2)
    other = TemporalField(num_samples=6, anchor_indices=torch.tensor([0, 2]), dim=2)
    with pytest.raises(UsageError, match="anchor set"):
        field.load_state_dict(other.state_dict())


def test_loss_before_init_bank_is_an_error():
    field = TemporalField(num_samples=4, anchor_indices=torch.tensor([0, 1]), dim=2)
    z1, z2 = _embed(2, 2, seed=0)
    with pytest.raises(RuntimeError, match="init_bank"):
        field.loss(z1.float(), z2.float(), torch.tensor([2, 3]), alpha=0.5, tau=0.5)


@pytest.mark.parametrize(("options", "name"), [({"alpha": 0.0}, "alpha"), ({"tau": -1.0}, "tau")])
def test_bad_arguments_raise_usage_errors(options, name):
    field = TemporalField(num_samples=4, anchor_indices=torch.tensor([0, 1]), dim=2)
    field.init_bank(torch.zeros(2, 2))
    z1, z2 = _embed(2, 2, seed=0)
    with pytest.raises(UsageError, match=f"^{name}="):
        field.loss(
            z1.float(), z2.float(), torch.tensor([2, 3]), **{"alpha": 0.5, "tau": 0.5, **options}
        )


def test_bad_anchor_indices_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        TemporalField(num_samples=4, anchor_indices=torch.tensor([1, 1]), dim=2)
    with pytest.raises(ValueError, match="lie in"):
        TemporalField(num_samples=4, anchor_indices=torch.tensor([0, 4]), dim=2)
