"""`shapes`: generated images whose class is a shape, and nothing a pixel probe can read.

Each image shows one of ten shapes (`SHAPES`) at a random position, scale,
rotation and colour on a plain background (a random colour with a faint
gradient) plus pixel noise. The shape is lighter or darker than its background
by at least 0.3 in luma, at random: the shapes' augmentation greys a fifth of
the views and jitters hue and saturation hard, and a shape that differed only
in hue vanished from them (a supervised small_cnn then read 0.2 after 300
steps; with the luma step, 0.9). Neither colour nor brightness tells the class;
it lives in the outline. At 32 px, 10 classes and 2500 images a linear probe on
raw pixels reads 0.11 (5-NN 0.24), an untrained small_cnn 0.32, and small_cnn
trained for 300 CPU steps 0.47 (RKDO) and 0.55 (I-Con), 0.85 with labels:
benchmarks/README.md §6 has the numbers.

Deterministic from a seed (`SHAPES_SEED`), generated in about a second, no
download. Rendering is a signed distance per pixel, in each shape's own frame,
turned into an antialiased coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from rkdo_tune.data.augment import GRAY_WEIGHTS

SHAPES_SEED = 2025_0518
SHAPES = (
    "disc",
    "square",
    "triangle",
    "flower",
    "plus",
    "ring",
    "crescent",
    "bar",
    "frame",
    "two dots",
)
_NOISE = 0.03
_FIELD = 0.03  # amplitude of each plane wave of the background
_SCALE = (0.55, 0.85)  # circumradius, in half-images
_CONTRAST = 0.35  # least luma step between a shape and its background
_TINT = 0.2

Sdf = Callable[[Tensor, Tensor], Tensor]  # (x, y) in the shape's frame -> signed distance


def _box(x: Tensor, y: Tensor, half_x: float, half_y: float) -> Tensor:
    return torch.maximum(x.abs() - half_x, y.abs() - half_y)


def _triangle(x: Tensor, y: Tensor) -> Tensor:
    """Equilateral, circumradius 1: the largest of three half-plane distances."""
    sides = [
        x * math.cos(a) + y * math.sin(a) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)
    ]
    return torch.stack(sides).amax(dim=0) - 0.5


def _flower(x: Tensor, y: Tensor) -> Tensor:
    return torch.hypot(x, y) - (0.6 + 0.35 * torch.cos(5 * torch.atan2(y, x)))


_SDF: dict[str, Sdf] = {
    "disc": lambda x, y: torch.hypot(x, y) - 0.85,
    "square": lambda x, y: _box(x, y, 0.72, 0.72),
    "triangle": _triangle,
    "flower": _flower,
    "plus": lambda x, y: torch.minimum(_box(x, y, 0.95, 0.28), _box(x, y, 0.28, 0.95)),
    "ring": lambda x, y: (torch.hypot(x, y) - 0.7).abs() - 0.2,
    "crescent": lambda x, y: torch.maximum(
        torch.hypot(x, y) - 0.9, 0.75 - torch.hypot(x - 0.45, y)
    ),
    "bar": lambda x, y: _box(x, y, 0.95, 0.25),
    "frame": lambda x, y: (torch.maximum(x.abs(), y.abs()) - 0.65).abs() - 0.17,
    "two dots": lambda x, y: torch.minimum(
        torch.hypot(x - 0.5, y) - 0.38, torch.hypot(x + 0.5, y) - 0.38
    ),
}


def _uniform(g: torch.Generator, *shape: int, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (S, S) each, in [-1, 1]."""
    axis = (torch.arange(size) + 0.5) * (2.0 / size) - 1.0
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return xx, yy


def _background(n: int, size: int, g: torch.Generator) -> Tensor:
    """(N, 3, S, S): a smooth random colour field (a few random plane waves per channel)."""
    xx, yy = _grid(size)
    base = _uniform(g, n, 3, 1, 1, low=0.25, high=0.75)
    field = torch.zeros(n, 3, size, size)
    for _ in range(3):
        angle = _uniform(g, n, 1, 1, 1, low=0.0, high=math.pi)
        freq = _uniform(g, n, 1, 1, 1, low=0.5, high=2.0)
        phase = _uniform(g, n, 1, 1, 1, low=0.0, high=2 * math.pi)
        amplitude = _uniform(g, n, 3, 1, 1, low=-_FIELD, high=_FIELD)
        proj = xx * torch.cos(angle) + yy * torch.sin(angle)
        field += amplitude * torch.cos(math.pi * freq * proj + phase)
    return base + field


def _paint(images: Tensor, coverage: Tensor, colour: Tensor) -> Tensor:
    """Blend colour (N, 3) over images (N, 3, S, S) by coverage (N, S, S) in [0, 1]."""
    alpha = coverage[:, None]
    return images * (1 - alpha) + colour[:, :, None, None] * alpha


def _shape_coverage(labels: Tensor, size: int, g: torch.Generator) -> Tensor:
    """(N, S, S) antialiased coverage of each label's shape under a random pose."""
    n = labels.shape[0]
    xx, yy = _grid(size)
    scale = _uniform(g, n, 1, 1, low=_SCALE[0], high=_SCALE[1])
    room = 1.0 - 0.8 * scale  # keep most of the shape inside the image
    centre = (torch.rand(n, 2, 1, 1, generator=g) * 2 - 1) * room[:, None]
    turn = _uniform(g, n, 1, 1, low=0.0, high=2 * math.pi)
    px, py = xx - centre[:, 0], yy - centre[:, 1]
    cos, sin = torch.cos(turn), torch.sin(turn)
    qx, qy = (cos * px + sin * py) / scale, (-sin * px + cos * py) / scale
    sdf = torch.empty(n, size, size)
    for index, name in enumerate(SHAPES):
        chosen = labels == index
        if chosen.any():
            sdf[chosen] = _SDF[name](qx[chosen], qy[chosen])
    softness = (1.0 / size) / scale  # half a pixel, in the shape's frame
    return torch.sigmoid(-sdf / softness)


def _shape_colours(background: Tensor, g: torch.Generator) -> Tensor:
    """(N, 3) colours whose luma differs from each background's (N, 3, S, S) mean by
    _CONTRAST to _CONTRAST + 0.25 (at least 0.3 once clipped to [0, 1]).

    Luma, not just colour: the shapes' augmentation turns a fifth of the views grey
    and jitters hue, which would erase a shape that differs only in hue.
    """
    n = background.shape[0]
    luma_weights = torch.tensor(GRAY_WEIGHTS)  # the luma the augmentation's grayscale keeps
    base = (background.mean(dim=(2, 3)) * luma_weights).sum(dim=1)  # (N,)
    step = _uniform(g, n, low=_CONTRAST, high=_CONTRAST + 0.25)
    # Lighter or darker at random, except where the background leaves no room.
    up = torch.rand(n, generator=g) < 0.5
    up = torch.where(base + _CONTRAST > 0.95, False, torch.where(base - _CONTRAST < 0.05, True, up))
    luma = torch.where(up, base + step, base - step).clamp(0.0, 1.0)
    tint = _uniform(g, n, 3, low=-_TINT, high=_TINT)
    tint = tint - (tint * luma_weights).sum(dim=1, keepdim=True)  # zero-luma tint
    return (luma[:, None] + tint).clamp(0, 1)


def shapes_images(size: int, num_classes: int, samples: int) -> tuple[Tensor, Tensor]:
    """uint8 (N, 3, S, S) images and int64 (N,) labels: the first num_classes shapes.

    Balanced labels in a fixed shuffled order; the same for the same arguments.
    """
    if not 2 <= num_classes <= len(SHAPES):
        raise ValueError(f"shapes has 2 to {len(SHAPES)} classes, got {num_classes}")
    g = torch.Generator().manual_seed(SHAPES_SEED)
    labels = (torch.arange(samples) % num_classes)[torch.randperm(samples, generator=g)]
    background = _background(samples, size, g)
    colours = _shape_colours(background, g)
    images = _paint(background, _shape_coverage(labels, size, g), colours)
    images = images + _NOISE * torch.randn(images.shape, generator=g)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels.to(torch.int64)
