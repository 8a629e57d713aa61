"""Batched augmentation: exact against torchvision's functional ops where it can be,
and distributionally against torchvision's per-image transforms."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from scipy.stats import ks_2samp

from rkdo_tune.data import (
    AugmentSpec,
    augment_batch,
    augmentation_for,
    normalise,
    two_views,
)
from rkdo_tune.data import augment as A
from rkdo_tune.errors import UsageError


def smooth_images(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """uint8 images with colour and structure: upsampled 4x4 noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, channels, 4, 4), generator=g)
    x = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- exact pieces ----------------------------------------------------------------


def test_adjust_hue_matches_torchvision():
    x = torch.rand(48, 3, 8, 8, generator=gen(1))
    x[:4] = x[:4, :1].expand(-1, 3, -1, -1)  # grey pixels: zero chroma
    x[4:8, 0] = 1.0  # saturated red channel, ties between channels
    x[4:8, 1] = 1.0
    shift = torch.rand(48, generator=gen(2)) - 0.5
    ours = A.adjust_hue(x, shift)
    ref = torch.stack([TF.adjust_hue(x[i], float(shift[i])) for i in range(len(x))])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [24, 32])
def test_crop_grid_reproduces_torchvision_resized_crop_and_flip(size):
    images = smooth_images(16, 20, seed=3)[:, :, :, :]
    images = torch.cat([images, images.transpose(-1, -2)], dim=-1)[:, :, :, :24]  # 20x24
    boxes = A.sample_crop_boxes(
        16, height=20, width=24, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), generator=gen(4)
    )
    flip = torch.arange(16) % 2 == 1
    grid = A.crop_grid(boxes, flip, height=20, width=24, size=size)
    x = images.float() / 255
    ours = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ref = []
    for k in range(16):
        top, left, h, w = boxes[k].tolist()
        r = TF.resized_crop(x[k], top, left, h, w, [size, size], antialias=True)
        ref.append(TF.horizontal_flip(r) if flip[k] else r)
    torch.testing.assert_close(ours, torch.stack(ref), atol=1e-5, rtol=0)


def test_color_jitter_follows_each_samples_order_like_torchvision():
    n = 64
    x = smooth_images(n, 8, seed=5).float() / 255
    order = torch.rand(n, 4, generator=gen(6)).argsort(dim=1)
    u = torch.rand(n, 4, generator=gen(7))
    factors = torch.stack([0.6 + 0.8 * u[:, 0], 0.6 + 0.8 * u[:, 1], 0.6 + 0.8 * u[:, 2]], 1)
    factors = torch.cat([factors, (u[:, 3:] - 0.5) * 0.2], dim=1)
    apply = torch.arange(n) % 5 != 0  # every fifth sample is not jittered
    ours = A._color_jitter(x.clone(), order, factors, apply, (0.4, 0.4, 0.4, 0.1))
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for i in range(n):
        ref = x[i]
        if apply[i]:
            for op in order[i].tolist():
                ref = ops[op](ref, float(factors[i, op]))
        torch.testing.assert_close(ours[i], ref, atol=2e-5, rtol=0)


def test_color_jitter_without_hue_still_follows_order():
    n = 32
    x = smooth_images(n, 8, seed=8).float() / 255
    order = torch.rand(n, 4, generator=gen(9)).argsort(dim=1)
    factors = torch.cat([0.6 + 0.8 * torch.rand(n, 3, generator=gen(10)), torch.zeros(n, 1)], 1)
    apply = torch.ones(n, dtype=torch.bool)
    ours = A._color_jitter(x.clone(), order, factors, apply, (0.4, 0.4, 0.4, 0.0))
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
    for i in range(n):
        ref = x[i]
        for op in order[i].tolist():
            if op < 3:
                ref = ops[op](ref, float(factors[i, op]))
        torch.testing.assert_close(ours[i], ref, atol=2e-5, rtol=0)


# --- distributions against torchvision -------------------------------------------


def torchvision_boxes(n: int, height: int, width: int, scale, ratio) -> np.ndarray:
    torch.manual_seed(11)
    img = torch.empty(1, height, width)
    boxes = [T.RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(n)]
    return np.array(boxes)


def test_crop_boxes_match_torchvision_distribution():
    n = 4000
    ours = A.sample_crop_boxes(
        n, height=32, width=32, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), generator=gen(12)
    ).numpy()
    ref = torchvision_boxes(n, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3))
    for name, fn in {
        "area": lambda b: b[:, 2] * b[:, 3] / 1024,
        "log aspect": lambda b: np.log(b[:, 3] / b[:, 2]),
        "centre x": lambda b: b[:, 1] + b[:, 3] / 2,
        "centre y": lambda b: b[:, 0] + b[:, 2] / 2,
    }.items():
        assert ks_2samp(fn(ours), fn(ref)).pvalue > 1e-3, name
    assert (ours[:, :2] >= 0).all()
    assert (ours[:, 0] + ours[:, 2] <= 32).all() and (ours[:, 1] + ours[:, 3] <= 32).all()


def test_crop_boxes_fallback_matches_torchvision():
    # A wide image and tall-only ratios: most tries fail and the central crop is used.
    n = 3000
    scale, ratio = (0.8, 1.0), (0.3, 0.9)
    ours = A.sample_crop_boxes(
        n, height=8, width=16, scale=scale, ratio=ratio, generator=gen(13)
    ).numpy()
    ref = torchvision_boxes(n, 8, 16, scale, ratio)

    def freq(boxes):
        keys, counts = np.unique(boxes, axis=0, return_counts=True)
        return {tuple(k): c / len(boxes) for k, c in zip(keys, counts, strict=True)}

    fo, fr = freq(ours), freq(ref)
    fallback = (0, 4, 8, 7)  # h = 8, w = round(8 * 0.9), centred
    assert fr[fallback] > 0.5
    total_variation = 0.5 * sum(abs(fo.get(k, 0) - fr.get(k, 0)) for k in fo.keys() | fr.keys())
    assert total_variation < 0.05


def torchvision_pipeline(spec: AugmentSpec):
    """The reference's per-image transforms (on float images: no uint8 rounding between steps)."""
    return T.Compose(
        [
            T.ToDtype(torch.float32, scale=True),
            T.RandomResizedCrop(spec.crop_size, scale=spec.crop_scale, ratio=spec.crop_ratio),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(*spec.jitter)], p=spec.jitter_p),
            T.RandomGrayscale(p=spec.grayscale_p),
            T.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )


def both_pipelines(images: torch.Tensor, spec: AugmentSpec) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torchvision_pipeline(spec)
    torch.manual_seed(15)
    ref = torch.stack([reference(img) for img in images])
    return augment_batch(images, spec, gen(16)), ref


def image_stats(x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image summaries of [-1, 1] images (B, 3, H, W)."""
    x = (x + 1) / 2
    chroma = (x.amax(dim=1) - x.amin(dim=1)).mean(dim=(1, 2))
    return {
        "mean": x.mean(dim=(1, 2, 3)).numpy(),
        "std": x.std(dim=(1, 2, 3)).numpy(),
        "chroma": chroma.numpy(),
        "grey": (chroma < 1e-6).numpy(),
        "red-green": (x[:, 0] - x[:, 1]).mean(dim=(1, 2)).numpy(),
    }


def test_pipeline_matches_torchvision_per_image_transforms():
    images = smooth_images(600, 16, seed=14)
    ours, ref = (image_stats(x) for x in both_pipelines(images, AugmentSpec(crop_size=16)))
    for key in ("mean", "std", "chroma", "red-green"):
        assert ks_2samp(ours[key], ref[key]).pvalue > 1e-3, key
    assert abs(ours["grey"].mean() - 0.2) < 0.05
    assert abs(ref["grey"].mean() - ours["grey"].mean()) < 0.06


def hsv(x: torch.Tensor) -> np.ndarray:
    """(n, 3) RGB in [0, 1] -> (n, 3) HSV, by the standard library."""
    return np.array([colorsys.rgb_to_hsv(*rgb) for rgb in x.tolist()])


def test_colour_changes_match_torchvision_on_flat_images():
    # One colour per image: crops change nothing, so the output colour shows the jitter.
    n = 600
    colours = torch.rand(n, 3, 1, 1, generator=gen(30))
    images = (colours.expand(n, 3, 4, 4) * 255).round().to(torch.uint8)
    before = hsv(images[:, :, 0, 0].float() / 255)

    def changes(out: torch.Tensor) -> dict[str, np.ndarray]:
        after = hsv(((out[:, :, 0, 0] + 1) / 2).clamp(0, 1))
        return {
            "hue": (after[:, 0] - before[:, 0] + 0.5) % 1 - 0.5,
            "saturation": after[:, 1] - before[:, 1],
            "log value": np.log((after[:, 2] + 1e-3) / (before[:, 2] + 1e-3)),
        }

    ours, ref = (changes(x) for x in both_pipelines(images, AugmentSpec(crop_size=4)))
    for key in ours:
        assert ks_2samp(ours[key], ref[key]).pvalue > 1e-3, key


def test_random_parameters_have_torchvision_ranges_and_rates():
    n = 20000
    spec = AugmentSpec(crop_size=8, jitter=(0.4, 0.3, 0.2, 0.1), jitter_p=0.8, grayscale_p=0.2)
    p = A._sample_params(n, height=8, width=8, spec=spec, generator=gen(31))
    for index, (low, high) in enumerate([(0.6, 1.4), (0.7, 1.3), (0.8, 1.2), (-0.1, 0.1)]):
        f = p["factors"][:, index].numpy()
        assert low <= f.min() < low + 0.01 and high - 0.01 < f.max() <= high
        assert ks_2samp(f, np.linspace(low, high, 2001)).pvalue > 1e-3
    assert abs(p["jitter"].float().mean() - 0.8) < 0.015
    assert abs(p["gray"].float().mean() - 0.2) < 0.015
    assert abs(p["flip"].float().mean() - 0.5) < 0.015
    # A uniform random order: every operation at every position a quarter of the time.
    counts = F.one_hot(p["order"], 4).float().mean(dim=0)
    torch.testing.assert_close(counts, torch.full((4, 4), 0.25), atol=0.015, rtol=0)
    assert (p["order"].sort(dim=1).values == torch.arange(4)).all()


def test_flip_rate_and_identity_crop():
    images = smooth_images(400, 12, seed=17)
    spec = AugmentSpec(
        crop_size=12, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter_p=0.0, grayscale_p=0.0
    )
    out = augment_batch(images, spec, gen(18))
    plain = normalise(images)
    same = (out - plain).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (out - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (same ^ mirrored).all()
    assert abs(mirrored.float().mean().item() - 0.5) < 0.08
    no_flip = augment_batch(images, AugmentSpec(**{**spec.__dict__, "flip": False}), gen(18))
    torch.testing.assert_close(no_flip, plain, atol=1e-5, rtol=0)


# --- behaviour ----------------------------------------------------------------------


def test_shapes_range_and_dtype():
    images = smooth_images(10, 20, seed=19)
    out = augment_batch(images, AugmentSpec(crop_size=16), gen())
    assert out.shape == (10, 3, 16, 16) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1


def test_same_generator_seed_same_output_and_new_seed_differs():
    images = smooth_images(32, 16, seed=20)
    spec = AugmentSpec(crop_size=16)
    a1, b1 = two_views(images, spec, gen(5))
    a2, b2 = two_views(images, spec, gen(5))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(a1, b1)  # the two views are independent draws
    c1, _ = two_views(images, spec, gen(6))
    assert not torch.equal(a1, c1)


def test_two_views_is_one_call_on_the_doubled_batch():
    images = smooth_images(8, 16, seed=21)
    spec = AugmentSpec(crop_size=16)
    first, second = two_views(images, spec, gen(3))
    both = augment_batch(torch.cat([images, images]), spec, gen(3))
    assert torch.equal(first, both[:8]) and torch.equal(second, both[8:])


def test_one_channel_digits_batch():
    images = smooth_images(64, 8, channels=1, seed=22)
    spec = augmentation_for("digits", image_size=8, channels=1)
    out = augment_batch(images, spec, gen())
    assert out.shape == (64, 1, 8, 8)
    assert out.min() >= -1 and out.max() <= 1


def test_normalise_maps_uint8_to_unit_range_and_resizes():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3).expand(2, 3, 3, 3)
    out = normalise(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([-1.0, 1.0, -0.6]))
    assert normalise(smooth_images(2, 16), size=8).shape == (2, 3, 8, 8)
    assert torch.equal(normalise(x, size=3), out)


def test_augmentation_for_each_dataset():
    cifar = augmentation_for("cifar10", image_size=32, channels=3)
    assert cifar == AugmentSpec(crop_size=32)  # the reference recipe
    assert augmentation_for("stl10", image_size=64, channels=3).crop_size == 64
    digits = augmentation_for("digits", image_size=8, channels=1)
    assert not digits.flip and digits.crop_scale == (0.5, 1.0)
    assert digits.jitter[2:] == (0.0, 0.0) and digits.grayscale_p == 0.0
    assert digits.jitter[:2] == (0.4, 0.4)
    with pytest.raises(UsageError, match=r"'mnist'.*digits"):
        augmentation_for("mnist", image_size=28, channels=1)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_ratio": (2.0, 1.0)}, "crop_ratio"),
        ({"jitter": (0.4, 0.4, 0.4, 0.7)}, "jitter"),
        ({"jitter_p": 1.5}, "jitter_p"),
        ({"grayscale_p": -0.1}, "grayscale_p"),
    ],
)
def test_spec_rejects_bad_values(kwargs, key):
    with pytest.raises(UsageError, match=key):
        AugmentSpec(crop_size=32, **kwargs)


def test_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        augment_batch(torch.rand(2, 3, 8, 8), AugmentSpec(crop_size=8), gen())


@pytest.mark.gpu
def test_cuda_images_with_cuda_or_cpu_generator():
    images = smooth_images(16, 32, seed=23).cuda()
    spec = AugmentSpec(crop_size=32)
    cuda_gen = lambda: torch.Generator(device="cuda").manual_seed(1)  # noqa: E731
    a, _ = two_views(images, spec, cuda_gen())
    b, _ = two_views(images, spec, cuda_gen())
    assert a.is_cuda and torch.equal(a, b)
    c, _ = two_views(images, spec, gen(1))
    assert c.is_cuda
    # Same CPU generator: the same parameters, so nearly the same output as on the CPU.
    d, _ = two_views(images.cpu(), spec, gen(1))
    torch.testing.assert_close(c.cpu(), d, atol=1e-4, rtol=0)
    assert math.isfinite(a.sum().item())
