"""Objective-independent evaluation of an encoder: probes, clustering and a yardstick loss.

RKDO and I-Con optimise different losses whose raw values cannot be compared,
so every trial is scored here the same way, whatever its objective:

- probes: linear (logistic regression) and k-NN accuracy;
- clustering: KMeans NMI and ARI; neighbourhood agreement of the k nearest
  neighbours (the reference's "neighborhood accuracy");
- the yardstick: one common held-out InfoNCE loss (I-Con with debias 0 at a
  fixed tau) on identical augmented test batches for every trial;
- geometry: alignment and uniformity (Wang & Isola, 2020) and the effective
  rank of the features (Roy & Vetterli, 2007), a collapse detector.

Two protocols, chosen by name: "paper" scores the first `paper_batches` test
batches with an 80/20 split, as the reference code does; "full" trains the
probes on the whole train split and scores the whole test split.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from rkdo_tune.config import EVAL_FEATURES, PROTOCOLS
from rkdo_tune.data import normalise, two_views
from rkdo_tune.errors import UsageError
from rkdo_tune.metrics import (
    EVAL_ALIGNMENT,
    EVAL_ARI,
    EVAL_EFFECTIVE_RANK,
    EVAL_KNN_ACC,
    EVAL_LINEAR_ACC,
    EVAL_NEIGHBORHOOD_ACC,
    EVAL_NMI,
    EVAL_UNIFORMITY,
    EVAL_YARDSTICK_LOSS,
)
from rkdo_tune.objectives import icon_loss

# The yardstick's batches come from a generator with this seed in every trial,
# whatever the trial's own seed, so that every trial sees the identical images
# and augmentations (on a given device type: CPU and CUDA streams differ).
YARDSTICK_SEED = 20250430
YARDSTICK_KERNEL = "gaussian"  # softmax(z1 z2^T / tau): InfoNCE with debias 0
LINEAR_MAX_ITER = 1000
KMEANS_N_INIT = 10
PAPER_TEST_SIZE = 0.2


@dataclass(frozen=True)
class EvalSettings:
    """How `evaluate` scores a model.

    protocol: "paper" (first paper_batches * batch_size test images, 80/20
    split) or "full" (probes trained on the train split, scored on the test
    split). features: "embedding" (the model's L2-normalised forward output,
    as the reference code) or "backbone" (`model.features`). batch_size is
    both the encoding batch and, for the paper protocol, the test batch size
    (64 in the reference, 32 for STL-10). seed drives the sklearn split,
    probes and KMeans; it never touches the yardstick batches.
    """

    protocol: str = "paper"
    features: str = "embedding"
    batch_size: int = 64
    paper_batches: int = 10
    knn_k: int = 5
    yardstick_tau: float = 0.5
    yardstick_batch: int = 256
    yardstick_batches: int = 4
    seed: int = 42

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            _invalid("protocol", self.protocol, f"one of {', '.join(PROTOCOLS)}")
        if self.features not in EVAL_FEATURES:
            _invalid("features", self.features, f"one of {', '.join(EVAL_FEATURES)}")
        for name in ("batch_size", "paper_batches", "knn_k", "yardstick_batches"):
            if getattr(self, name) < 1:
                _invalid(name, getattr(self, name), ">= 1")
        if self.yardstick_batch < 2:
            _invalid("yardstick_batch", self.yardstick_batch, ">= 2 (a contrastive batch)")
        if not (self.yardstick_tau > 0 and math.isfinite(self.yardstick_tau)):
            _invalid("yardstick_tau", self.yardstick_tau, "a finite number > 0")


def _invalid(name: str, value: object, rule: str) -> None:
    raise UsageError(f"evaluation setting '{name}' has value {value!r}, but it must be {rule}")


# --- geometry --------------------------------------------------------------------------


def _as_float_tensor(x) -> torch.Tensor:
    return torch.as_tensor(x).detach().float()


def alignment(z1, z2) -> float:
    """Mean ||z1_i - z2_i||^2 over positive pairs (lower is better); z1, z2: (B, D)."""
    a, b = _as_float_tensor(z1), _as_float_tensor(z2)
    return float((a - b).pow(2).sum(dim=1).mean())


def uniformity(z, t: float = 2.0) -> float:
    """log mean exp(-t ||z_i - z_j||^2) over pairs i < j (lower is more uniform); z: (B, D)."""
    x = _as_float_tensor(z)
    if x.shape[0] < 2:
        return math.nan
    sq = torch.pdist(x).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel()))


def effective_rank(x) -> float:
    """exp(entropy of the normalised singular values) of centred x: (N, D) (Roy & Vetterli).

    1 for rank-one data, close to d for an isotropic d-dimensional cloud, 0
    for a matrix whose rows are all equal (total collapse). Singular values
    at the level of the input's rounding noise count as zero, so collapsed
    float32 embeddings do not read as full-rank noise. NaN if x is not finite.
    """
    array = torch.as_tensor(x).detach().cpu().numpy()
    eps = np.finfo(array.dtype).eps if np.issubdtype(array.dtype, np.floating) else 2.0**-52
    x64 = array.astype(np.float64)
    if x64.ndim != 2 or x64.size == 0 or not np.isfinite(x64).all():
        return math.nan
    s = np.linalg.svd(x64 - x64.mean(axis=0), compute_uv=False)
    tol = max(x64.shape) * eps * max(np.linalg.norm(x64), np.finfo(np.float64).tiny)
    s = s[s > tol]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


# --- sklearn scores --------------------------------------------------------------------


def neighborhood_accuracy(features: np.ndarray, labels: np.ndarray, *, k: int) -> float:
    """Mean share of each point's k nearest neighbours (itself excluded) sharing its label.

    features: (N, D), labels: (N,). Euclidean neighbours, as the reference.
    """
    x, y = np.asarray(features), np.asarray(labels)
    k = min(k, x.shape[0] - 1)
    if k < 1:
        return math.nan
    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    # Drop the point itself; where duplicates pushed it out of the k+1, drop the farthest.
    own = idx == np.arange(x.shape[0])[:, None]
    own[~own.any(axis=1), -1] = True
    neighbours = idx[~own].reshape(x.shape[0], k)
    return float((y[neighbours] == y[:, None]).mean())


def _fit_accuracy(model, x_train, y_train, x_test, y_test) -> float:
    """Test accuracy of `model` fitted on the train part (a constant guess if it has one class)."""
    if np.unique(y_train).size < 2:
        return float((y_test == y_train[0]).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())


def _knn(k: int, n_train: int):
    """Cosine k-NN, as euclidean k-NN of L2-normalised rows (same ranking, ~6x faster)."""
    knn = KNeighborsClassifier(n_neighbors=max(1, min(k, n_train)), algorithm="brute")
    return make_pipeline(Normalizer(), knn)


def _cluster_scores(x: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> dict:
    n_clusters = max(1, min(num_classes, x.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=n_clusters, random_state=seed, n_init=KMEANS_N_INIT)
        assigned = kmeans.fit_predict(x)
    return {
        EVAL_NMI: float(normalized_mutual_info_score(y, assigned)),
        EVAL_ARI: float(adjusted_rand_score(y, assigned)),
    }


_PROBE_KEYS = (EVAL_LINEAR_ACC, EVAL_KNN_ACC, EVAL_NMI, EVAL_ARI, EVAL_NEIGHBORHOOD_ACC)


def _check_xy(features, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: need (N, D) features and (N,) labels, got {x.shape}, {y.shape}")
    return x, y


def _probe_scores(train, test, clustered, *, standardise: bool, num_classes, knn_k, seed) -> dict:
    """Linear and kNN probes train -> test; KMeans and neighbours on `clustered`; each (x, y)."""
    (x_tr, y_tr), (x_te, y_te), (x_cl, y_cl) = train, test, clustered
    if not all(np.isfinite(x).all() for x in (x_tr, x_te, x_cl)):  # a diverged model
        return dict.fromkeys(_PROBE_KEYS, math.nan)
    linear = LogisticRegression(max_iter=LINEAR_MAX_ITER, random_state=seed)
    if standardise:
        linear = make_pipeline(StandardScaler(), linear)
    return {
        EVAL_LINEAR_ACC: _fit_accuracy(linear, x_tr, y_tr, x_te, y_te),
        EVAL_KNN_ACC: _fit_accuracy(_knn(knn_k, len(y_tr)), x_tr, y_tr, x_te, y_te),
        **_cluster_scores(x_cl, y_cl, num_classes=num_classes, seed=seed),
        EVAL_NEIGHBORHOOD_ACC: neighborhood_accuracy(x_cl, y_cl, k=knn_k),
    }


def paper_protocol_scores(
    features: np.ndarray, labels: np.ndarray, *, num_classes: int, knn_k: int, seed: int
) -> dict[str, float]:
    """The reference's scores of features (N, D), labels (N,): 80/20 probes, KMeans, neighbours.

    Linear: LogisticRegression(max_iter=1000) on raw features of an 80/20
    train_test_split. kNN: a cosine k-NN classifier on the same split.
    NMI/ARI: KMeans with num_classes clusters on all the features.
    Non-finite features (a diverged model) give NaN for every score.
    """
    x, y = _check_xy(features, labels, "paper protocol")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=PAPER_TEST_SIZE, random_state=seed)
    options = {"num_classes": num_classes, "knn_k": knn_k, "seed": seed}
    return _probe_scores((x_tr, y_tr), (x_te, y_te), (x, y), standardise=False, **options)


def full_protocol_scores(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    num_classes: int,
    knn_k: int,
    seed: int,
) -> dict[str, float]:
    """Probes trained on the train split, scored on the test split; clustering on the test split.

    Linear: StandardScaler + LogisticRegression(max_iter=1000). kNN: cosine
    k-NN. NMI/ARI: KMeans on the test features. Neighbourhood agreement on
    the test features. Non-finite features give NaN for every score.
    """
    train = _check_xy(train_features, train_labels, "full protocol (train)")
    test = _check_xy(test_features, test_labels, "full protocol (test)")
    options = {"num_classes": num_classes, "knn_k": knn_k, "seed": seed}
    return _probe_scores(train, test, test, standardise=True, **options)


# --- model passes ----------------------------------------------------------------------


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """model.eval() and no_grad inside; the previous training mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _encode(
    model, images, *, features: str, batch_size: int, size: int | None, device
) -> np.ndarray:
    """Features (N, F) of uint8 images (N, C, H, W) (eval transform), as float32 numpy."""
    encode = model if features == "embedding" else model.features
    images = torch.as_tensor(images)
    chunks = [
        encode(normalise(images[start : start + batch_size], size=size).to(device)).float().cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks).numpy()


def _labels(labels) -> np.ndarray:
    return torch.as_tensor(labels).cpu().numpy()


def _yardstick_pairs(
    model, images, *, augment_spec, batch: int, batches: int, device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
    model, images, *, augment_spec, tau: float, batch: int, batches: int, device
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
    model, images_uint8, *, augment_spec, tau: float, batch: int, batches: int, device
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


def evaluate(model, data, *, settings: EvalSettings, augment_spec, device) -> dict[str, float]:
    """All nine eval/* metrics of `model` on `data` (an ImageData), as floats.

    Runs in eval mode under no_grad and restores the model's training mode.
    The effective rank is that of the scored test features (the ones the
    probes see: embeddings or backbone features, per settings.features).
    """
    encode = {
        "features": settings.features,
        "batch_size": settings.batch_size,
        "size": getattr(augment_spec, "crop_size", None),  # the size the model trains at
        "device": device,
    }
    probe = {"num_classes": data.num_classes, "knn_k": settings.knn_k, "seed": settings.seed}
    with _eval_mode(model):
        if settings.protocol == "paper":
            n = settings.paper_batches * settings.batch_size
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
