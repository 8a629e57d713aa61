"""RKDO with the temporal recursion: the paper's response field, carried across steps.

The paper's Section 3 (eq. 3) describes the target p as an EMA of past q's
over training iterations; the reference code does not implement it (its
recursion restarts at p_0 = I in every batch, see ``rkdo.py``). This module
implements it as follows.

Columns. A fixed anchor set of M dataset indices is chosen by the caller. A
memory bank ``A`` (M, D) holds the latest detached second-view embedding of
each anchor. For a batch with dataset indices ``idx`` (B,), row i is compared
with M + 1 columns: its own positive ``z2_i`` first, then the M anchors::

    logits_i = [z1_i · z2_i, z1_i · A'_1, ..., z1_i · A'_M] / tau

where ``A'_m`` is the LIVE ``z2`` row (with grad) of an anchor that is in the
batch, and the bank row otherwise. The anchor that is sample i itself is
masked out of row i (its q is exactly 0): it is the positive already.

Field. Per dataset sample n the field keeps ``F[n]`` (1+M,), its target from
its previous visit, initialised to one-hot on the positive column (p_0 = I),
and ``Q[n]`` (1+M,), its q at that visit. At a visit, with
``q = softmax(logits)``::

    q_prev = Q[n]           (or q.detach() on the first visit: the in-batch q_0)
    p      = (1 - alpha) F[n] + alpha q_prev
    loss   = KL_batchmean(p, q)

then ``F[n] <- p``, ``Q[n] <- q.detach()`` and the bank rows of the anchors in
the batch are replaced by their ``z2.detach()``. The recursion level is thus
the visit count of each sample; ``depth`` plays no part in temporal mode, and
neither does the per-level cooling ``beta`` (cool with a per-step temperature
schedule instead, passed as ``tau``).

The target is always detached here: it is built from q's of past steps (and,
on a first visit, from a detached q). ``detach_target`` therefore has no
effect in temporal mode; it behaves like ``detach_target=True``.

Reduction. With anchors = the whole dataset, a batch = the whole dataset, a
frozen model and beta = 0, step k's loss equals the in-batch level-k term of
``rkdo_loss`` (KL is invariant to putting the positive column first). The
tests check this.

Memory: F and Q are (N, 1+M) each, float32 by default, on the training
device; the bank is (M, D). Sample indices within one batch must be distinct.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.config import check_range
from rkdo_tune.errors import UsageError
from rkdo_tune.objectives._divergence import check_pair, kl_batchmean


class TemporalResult(NamedTuple):
    loss: Tensor  # 0-d, with grad
    diagnostics: dict[str, Tensor]  # detached: tension, positive_prob
    target: Tensor  # (B, 1+M) detached p, the new F rows
    q: Tensor  # (B, 1+M) detached q, the new Q rows


def rkdo_temporal_loss(
    z1: Tensor,
    z2: Tensor,
    anchors: Tensor,
    *,
    self_anchor: Tensor,
    prev_target: Tensor,
    prev_q: Tensor,
    first_visit: Tensor,
    alpha: float,
    tau: float,
) -> TemporalResult:
    """One visit of the temporal recursion, as a pure function.

    Shapes: ``z1``, ``z2`` (B, D); ``anchors`` (M, D), the anchor columns
    (live z2 rows with grad for anchors in the batch, bank rows otherwise);
    ``self_anchor`` (B,) long, the anchor column of sample i itself or -1;
    ``prev_target`` (B, 1+M), F rows (one-hot on column 0 before any visit);
    ``prev_q`` (B, 1+M), Q rows (ignored where ``first_visit``);
    ``first_visit`` (B,) bool. Column 0 is the positive pair.
    """
    check_pair(z1, z2)
    check_range("alpha", alpha)  # the config's rules, for callers that bypass a TrialConfig
    check_range("tau", tau)
    positive = (z1 * z2).sum(1, keepdim=True)
    cross = z1 @ anchors.T
    columns = torch.arange(anchors.shape[0], device=cross.device)
    cross = cross.masked_fill(columns[None, :] == self_anchor[:, None], -torch.inf)
    log_q = F.log_softmax(torch.cat([positive, cross], dim=1) / tau, dim=1)
    q = log_q.detach().exp()
    q_prev = torch.where(first_visit[:, None], q, prev_q.to(q.dtype))
    target = (1 - alpha) * prev_target.to(q.dtype) + alpha * q_prev
    loss = kl_batchmean(target.log(), log_q)
    diagnostics = {"tension": loss.detach(), "positive_prob": q[:, 0].mean()}
    return TemporalResult(loss, diagnostics, target, q)


class TemporalField:
    """The persisted state of the temporal recursion: F, Q, visit flags and the anchor bank."""

    def __init__(
        self,
        *,
        num_samples: int,
        anchor_indices: Tensor,
        dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        anchors = torch.as_tensor(anchor_indices, dtype=torch.long, device=device)
        count = anchors.numel()
        if anchors.ndim != 1 or count == 0:
            raise ValueError(f"anchor_indices must be a non-empty 1-D tensor, got {anchors.shape}")
        if int(anchors.min()) < 0 or int(anchors.max()) >= num_samples:
            raise ValueError(f"anchor_indices must lie in [0, {num_samples})")
        if anchors.unique().numel() != count:
            raise ValueError("anchor_indices must be distinct")
        self.num_samples, self.dim, self.dtype = num_samples, dim, dtype
        self.device = anchors.device
        self.anchor_indices = anchors
        self._slot_of_sample = torch.full((num_samples,), -1, dtype=torch.long, device=self.device)
        self._slot_of_sample[anchors] = torch.arange(count, device=self.device)
        self._row_scratch = torch.full_like(self._slot_of_sample, -1)  # batch row of a sample
        self.target = torch.zeros(num_samples, 1 + count, dtype=dtype, device=self.device)
        self.target[:, 0] = 1
        self.q = torch.zeros_like(self.target)
        self.visited = torch.zeros(num_samples, dtype=torch.bool, device=self.device)
        self.bank = torch.zeros(count, dim, dtype=dtype, device=self.device)
        self.bank_ready = False

    def init_bank(self, anchor_embeddings: Tensor) -> None:
        """Fill the bank with (M, D) embeddings of the anchors, in ``anchor_indices`` order."""
        if anchor_embeddings.shape != self.bank.shape:
            raise ValueError(
                f"anchor_embeddings must be {tuple(self.bank.shape)}, "
                f"got {tuple(anchor_embeddings.shape)}"
            )
        self.bank.copy_(anchor_embeddings.detach())
        self.bank_ready = True

    def loss(
        self, z1: Tensor, z2: Tensor, indices: Tensor, *, alpha: float, tau: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of one batch: z1, z2 (B, D); indices (B,) distinct dataset indices.

        Updates the field and the bank. Diagnostics: tension, positive_prob.
        """
        if not self.bank_ready:
            raise RuntimeError("TemporalField.init_bank must be called before the first loss")
        idx = indices.to(device=self.device, dtype=torch.long)
        self._row_scratch[idx] = torch.arange(idx.shape[0], device=self.device)
        row_of_anchor = self._row_scratch[self.anchor_indices]  # (M,), -1 if not in the batch
        self._row_scratch[idx] = -1
        live = (row_of_anchor >= 0)[:, None]
        anchors = torch.where(live, z2[row_of_anchor.clamp_min(0)], self.bank.to(z2.dtype))
        result = rkdo_temporal_loss(
            z1,
            z2,
            anchors,
            self_anchor=self._slot_of_sample[idx],
            prev_target=self.target[idx],
            prev_q=self.q[idx],
            first_visit=~self.visited[idx],
            alpha=alpha,
            tau=tau,
        )
        self.target[idx] = result.target.to(self.dtype)
        self.q[idx] = result.q.to(self.dtype)
        self.visited[idx] = True
        self.bank.copy_(anchors.detach())
        return result.loss, result.diagnostics

    def state_dict(self) -> dict[str, Tensor]:
        """A snapshot (copies) of the field, for checkpoints."""
        return {
            "anchor_indices": self.anchor_indices.clone(),
            "target": self.target.clone(),
            "q": self.q.clone(),
            "visited": self.visited.clone(),
            "bank": self.bank.clone(),
            "bank_ready": torch.tensor(self.bank_ready),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore a snapshot taken from a field with the same samples, anchors and dim."""
        anchors = state["anchor_indices"].to(self.device)
        if not torch.equal(anchors, self.anchor_indices):
            raise UsageError(
                "temporal field state: its anchor set differs from this run's "
                "(different seed, dataset or temporal_anchors?)"
            )
        for name in ("target", "q", "visited", "bank"):
            mine, theirs = getattr(self, name), state[name]
            if theirs.shape != mine.shape:
                raise UsageError(
                    f"temporal field state: '{name}' has shape {tuple(theirs.shape)}, "
                    f"expected {tuple(mine.shape)}"
                )
            mine.copy_(theirs)
        self.bank_ready = bool(state["bank_ready"])
