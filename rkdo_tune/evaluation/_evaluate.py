"""`evaluate`: a model's eval/* metrics, and the yardstick loss every trial shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from rkdo_tune.config import check_choice, check_range
from rkdo_tune.data import normalise, two_views
from rkdo_tune.errors import check_value
from rkdo_tune.evaluation._geometry import alignment, effective_rank, uniformity
from rkdo_tune.evaluation._probes import full_protocol_scores, paper_protocol_scores
from rkdo_tune.metrics import (
    EVAL_ALIGNMENT,
    EVAL_EFFECTIVE_RANK,
    EVAL_UNIFORMITY,
    EVAL_YARDSTICK_LOSS,
)
from rkdo_tune.objectives import icon_loss
from rkdo_tune.protocols import DEFAULT_PROTOCOL, PRESETS

if TYPE_CHECKING:
    from rkdo_tune.data.augment import AugmentSpec
    from rkdo_tune.data.sources import ImageData

Device = torch.device | str

# The yardstick's batches come from a generator with this seed in every trial,
# whatever the trial's own seed, so that every trial sees the identical images
# and augmentations (on a given device type: CPU and CUDA streams differ).
YARDSTICK_SEED = 20250430
YARDSTICK_KERNEL = "gaussian"  # softmax(z1 z2^T / tau): InfoNCE with debias 0
_DEFAULT = PRESETS[DEFAULT_PROTOCOL]


@dataclass(frozen=True)
class EvalSettings:
    """How `evaluate` scores a model; the defaults are the `paper` protocol's.

    eval_batches: the first eval_batches * batch_size test images are scored,
    the probes on an 80/20 split (the paper protocols); None: the probes are
    trained on the train split and scored on the whole test split (full).
    features: "embedding" (the model's L2-normalised forward output, as the
    reference code) or "backbone" (`model.features`). batch_size is both the
    encoding batch and the test batch size (64 in the reference, 32 for
    STL-10). KMeans runs kmeans_n_init times with k = kmeans_k ("labels"
    present or "classes"). seed drives the sklearn split, probes and KMeans
    (42 in the reference); it never touches the yardstick batches.
    """

    features: str = "embedding"
    batch_size: int = 64
    eval_batches: int | None = _DEFAULT.eval_batches
    kmeans_n_init: int = _DEFAULT.kmeans_n_init
    kmeans_k: str = _DEFAULT.kmeans_k
    knn_k: int = 5
    yardstick_tau: float = 0.5
    yardstick_batch: int = 256
    yardstick_batches: int = 4
    seed: int = 42

    def __post_init__(self) -> None:
        # The config's rules where a setting mirrors a config key.
        check_choice("eval_features", self.features, name="features")
        check_choice("kmeans_k", self.kmeans_k)
        for key in ("knn_k", "yardstick_batch", "eval_batches", "kmeans_n_init"):
            check_range(key, getattr(self, key))
        check_range("tau", self.yardstick_tau, name="yardstick_tau")
        for name in ("batch_size", "yardstick_batches"):
            check_value(getattr(self, name) >= 1, name, getattr(self, name), "it must be >= 1")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """model.eval() and no_grad inside; the previous training mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _encode(
    model: nn.Module,
    images: Tensor,
    *,
    features: str,
    batch_size: int,
    size: int | None,
    device: Device,
) -> np.ndarray:
    """Features (N, F) of uint8 images (N, C, H, W) (eval transform), as float32 numpy.

    features: "embedding" (the model's output) or "backbone" (its `features` method).
    """
    encode = model if features == "embedding" else model.features
    images = torch.as_tensor(images)
    chunks = [
        encode(normalise(images[start : start + batch_size], size=size).to(device)).float().cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks).numpy()


def _labels(labels: Tensor) -> np.ndarray:
    return torch.as_tensor(labels).cpu().numpy()


def _yardstick_pairs(
    model: nn.Module,
    images: Tensor,
    *,
    augment_spec: AugmentSpec,
    batch: int,
    batches: int,
    device: Device,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Embeddings (z1, z2), each (min(batch, N), D), of the yardstick's two views, per batch.

    The batch size is min(batch, number of test images), fixed for a dataset;
    the images and augmentations come from a generator seeded with
    YARDSTICK_SEED on the images' device, so every call sees the same batches.
    """
    images = torch.as_tensor(images)
    n = images.shape[0]
    size = min(batch, n)
    generator = torch.Generator(device=images.device).manual_seed(YARDSTICK_SEED)
    for _ in range(batches):
        idx = torch.randperm(n, generator=generator, device=images.device)[:size]
        view1, view2 = two_views(images[idx], augment_spec, generator)
        yield model(view1.to(device)).float(), model(view2.to(device)).float()


def _yardstick_measures(
    model: nn.Module,
    images: Tensor,
    *,
    augment_spec: AugmentSpec,
    tau: float,
    batch: int,
    batches: int,
    device: Device,
) -> dict[str, float]:
    """Yardstick loss, alignment and uniformity, each the mean over the yardstick batches."""
    loss, align, unif = [], [], []
    pairs = _yardstick_pairs(
        model, images, augment_spec=augment_spec, batch=batch, batches=batches, device=device
    )
    for z1, z2 in pairs:
        infonce, _ = icon_loss(z1, z2, tau=tau, debias=0.0, kernel=YARDSTICK_KERNEL)
        loss.append(float(infonce))
        align.append(alignment(z1, z2))
        unif.append((uniformity(z1) + uniformity(z2)) / 2)
    return {
        EVAL_YARDSTICK_LOSS: float(np.mean(loss)),
        EVAL_ALIGNMENT: float(np.mean(align)),
        EVAL_UNIFORMITY: float(np.mean(unif)),
    }


def yardstick_loss(
    model: nn.Module,
    images_uint8: Tensor,
    *,
    augment_spec: AugmentSpec,
    tau: float,
    batch: int,
    batches: int,
    device: Device,
) -> float:
    """The common held-out loss: InfoNCE (I-Con, debias 0, fixed tau) on fixed augmented batches.

    images_uint8: (N, C, H, W). Every trial, whatever its objective, gets the
    same `batches` batches of min(batch, N) test images with the same
    augmentations, so values compare across trials. InfoNCE grows with
    log(batch): keep `batch` fixed across the trials being compared.
    """
    with _eval_mode(model):
        measures = _yardstick_measures(
            model,
            images_uint8,
            augment_spec=augment_spec,
            tau=tau,
            batch=batch,
            batches=batches,
            device=device,
        )
    return measures[EVAL_YARDSTICK_LOSS]


def evaluate(
    model: nn.Module,
    data: ImageData,
    *,
    settings: EvalSettings,
    augment_spec: AugmentSpec,
    device: Device,
) -> dict[str, float]:
    """All nine eval/* metrics of `model` on `data`, as floats.

    Runs in eval mode under no_grad and restores the model's training mode.
    The effective rank is that of the scored test features (the ones the
    probes see: embeddings or backbone features, per settings.features).
    """
    encode = {
        "features": settings.features,
        "batch_size": settings.batch_size,
        "size": augment_spec.crop_size,  # the size the model trains at
        "device": device,
    }
    probe = {
        "num_classes": data.num_classes,
        "knn_k": settings.knn_k,
        "seed": settings.seed,
        "kmeans_n_init": settings.kmeans_n_init,
        "kmeans_k": settings.kmeans_k,
    }
    with _eval_mode(model):
        if settings.eval_batches is not None:
            n = settings.eval_batches * settings.batch_size
            test_x = _encode(model, data.test_images[:n], **encode)
            scores = paper_protocol_scores(test_x, _labels(data.test_labels[:n]), **probe)
        else:
            train_x = _encode(model, data.train_images, **encode)
            test_x = _encode(model, data.test_images, **encode)
            scores = full_protocol_scores(
                train_x,
                _labels(data.train_labels),
                test_x,
                _labels(data.test_labels),
                **probe,
            )
        scores.update(
            _yardstick_measures(
                model,
                data.test_images,
                augment_spec=augment_spec,
                tau=settings.yardstick_tau,
                batch=settings.yardstick_batch,
                batches=settings.yardstick_batches,
                device=device,
            )
        )
    scores[EVAL_EFFECTIVE_RANK] = effective_rank(test_x)
    return scores
