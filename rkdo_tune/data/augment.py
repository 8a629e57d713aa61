"""Batched augmentation on whatever device the images are on.

The reference applies, to each image and twice per image, torchvision's
RandomResizedCrop(size, scale=(0.2, 1.0)), RandomHorizontalFlip(),
RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), RandomGrayscale(p=0.2)
and Normalize(mean 0.5, std 0.5). `augment_batch` does the same to a whole
uint8 batch at once, with independent random parameters per sample:

- Resized crop and flip: one sampling grid per sample and one `grid_sample`
  call (bilinear). Crop boxes follow torchvision's `get_params` (10 tries of
  area in `scale` and log-uniform aspect ratio in `ratio`, then the central
  fallback crop), vectorised over the batch. The grid samples each box the
  way torchvision's resize does (pixel centres, clamped to the box), so for
  crops no larger than the output size (every spec `augmentation_for`
  makes: crop size = image size) the result equals torchvision's
  `resized_crop` up to float rounding. Larger crops are downsampled without
  antialiasing.
- Colour jitter: brightness, contrast, saturation and hue, with
  torchvision's formulas (`adjust_*`) and factor ranges, applied with
  probability `jitter_p` and in a random order drawn per sample, as
  `ColorJitter` does (`_color_jitter` says how that stays batched).
  Saturation and hue are skipped on 1-channel images (as torchvision does),
  and so is any component whose strength is 0.
- Grayscale with probability `grayscale_p` (ITU-R 601-2 luma, as torchvision).

Given uint8 images, torchvision returns to uint8 after each step (its blends
truncate); here every step after the crop stays float, so the two differ by
that quantisation (under 1/255 per step) and by nothing else.

All randomness comes from the `generator` passed in: the same generator state
gives the same output. Random numbers are drawn on the generator's device
(CPU or CUDA) and moved to the images' device; they are a few numbers per
sample, never per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.data.catalog import DATASETS
from rkdo_tune.errors import UsageError

CROP_TRIES = 10
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)
NO_OP = 4  # a jitter pass that leaves the sample alone


@dataclass(frozen=True)
class AugmentSpec:
    """What `augment_batch` does; the defaults are the reference's SimCLR-style recipe.

    `jitter` is (brightness, contrast, saturation, hue) as in torchvision's
    ColorJitter: factors uniform in [max(0, 1 - x), 1 + x] and a hue shift
    uniform in [-hue, hue].
    """

    crop_size: int
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if self.crop_size < 1:
            raise UsageError(f"augmentation crop_size must be positive, got {self.crop_size}")
        if not 0 < lo <= hi <= 1:
            raise UsageError(
                f"augmentation crop_scale must be 0 < low <= high <= 1, got {(lo, hi)}"
            )
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise UsageError(
                f"augmentation crop_ratio must be 0 < low <= high, got {self.crop_ratio}"
            )
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise UsageError(
                "augmentation jitter must be 4 non-negative strengths "
                f"(brightness, contrast, saturation, hue <= 0.5), got {self.jitter}"
            )
        for key in ("jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, key) <= 1:
                raise UsageError(f"augmentation {key} must be in [0, 1], got {getattr(self, key)}")


def augmentation_for(dataset: str, *, image_size: int, channels: int) -> AugmentSpec:
    """The augmentation a dataset is trained with.

    cifar10, cifar100, stl10 and synthetic get the reference recipe at their
    image size. digits get a milder one: digits are not mirror-symmetric (no
    flip), 8 pixels leave little to crop away (scale 0.5 to 1), and 1 channel
    has no colour (brightness and contrast jitter only, no grayscale). shapes
    get SimCLR's strong colour distortion (jitter 0.8, hue 0.2) and crops of at
    least 35%: a shape's class is its outline, so neither its colour nor a crop
    that misses it may tell two images apart.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    spec = AugmentSpec(crop_size=image_size)
    if dataset == "digits":
        spec = replace(spec, crop_scale=(0.5, 1.0), flip=False)
    if dataset == "shapes":
        spec = replace(spec, crop_scale=(0.35, 1.0), jitter=(0.8, 0.8, 0.8, 0.2))
    if channels == 1:
        brightness, contrast, _, _ = spec.jitter
        spec = replace(spec, jitter=(brightness, contrast, 0.0, 0.0), grayscale_p=0.0)
    return spec


def normalise(images: Tensor, *, size: int | None = None) -> Tensor:
    """uint8 (B, C, H, W) -> float32 in [-1, 1] (mean 0.5, std 0.5): the eval path.

    With `size` different from the images' size, resize first (bilinear,
    antialiased), like the reference's Resize for test images.
    """
    if images.dtype != torch.uint8:
        raise ValueError(f"normalise needs uint8 images, got {images.dtype}")
    x = images.float().div_(255)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp_(0, 1)
    return x.mul_(2).sub_(1)


def two_views(
    images: Tensor, spec: AugmentSpec, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Two independent augmentations of each image, made in one batched call."""
    views = augment_batch(torch.cat([images, images]), spec, generator)
    first, second = views.chunk(2)
    return first, second


def augment_batch(images: Tensor, spec: AugmentSpec, generator: torch.Generator) -> Tensor:
    """uint8 (B, C, H, W) -> augmented float32 (B, C, S, S), normalised to [-1, 1]."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"augment_batch needs uint8 (B, 1 or 3, H, W) images, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    n, channels, height, width = images.shape
    params = _sample_params(n, height=height, width=width, spec=spec, generator=generator)
    params = {key: value.to(images.device) for key, value in params.items()}

    grid = crop_grid(
        params["boxes"], params["flip"], height=height, width=width, size=spec.crop_size
    )
    x = F.grid_sample(
        images.float().div_(255), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    x = _color_jitter(x, params["order"], params["factors"], params["jitter"], spec.jitter)
    if channels == 3 and spec.grayscale_p > 0:
        x = torch.where(params["gray"][:, None, None, None], rgb_to_grayscale(x).expand_as(x), x)
    return x.mul_(2).sub_(1)


# --- random parameters ---------------------------------------------------------


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> Tensor:
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * u


def sample_crop_boxes(
    n: int,
    *,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> Tensor:
    """(n, 4) int64 boxes (top, left, h, w), as torchvision's RandomResizedCrop.get_params.

    Each sample makes CROP_TRIES tries at once; the first that fits wins, and
    samples with none get the central fallback crop.
    """
    area = height * width
    target_area = area * _uniform((n, CROP_TRIES), scale[0], scale[1], generator)
    log_ratio = _uniform((n, CROP_TRIES), math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    w = torch.sqrt(target_area * aspect).round()
    h = torch.sqrt(target_area / aspect).round()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first try that fits
    found = fits.any(dim=1)

    # torchvision's fallback: the largest central crop within the ratio range.
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(height * max(ratio)), height
    else:
        fw, fh = width, height
    w = torch.where(found, w.gather(1, first).squeeze(1), fw)
    h = torch.where(found, h.gather(1, first).squeeze(1), fh)

    # Uniform integer offsets, as torch.randint(0, height - h + 1).
    top = (_uniform((n,), 0, 1, generator) * (height - h + 1)).floor().clamp_max_(height - h)
    left = (_uniform((n,), 0, 1, generator) * (width - w + 1)).floor().clamp_max_(width - w)
    top = torch.where(found, top, (height - fh) // 2)
    left = torch.where(found, left, (width - fw) // 2)
    return torch.stack([top, left, h, w], dim=1).to(torch.int64)


def _sample_params(
    n: int, *, height: int, width: int, spec: AugmentSpec, generator: torch.Generator
) -> dict[str, Tensor]:
    boxes = sample_crop_boxes(
        n,
        height=height,
        width=width,
        scale=spec.crop_scale,
        ratio=spec.crop_ratio,
        generator=generator,
    )
    flip = _uniform((n,), 0, 1, generator) < (0.5 if spec.flip else 0.0)
    jitter = _uniform((n,), 0, 1, generator) < spec.jitter_p
    # A random order of the four jitter operations per sample (argsort of uniforms).
    order = torch.rand((n, 4), generator=generator, device=generator.device).argsort(dim=1)
    b, c, s, hue = spec.jitter
    factors = torch.stack(
        [
            _uniform((n,), max(0.0, 1 - b), 1 + b, generator),
            _uniform((n,), max(0.0, 1 - c), 1 + c, generator),
            _uniform((n,), max(0.0, 1 - s), 1 + s, generator),
            _uniform((n,), -hue, hue, generator),
        ],
        dim=1,
    ).float()
    gray = _uniform((n,), 0, 1, generator) < spec.grayscale_p
    return {
        "boxes": boxes,
        "flip": flip,
        "jitter": jitter,
        "order": order,
        "factors": factors,
        "gray": gray,
    }


# --- geometry ------------------------------------------------------------------


def crop_grid(boxes: Tensor, flip: Tensor, *, height: int, width: int, size: int) -> Tensor:
    """grid_sample grid (n, size, size, 2) that crops `boxes`, resizes to `size`, flips.

    Output pixel k samples the box at pixel coordinate
    `left + (k + 0.5) * w / size - 0.5`, clamped to the box: what bilinear
    `interpolate(align_corners=False)` does to the cropped image. Flipped
    samples read their columns in reverse.
    """
    top, left, h, w = boxes.to(torch.float32).unbind(dim=1)
    steps = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size

    def axis(start: Tensor, length: Tensor, extent: int) -> Tensor:
        pos = start[:, None] + steps[None, :] * length[:, None] - 0.5
        pos = torch.minimum(torch.maximum(pos, start[:, None]), (start + length - 1)[:, None])
        return (2 * pos + 1) / extent - 1  # pixel coordinate -> [-1, 1], align_corners=False

    xs = axis(left, w, width)
    xs = torch.where(flip[:, None], xs.flip(1), xs)
    ys = axis(top, h, height)
    n = boxes.shape[0]
    return torch.stack(
        [xs[:, None, :].expand(n, size, size), ys[:, :, None].expand(n, size, size)], dim=-1
    )


# --- colour --------------------------------------------------------------------


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) float -> (B, 1, H, W) luma."""
    r, g, b = x.unbind(dim=1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of (B, 3, H, W) RGB images in [0, 1] by per-sample `shift` (B,) turns.

    The same function as torchvision's adjust_hue (RGB -> HSV, shift H,
    HSV -> RGB), written without the HSV round trip: with max M, min m and
    chroma C = M - m, the hue in sextants is h6, and channel n of the result is
    M - C * clamp(min(k, 4 - k), 0, 1) with k = (n + h6 + 6 * shift) mod 6
    and n = 5, 3, 1 for red, green and blue.
    """
    r, g, b = x.unbind(dim=1)
    top = x.amax(dim=1)
    chroma = top - x.amin(dim=1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    # torchvision's priority: red if it is the max, else green, else blue.
    h6 = torch.where(
        top == r, (g - b) / safe, torch.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    h6 = (h6 + 6.0 * shift.to(x.dtype)[:, None, None]).unsqueeze(1)
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + h6, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return top.unsqueeze(1) - chroma.unsqueeze(1) * ramp


def _color_jitter(
    x: Tensor,
    order: Tensor,
    factors: Tensor,
    apply: Tensor,
    strength: tuple[float, float, float, float],
) -> Tensor:
    """Per-sample ColorJitter: the four operations in each sample's `order`.

    Brightness, contrast and saturation are blends (see `_blend_pass`); hue
    is computed once for the whole batch. A sample's blends before its hue
    run in up to three passes before the hue step and those after it in up
    to three passes after, so each sample sees its own order exactly. A pass
    leaves a sample unchanged (blend factor 1) where it has nothing to do.
    """
    rgb = x.shape[1] == 3
    blends = [strength[0] > 0, strength[1] > 0, rgb and strength[2] > 0]
    hue = rgb and strength[3] > 0
    if not (any(blends) or hue):
        return x
    positions = torch.arange(4, device=order.device)
    is_hue = order == HUE
    if not hue:
        # The order without hue: sort the hue position last, keep the first three.
        rest = torch.where(is_hue, 4, positions).argsort(dim=1)[:, :3]
        for column in order.gather(1, rest).unbind(dim=1):
            x = _blend_pass(x, column, factors, apply, blends)
        return x
    hue_position = is_hue.to(torch.uint8).argmax(dim=1, keepdim=True)
    before = torch.where(positions < hue_position, order, NO_OP)[:, :3]
    after = torch.where(positions > hue_position, order, NO_OP)[:, 1:]
    if any(blends):
        for column in before.unbind(dim=1):
            x = _blend_pass(x, column, factors, apply, blends)
    x = torch.where(apply.view(-1, 1, 1, 1), adjust_hue(x, factors[:, HUE]), x)
    if any(blends):
        for column in after.unbind(dim=1):
            x = _blend_pass(x, column, factors, apply, blends)
    return x


def _blend_pass(
    x: Tensor, op: Tensor, factors: Tensor, apply: Tensor, enabled: list[bool]
) -> Tensor:
    """Each sample does operation op[i] (or nothing) as torchvision's blend.

    torchvision's brightness, contrast and saturation are all
    clamp(f * x + (1 - f) * target, 0, 1), with target 0, the mean luma of the
    image, and the luma image. f = 1 (exactly the identity) for a sample with
    no operation here, a disabled one, or no jitter at all.
    """
    view = (-1, 1, 1, 1)
    f = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
    for index in (BRIGHTNESS, CONTRAST, SATURATION):
        if enabled[index]:
            f = torch.where(apply & (op == index), factors[:, index], f)
    f = f.view(view)
    if not (enabled[CONTRAST] or enabled[SATURATION]):
        return x.mul(f).clamp_(0, 1)
    luma = rgb_to_grayscale(x) if x.shape[1] == 3 else x
    target = torch.zeros_like(luma)
    if enabled[CONTRAST]:
        mean = luma.mean(dim=(1, 2, 3), keepdim=True)
        target = torch.where((op == CONTRAST).view(view), mean, target)
    if enabled[SATURATION]:
        target = torch.where((op == SATURATION).view(view), luma, target)
    return torch.addcmul((1 - f) * target, x, f).clamp_(0, 1)
