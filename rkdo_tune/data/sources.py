"""Datasets as whole uint8 tensors in memory.

Every dataset loads once into `ImageData`: (N, C, H, W) uint8 images and int64
labels for a train and a test split. Batches are then index selections on
these tensors (on the training device), and augmentation runs batched on them
(`rkdo_tune.data.augment`); there is no PIL and no DataLoader in the hot loop.

- `digits`: scikit-learn's bundled 8x8 digits (offline), 1 channel, a fixed
  stratified 80/20 split.
- `synthetic`: generated class-structured colour images (offline), a fixed
  80/20 split. See `_synthetic_images`.
- `shapes`: generated shapes at random poses and colours (offline), a fixed
  stratified 80/20 split; pixels carry no class (`rkdo_tune.data.shapes`).
- `cifar10`, `cifar100`, `stl10`: torchvision's datasets under `data_dir`.
  STL-10 is resized to 64x64 at load, as the reference benchmark does.
"""

from __future__ import annotations

import functools
import http.client
import math
import tarfile
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rkdo_tune.data.catalog import DATASETS, TORCHVISION_DATASETS, require_data_dir
from rkdo_tune.errors import DataNotFoundError, UsageError

# Constant seeds: every trial of every training seed sees the same split and
# the same synthetic images. Training seeds never touch these.
SPLIT_SEED = 20250430
SYNTHETIC_SEED = 2504_21707
TEST_FRACTION = 0.2
STL10_SIZE = 64


@dataclass(frozen=True)
class ImageData:
    """A dataset in memory: uint8 (N, C, H, W) images and int64 (N,) labels."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.ndim != 4:
                raise ValueError(f"{split}_images must be uint8 (N, C, H, W), got {images.dtype}")
            if images.shape[-1] != images.shape[-2]:
                raise ValueError(f"{split}_images must be square, got {tuple(images.shape)}")
            if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
                raise ValueError(f"{split}_labels must be int64 ({images.shape[0]},)")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError("train and test images differ in shape")

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[-1]

    def to(self, device: torch.device | str) -> ImageData:
        """The same data with every tensor on `device`."""
        return replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )


@functools.lru_cache(maxsize=1)  # a reused Ray worker runs trial after trial on the same data
def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    synthetic_size: int = 32,
    synthetic_classes: int = 10,
    synthetic_samples: int = 2000,
) -> ImageData:
    """Load dataset `name` into memory (CPU tensors); the last one loaded stays cached.

    The tensors are shared by every caller and nothing may write to them.

    Raises `UsageError` for an unknown name or bad synthetic sizes, and
    `DataNotFoundError` when a torchvision dataset is not under `data_dir`
    (and `download` is False) or its download fails.
    """
    if name == "digits":
        return _load_digits()
    if name == "synthetic":
        return _load_synthetic(synthetic_size, synthetic_classes, synthetic_samples)
    if name == "shapes":
        return _load_shapes(synthetic_size, synthetic_classes, synthetic_samples)
    if name in TORCHVISION_DATASETS:
        return _load_torchvision(name, data_dir, download)
    raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _stratified_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a fixed stratified 80/20 split."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return np.sort(train_idx), np.sort(test_idx)


def _from_arrays(name: str, images: Tensor, labels: Tensor, num_classes: int) -> ImageData:
    train_idx, test_idx = _stratified_split(labels.numpy())
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return ImageData(
        name=name,
        train_images=images[train_idx].contiguous(),
        train_labels=labels[train_idx].contiguous(),
        test_images=images[test_idx].contiguous(),
        test_labels=labels[test_idx].contiguous(),
        num_classes=num_classes,
    )


def _load_digits() -> ImageData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Values are 0..16; spread them over 0..255 (16 -> 255).
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = torch.from_numpy(pixels).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    return _from_arrays("digits", images, labels, num_classes=10)


# --- synthetic -------------------------------------------------------------

_BLOBS_PER_CLASS = 3
_CLUTTER = 2


def _rotate_colours(colours: Tensor, angle: Tensor) -> Tensor:
    """Rotate (N, 3, ...) RGB vectors about the grey axis by (N,) angles (Rodrigues)."""
    u = torch.full((3,), 1 / math.sqrt(3))
    ux = torch.tensor([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    rot = cos * torch.eye(3) + sin * ux + (1 - cos) * torch.outer(u, u)  # (N, 3, 3)
    return torch.einsum("nij,nj...->ni...", rot, colours)


def _load_shapes(size: int, num_classes: int, samples: int) -> ImageData:
    from rkdo_tune.data.shapes import SHAPES, shapes_images

    _check_generated(size, num_classes, samples)
    if num_classes > len(SHAPES):
        raise UsageError(f"shapes has at most {len(SHAPES)} classes, got {num_classes}")
    images, labels = shapes_images(size, num_classes, samples)
    return _from_arrays("shapes", images, labels, num_classes=num_classes)


def _load_synthetic(size: int, num_classes: int, samples: int) -> ImageData:
    _check_generated(size, num_classes, samples)
    images, labels = _synthetic_images(size, num_classes, samples)
    return _from_arrays("synthetic", images, labels, num_classes=num_classes)


def _check_generated(size: int, num_classes: int, samples: int) -> None:
    if size < 8:
        raise UsageError(f"synthetic image size must be at least 8, got {size}")
    if num_classes < 2:
        raise UsageError(f"synthetic classes must be at least 2, got {num_classes}")
    if samples < 10 * num_classes:
        raise UsageError(
            f"synthetic samples must be at least 10 per class ({10 * num_classes}), got {samples}"
        )


def _synthetic_images(size: int, num_classes: int, samples: int) -> tuple[Tensor, Tensor]:
    """Class-structured colour images, the same for the same arguments.

    Each class has a prototype: three soft colour blobs at class-specific
    places plus a coloured grating at a class-specific orientation and
    frequency. A sample renders its class's prototype under a random
    translation (up to 35% of the image), scale (0.7 to 1.3) and rotation
    (up to 15 degrees), with a random grating phase, two clutter blobs that
    belong to no class, a random background, a random rotation of all its
    colours about the grey axis (a hue turn) and gain, and pixel noise.
    Identity therefore lives in layout, shape and relative colour, not in
    where the pixels are or in their absolute colours: the nuisances are
    those that crops and colour jitter teach invariance to, and a linear probe
    on raw pixels stays far from perfect (about 0.6 for the defaults; 5-NN on
    raw pixels about 0.5; chance 0.1).
    """
    g = torch.Generator().manual_seed(SYNTHETIC_SEED)
    prototypes = _class_prototypes(num_classes, g)
    # Balanced labels in a fixed shuffled order.
    labels = (torch.arange(samples) % num_classes)[torch.randperm(samples, generator=g)]
    nuisances = _nuisances(samples, g)
    images = _render(size, prototypes, nuisances, labels)
    images += 0.04 * torch.randn(images.shape, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels.to(torch.int64)


def _uniform(g: torch.Generator, *shape: int, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _class_prototypes(num_classes: int, g: torch.Generator) -> dict[str, Tensor]:
    """Per class: blob centres (K, 2), sigmas (K,), colours (K, 3); grating angle, freq, colour."""
    k = _BLOBS_PER_CLASS
    blob_centre = _uniform(g, num_classes, k, 2, low=-0.55, high=0.55)
    blob_sigma = _uniform(g, num_classes, k, low=0.12, high=0.3)
    blob_colour = _uniform(g, num_classes, k, 3, low=-0.8, high=0.8)
    # Orientations spread over the half-turn (a grating at angle a equals a + pi).
    order = torch.randperm(num_classes, generator=g)
    angle = (order + _uniform(g, num_classes, low=0.0, high=1.0)) * (math.pi / num_classes)
    return {
        "blob_centre": blob_centre,
        "blob_sigma": blob_sigma,
        "blob_colour": blob_colour,
        "angle": angle,
        "freq": _uniform(g, num_classes, low=1.5, high=3.5),  # cycles across the image
        "grating_colour": _uniform(g, num_classes, 3, low=-0.35, high=0.35),
    }


def _nuisances(samples: int, g: torch.Generator) -> dict[str, Tensor]:
    """Per-sample random pose, phase, background, colour turn and gain, and clutter blobs."""
    return {
        "shift": _uniform(g, samples, 2, low=-0.35, high=0.35),
        "scale": _uniform(g, samples, low=0.7, high=1.3),
        "rot": _uniform(g, samples, low=-math.pi / 12, high=math.pi / 12),
        "phase": _uniform(g, samples, low=0.0, high=2 * math.pi),
        "background": _uniform(g, samples, 3, low=0.3, high=0.7),
        "hue_turn": _uniform(g, samples, low=0.0, high=2 * math.pi),
        "gain": _uniform(g, samples, low=0.7, high=1.3),
        "clutter_centre": _uniform(g, samples, _CLUTTER, 2, low=-1.0, high=1.0),
        "clutter_sigma": _uniform(g, samples, _CLUTTER, low=0.1, high=0.25),
        "clutter_colour": _uniform(g, samples, _CLUTTER, 3, low=-0.5, high=0.5),
    }


def _soft_disc(x: Tensor, y: Tensor, centre: Tensor, sigma: Tensor) -> Tensor:
    """Gaussian blob (N, S, S) at centre (N, 2) with width sigma (N,), over coordinates x, y."""
    d2 = (x - centre[:, 0, None, None]) ** 2 + (y - centre[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))


def _render(size: int, proto: dict[str, Tensor], nuis: dict[str, Tensor], labels: Tensor) -> Tensor:
    """Float images (N, 3, S, S), about [0, 1]: each label's prototype under its nuisances."""
    # Pixel-centre coordinates in [-1, 1], mapped into each sample's prototype frame:
    # p' = R(-rot) (p - shift) / scale.
    axis = (torch.arange(size) + 0.5) * (2.0 / size) - 1.0
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (S, S)
    px = xx[None] - nuis["shift"][:, 0, None, None]
    py = yy[None] - nuis["shift"][:, 1, None, None]
    cos, sin = torch.cos(nuis["rot"])[:, None, None], torch.sin(nuis["rot"])[:, None, None]
    inv_scale = (1.0 / nuis["scale"])[:, None, None]
    qx = (cos * px + sin * py) * inv_scale
    qy = (-sin * px + cos * py) * inv_scale  # each (N, S, S)

    # The class pattern, as colour offsets from the background.
    pattern = torch.zeros(labels.shape[0], 3, size, size)
    for b in range(_BLOBS_PER_CLASS):
        weight = _soft_disc(qx, qy, proto["blob_centre"][labels, b], proto["blob_sigma"][labels, b])
        pattern += proto["blob_colour"][labels, b][:, :, None, None] * weight[:, None]
    angle = proto["angle"][labels][:, None, None]
    proj = qx * torch.cos(angle) + qy * torch.sin(angle)
    phase = nuis["phase"][:, None, None]
    wave = torch.cos(math.pi * proto["freq"][labels][:, None, None] * proj + phase)
    pattern += proto["grating_colour"][labels][:, :, None, None] * wave[:, None]
    # Clutter: blobs of no class, in image coordinates.
    for b in range(_CLUTTER):
        centre, sigma = nuis["clutter_centre"][:, b], nuis["clutter_sigma"][:, b]
        weight = _soft_disc(xx[None], yy[None], centre, sigma)
        pattern += nuis["clutter_colour"][:, b][:, :, None, None] * weight[:, None]
    # Rotate every colour about the grey axis by a per-sample angle (a hue turn).
    pattern = _rotate_colours(pattern, nuis["hue_turn"]) * nuis["gain"][:, None, None, None]
    return nuis["background"][:, :, None, None] + pattern


# --- torchvision datasets ----------------------------------------------------

# What a failed download can raise: network (URLError is an OSError), HTTP,
# a truncated archive, or torchvision's md5 check (RuntimeError).
_DOWNLOAD_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    EOFError,
    tarfile.TarError,
    http.client.HTTPException,
)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"


def _load_torchvision(name: str, data_dir: str | None, download: bool) -> ImageData:
    root = require_data_dir(name, data_dir)
    try:
        train, test, num_classes = _TORCHVISION_READERS[name](str(root), download)
    except _DOWNLOAD_ERRORS as error:
        if download:
            raise DataNotFoundError(
                f"{name} could not be downloaded into '{root}': {_one_line(error)}"
            ) from error
        if isinstance(error, RuntimeError):  # torchvision: "Dataset not found or corrupted"
            raise DataNotFoundError(
                f"{name} not found (or corrupted) under '{root}' "
                "(pass --download to fetch it, or --data-dir to point at it)"
            ) from error
        raise DataNotFoundError(
            f"{name} could not be read under '{root}': {_one_line(error)}"
        ) from error
    (train_images, train_labels), (test_images, test_labels) = train, test
    return ImageData(
        name=name,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        num_classes=num_classes,
    )


Split = tuple[Tensor, Tensor]


def _cifar_split(dataset) -> Split:
    # `.data` is (N, 32, 32, 3) uint8 numpy; `.targets` a list of ints.
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return images.contiguous(), labels


def _read_cifar10(root: str, download: bool) -> tuple[Split, Split, int]:
    from torchvision.datasets import CIFAR10

    train = CIFAR10(root, train=True, download=download)
    test = CIFAR10(root, train=False, download=False)
    return _cifar_split(train), _cifar_split(test), 10


def _read_cifar100(root: str, download: bool) -> tuple[Split, Split, int]:
    from torchvision.datasets import CIFAR100

    train = CIFAR100(root, train=True, download=download)
    test = CIFAR100(root, train=False, download=False)
    return _cifar_split(train), _cifar_split(test), 100


def resize_uint8(images: Tensor, size: int, *, chunk: int = 512) -> Tensor:
    """Antialiased bilinear resize of uint8 (N, C, H, W) images, in chunks."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _stl10_split(dataset) -> Split:
    # `.data` is (N, 3, 96, 96) uint8 numpy; `.labels` uint8 0..9.
    images = resize_uint8(torch.from_numpy(np.ascontiguousarray(dataset.data)), STL10_SIZE)
    labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.int64)
    return images, labels


def _read_stl10(root: str, download: bool) -> tuple[Split, Split, int]:
    from torchvision.datasets import STL10

    train = STL10(root, split="train", download=download)
    test = STL10(root, split="test", download=False)
    return _stl10_split(train), _stl10_split(test), 10


_TORCHVISION_READERS = {
    "cifar10": _read_cifar10,
    "cifar100": _read_cifar100,
    "stl10": _read_stl10,
}
