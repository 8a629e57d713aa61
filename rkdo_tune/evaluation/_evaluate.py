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
from rkdo_tune.evaluation._probes import (
    full_protocol_scores,
    linear_accuracy,
    paper_protocol_scores,
)
from rkdo_tune.floors import EVAL_SEED
from rkdo_tune.metrics import (
    EVAL_ALIGNMENT,
    EVAL_EFFECTIVE_RANK,
    EVAL_LINEAR_ACC,
    EVAL_LINEAR_ACC_BACKBONE,
    EVAL_LINEAR_ACC_CV,
    EVAL_LINEAR_ACC_EMBEDDING,
    EVAL_UNIFORMITY,
    EVAL_YARDSTICK_COLD,
    EVAL_YARDSTICK_LOSS,
    EVAL_YARDSTICK_WARM,
)
from rkdo_tune.objectives import icon_loss
from rkdo_tune.protocols import DEFAULT_PROTOCOL, PRESETS

if TYPE_CHECKING:
    from rkdo_tune.config import TrialConfig
    from rkdo_tune.data.augment import AugmentSpec
    from rkdo_tune.data.sources import ImageData

Device = torch.device | str

# The yardstick's batches come from a generator with this seed in every trial,
# whatever the trial's own seed, so that every trial sees the identical images
# and augmentations (on a given device type: CPU and CUDA streams differ).
YARDSTICK_SEED = 20250430
YARDSTICK_KERNEL = "gaussian"  # softmax(z1 z2^T / tau): InfoNCE with debias 0
# The same InfoNCE at temperatures no shipped space trains either arm at (their tau0 lies in
# [0.05, 1]): beside the tau 0.5 yardstick, which is I-Con's own training family.
NEUTRAL_TAUS = {EVAL_YARDSTICK_COLD: 0.02, EVAL_YARDSTICK_WARM: 2.0}
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
    seed: int = EVAL_SEED

    def __post_init__(self) -> None:
        # The config's rules where a setting mirrors a config key.
        check_choice("eval_features", self.features, name="features")
        check_choice("kmeans_k", self.kmeans_k)
        for key in ("knn_k", "yardstick_batch", "eval_batches", "kmeans_n_init"):
            check_range(key, getattr(self, key))
        check_range("tau", self.yardstick_tau, name="yardstick_tau")
        for name in ("batch_size", "yardstick_batches"):
            check_value(getattr(self, name) >= 1, name, getattr(self, name), "it must be >= 1")

    @classmethod
    def from_config(cls, config: TrialConfig) -> EvalSettings:
        """How a run of `config` is scored: its protocol's evaluation, whatever it trains with."""
        return cls(
            batch_size=config.eval_batch_size,
            eval_batches=config.eval_batches,
            kmeans_n_init=config.kmeans_n_init,
            kmeans_k=config.kmeans_k,
            features=config.eval_features,
            knn_k=config.knn_k,
            yardstick_batch=config.yardstick_batch,
        )

    def scored_test_size(self, available: int) -> int:
        """How many of `available` test images the evaluation encodes."""
        if self.eval_batches is None:
            return available
        return min(available, self.eval_batches * self.batch_size)


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
    batch_size: int,
    size: int | None,
    device: Device,
) -> dict[str, np.ndarray]:
    """{layer: features (N, F)} of uint8 images (N, C, H, W) (eval transform), float32 numpy.

    Both layers: "embedding" (what `forward` returns: the reference's L2-normalised
    head output) and "backbone" (the model's `features`; absent without that method).
    """
    encoders = {"embedding": model}
    if hasattr(model, "features"):
        encoders["backbone"] = model.features
    images = torch.as_tensor(images)
    chunks: dict[str, list[Tensor]] = {layer: [] for layer in encoders}
    for start in range(0, images.shape[0], batch_size):
        x = normalise(images[start : start + batch_size], size=size).to(device)
        for layer, encode in encoders.items():
            chunks[layer].append(encode(x).float().cpu())
    return {layer: torch.cat(parts).numpy() for layer, parts in chunks.items()}


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
    """Yardstick loss (at tau and at the neutral temperatures), alignment and uniformity,
    each the mean over the yardstick batches."""
    taus = {EVAL_YARDSTICK_LOSS: tau, **NEUTRAL_TAUS}
    losses: dict[str, list[float]] = {name: [] for name in taus}
    align, unif = [], []
    pairs = _yardstick_pairs(
        model, images, augment_spec=augment_spec, batch=batch, batches=batches, device=device
    )
    for z1, z2 in pairs:
        for name, t in taus.items():
            infonce, _ = icon_loss(z1, z2, tau=t, debias=0.0, kernel=YARDSTICK_KERNEL)
            losses[name].append(float(infonce))
        align.append(alignment(z1, z2))
        unif.append((uniformity(z1) + uniformity(z2)) / 2)
    return {
        **{name: float(np.mean(values)) for name, values in losses.items()},
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
    extras: bool = True,
) -> dict[str, float]:
    """Every eval/* metric of `model` on `data`, as floats.

    `extras` False (a run's evaluations before its last) leaves out the costly ones:
    the probe on the other layer and the repeated-CV probe.

    Runs in eval mode under no_grad and restores the model's training mode.
    The effective rank is that of the scored test features (the ones the
    probes see: embeddings or backbone features, per settings.features).
    """
    encode = {
        "batch_size": settings.batch_size,
        "size": augment_spec.crop_size,  # the size the model trains at
        "device": device,
    }
    with _eval_mode(model):
        n = settings.scored_test_size(int(data.test_labels.shape[0]))
        test_layers = _encode(model, data.test_images[:n], **encode)
        train_layers = {}
        if settings.eval_batches is None:
            train_layers = _encode(model, data.train_images, **encode)
        layer = settings.features
        test_x = test_layers[layer]
        scores = feature_scores(
            train_layers.get(layer), test_x, data, settings=settings, cv_probe=extras
        )
        scores[LAYER_PROBES[layer]] = scores[EVAL_LINEAR_ACC]  # the probe above, on `layer`
        if extras:
            others = {name: x for name, x in test_layers.items() if name != layer}
            scores.update(_layer_probes(train_layers, others, data, settings=settings))
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


LAYER_PROBES = {"backbone": EVAL_LINEAR_ACC_BACKBONE, "embedding": EVAL_LINEAR_ACC_EMBEDDING}


def last_only_metrics(features: str) -> tuple[str, ...]:
    """The metrics `evaluate` computes only with `extras` (a run's last evaluation), when
    it scores `features`: the probe on the other layer and the repeated-CV probe."""
    others = tuple(key for layer, key in LAYER_PROBES.items() if layer != features)
    return (*others, EVAL_LINEAR_ACC_CV)


def _layer_probes(
    train: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    data: ImageData,
    *,
    settings: EvalSettings,
) -> dict[str, float]:
    """The protocol's linear probe on each layer of `test`, each under its layer's name."""
    train_y = _labels(data.train_labels)
    scores = {}
    for layer, x in test.items():
        test_y = _labels(data.test_labels[: x.shape[0]])
        on_train = (train[layer], train_y) if layer in train else None
        scores[LAYER_PROBES[layer]] = linear_accuracy((x, test_y), on_train, seed=settings.seed)
    return scores


def feature_scores(
    train_x: np.ndarray | None,
    test_x: np.ndarray,
    data: ImageData,
    *,
    settings: EvalSettings,
    cv_probe: bool = True,
) -> dict[str, float]:
    """The protocol's probe and clustering scores of fixed features, whatever made them.

    test_x: (n, F) features of the first n = `settings.scored_test_size` test images;
    train_x: (N_train, F) features of the train split, needed by the full protocol only.
    `evaluate` scores a model's features with it, and the floors raw pixels.
    """
    probe = {
        "num_classes": data.num_classes,
        "knn_k": settings.knn_k,
        "seed": settings.seed,
        "kmeans_n_init": settings.kmeans_n_init,
        "kmeans_k": settings.kmeans_k,
        "cv_probe": cv_probe,
    }
    test_y = _labels(data.test_labels[: test_x.shape[0]])
    if settings.eval_batches is not None:
        return paper_protocol_scores(test_x, test_y, **probe)
    if train_x is None:
        raise ValueError("the full protocol needs the train split's features")
    return full_protocol_scores(train_x, _labels(data.train_labels), test_x, test_y, **probe)
