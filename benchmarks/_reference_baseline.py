"""The reference protocol's training loop, written literally, as the throughput baseline.

This is what the reference notebook (RKDO_benchmark_latest_efficient.ipynb,
see ../shared/reference/rkdo-reference-protocol.md) does per training step:

- a `Dataset` whose `__getitem__` makes a PIL image from the stored uint8
  array (as torchvision's CIFAR10 does) and applies a torchvision `Compose`
  twice: Resize(size), RandomResizedCrop(size, scale), RandomHorizontalFlip,
  RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), RandomGrayscale(0.2),
  ToTensor, Normalize(0.5, 0.5);
- a `DataLoader` with shuffle (num_workers=0 in the reference);
- `.to(device)`, `zero_grad()`, two forward passes, the loss, `backward()`,
  `step()` and `loss.item()` (a host sync every step);
- an RKDO loss that recomputes `z1 @ z2.T` and its softmax at every recursion
  level and takes the KL as `sum(p * log((p + eps) / (q + eps))) / B`.

The transform is built from the project's own `augmentation_for` spec, so a
dataset gets the same augmentation family on both sides: for synthetic and
CIFAR-style data that is exactly the reference recipe; for digits it is the
project's digits variant (scale (0.5, 1), no flip, brightness and contrast
jitter only, no grayscale, one channel). The model and optimiser are the
project's, so only the data path and the loss differ.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from rkdo_tune.data import AugmentSpec, ImageData, augmentation_for
from rkdo_tune.models import build_model

REFERENCE_EPSILON = 1e-8  # the notebook's epsilon inside log((p + eps) / (q + eps))
REFERENCE_BETA = 0.1  # the notebook's hard-coded temperature cooling over levels


def reference_transform(spec: AugmentSpec, *, channels: int) -> transforms.Compose:
    """The per-sample torchvision pipeline equivalent to `spec` (one view)."""
    size = spec.crop_size
    brightness, contrast, saturation, hue = spec.jitter
    steps: list[object] = [
        transforms.Resize(size),  # the reference resizes first (a no-op at the native size)
        transforms.RandomResizedCrop(size, scale=spec.crop_scale, ratio=spec.crop_ratio),
    ]
    if spec.flip:
        steps.append(transforms.RandomHorizontalFlip())
    if any(spec.jitter):
        jitter = transforms.ColorJitter(brightness, contrast, saturation, hue)
        steps.append(transforms.RandomApply([jitter], p=spec.jitter_p))
    if spec.grayscale_p > 0:
        steps.append(transforms.RandomGrayscale(p=spec.grayscale_p))
    steps += [transforms.ToTensor(), transforms.Normalize((0.5,) * channels, (0.5,) * channels)]
    return transforms.Compose(steps)


class ContrastiveImageDataset(Dataset):
    """Two augmented views per stored uint8 image, made one sample at a time on the CPU."""

    def __init__(self, images: Tensor, labels: Tensor, transform: transforms.Compose) -> None:
        """images: uint8 (N, C, H, W); labels: int64 (N,)."""
        # PIL wants (H, W) for one channel and (H, W, 3) for colour.
        array = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.arrays = array[..., 0] if array.shape[-1] == 1 else array
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        image = Image.fromarray(self.arrays[index])  # what torchvision's CIFAR10 does per item
        return self.transform(image), self.transform(image), int(self.labels[index])


def make_loader(data: ImageData, *, batch_size: int, num_workers: int, seed: int) -> DataLoader:
    """A shuffling DataLoader over the training split.

    drop_last keeps every timed batch full (the reference never reaches its
    last, partial batch: it stops after 10 or 11 batches). Workers are not
    persistent, as in the reference: each pass over the loader starts its
    own, and closing a pass ends them, so no worker keeps prefetching (and
    taking CPU) while something else is being timed.
    """
    spec = augmentation_for(data.name, image_size=data.image_size, channels=data.channels)
    dataset = ContrastiveImageDataset(
        data.train_images, data.train_labels, reference_transform(spec, channels=data.channels)
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def endless(loader: DataLoader) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Batches forever: a new epoch (reshuffled) whenever one runs out."""
    while True:
        yield from loader


def reference_rkdo_loss(
    z1: Tensor, z2: Tensor, *, alpha: float = 0.5, depth: int = 3, tau: float = 0.5
) -> Tensor:
    """The notebook's RKDO loss; z1, z2: (B, D) L2-normalised. Similarity recomputed per level."""
    batch = z1.shape[0]
    p = torch.zeros(batch, batch, device=z1.device)
    p.fill_diagonal_(1.0)
    q = F.softmax(torch.mm(z1, z2.t()) / tau, dim=1)
    losses = []
    for t in range(1, depth + 1):
        p = (1 - alpha) * p + alpha * q
        tau_t = tau * (1 - REFERENCE_BETA * (t / depth))
        q = F.softmax(torch.mm(z1, z2.t()) / tau_t, dim=1)
        eps = REFERENCE_EPSILON
        losses.append(torch.sum(p * torch.log((p + eps) / (q + eps))) / batch)
    return sum(losses)


class ReferenceLearner:
    """The notebook's per-step training loop around the project's model and Adam settings."""

    def __init__(
        self,
        data: ImageData,
        *,
        model_name: str,
        device: torch.device,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        alpha: float = 0.5,
        depth: int = 3,
        tau: float = 0.5,
    ) -> None:
        self.device = device
        self.model: nn.Module = build_model(model_name, in_channels=data.channels).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.alpha, self.depth, self.tau = alpha, depth, tau

    def train_steps(self, batches: Iterator[tuple[Tensor, Tensor, Tensor]], steps: int) -> float:
        """Run `steps` optimiser steps from `batches`; return the last loss (read every step)."""
        self.model.train()
        loss_value = float("nan")
        for _ in range(steps):
            views1, views2, _ = next(batches)
            views1, views2 = views1.to(self.device), views2.to(self.device)
            self.optimizer.zero_grad()
            z1 = self.model(views1)
            z2 = self.model(views2)
            loss = reference_rkdo_loss(z1, z2, alpha=self.alpha, depth=self.depth, tau=self.tau)
            loss.backward()
            self.optimizer.step()
            loss_value = loss.item()
        return loss_value


def uint8_views_match(data: ImageData) -> bool:
    """Sanity check: the dataset round-trips the stored pixels unchanged through PIL."""
    dataset = ContrastiveImageDataset(
        data.train_images[:2], data.train_labels[:2], transforms.PILToTensor()
    )
    view, _, _ = dataset[0]
    return bool(np.array_equal(view.numpy(), data.train_images[0].numpy()))
