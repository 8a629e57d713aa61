import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from torch import nn

from rkdo_tune import evaluation, metrics
from rkdo_tune.data import ImageData, augmentation_for, two_views
from rkdo_tune.errors import UsageError
from rkdo_tune.evaluation import (
    EvalSettings,
    alignment,
    effective_rank,
    evaluate,
    full_protocol_scores,
    neighborhood_accuracy,
    paper_protocol_scores,
    uniformity,
    yardstick_loss,
)

PAPER_KMEANS = {"kmeans_n_init": 1, "kmeans_k": "labels"}  # the reference's KMeans
PROBE_KEYS = {
    metrics.EVAL_LINEAR_ACC,
    metrics.EVAL_KNN_ACC,
    metrics.EVAL_KNN_ACC_20,
    metrics.EVAL_KNN_ACC_200,
    metrics.EVAL_NMI,
    metrics.EVAL_ARI,
    metrics.EVAL_NEIGHBORHOOD_ACC,
}
# Below 500 probe test images the repeated-CV probe is scored too, and the size is reported.
SMALL_TEST_KEYS = {metrics.EVAL_LINEAR_ACC_CV, metrics.EVAL_PROBE_TEST_SIZE}


def gaussian_clusters(n: int, classes: int, dim: int, *, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    centres = rng.normal(size=(classes, dim)) * spread
    return centres[labels] + rng.normal(size=(n, dim)), labels


# --- sklearn scores --------------------------------------------------------------------


def test_paper_scores_on_separated_clusters():
    x, y = gaussian_clusters(640, 10, 32, spread=10.0, seed=0)
    scores = paper_protocol_scores(x, y, num_classes=10, knn_k=5, seed=42, **PAPER_KMEANS)
    assert set(scores) == PROBE_KEYS | SMALL_TEST_KEYS
    assert scores[metrics.EVAL_PROBE_TEST_SIZE] == 128  # a fifth of 640
    # k = 200 of 512 train images votes over ~4 classes of 51: no longer a local probe.
    for key in (PROBE_KEYS - {metrics.EVAL_KNN_ACC_200}) | {metrics.EVAL_LINEAR_ACC_CV}:
        assert scores[key] > 0.97, key


def test_paper_scores_on_random_labels_are_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(640, 32))
    y = rng.integers(0, 10, size=640)
    scores = paper_protocol_scores(x, y, num_classes=10, knn_k=5, seed=42, **PAPER_KMEANS)
    assert scores[metrics.EVAL_LINEAR_ACC] < 0.25
    assert scores[metrics.EVAL_KNN_ACC] < 0.25
    assert scores[metrics.EVAL_NEIGHBORHOOD_ACC] < 0.15
    assert scores[metrics.EVAL_NMI] < 0.1
    assert abs(scores[metrics.EVAL_ARI]) < 0.05


def test_full_scores_on_clusters_and_random_labels():
    x, y = gaussian_clusters(1300, 10, 16, spread=10.0, seed=2)
    full_kmeans = {"kmeans_n_init": 10, "kmeans_k": "classes"}
    good = full_protocol_scores(
        x[:1000], y[:1000], x[1000:], y[1000:], num_classes=10, knn_k=5, seed=0, **full_kmeans
    )
    assert set(good) == PROBE_KEYS | SMALL_TEST_KEYS
    assert min(good[k] for k in PROBE_KEYS - {metrics.EVAL_KNN_ACC_200}) > 0.97
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(1300, 16))
    labels = rng.integers(0, 10, size=1300)
    split = (noise[:1000], labels[:1000], noise[1000:], labels[1000:])
    bad = full_protocol_scores(*split, num_classes=10, knn_k=5, seed=0, **full_kmeans)
    assert bad[metrics.EVAL_LINEAR_ACC] < 0.25
    assert bad[metrics.EVAL_KNN_ACC] < 0.25
    assert bad[metrics.EVAL_NMI] < 0.1


@pytest.mark.parametrize(
    ("kmeans", "k", "n_init"),
    [(PAPER_KMEANS, 4, 1), ({"kmeans_n_init": 10, "kmeans_k": "classes"}, 10, 10)],
)
def test_kmeans_takes_the_protocols_k_and_initialisations(kmeans, k, n_init):
    """4 of 10 classes present (a test subset): k is 4 by the labels, 10 by the classes."""
    x, y = gaussian_clusters(704, 4, 8, spread=1.5, seed=7)
    scores = paper_protocol_scores(x, y, num_classes=10, knn_k=5, seed=42, **kmeans)
    assigned = KMeans(n_clusters=k, random_state=42, n_init=n_init).fit_predict(x)
    assert scores[metrics.EVAL_NMI] == normalized_mutual_info_score(y, assigned)
    assert scores[metrics.EVAL_ARI] == adjusted_rand_score(y, assigned)


def test_nonfinite_features_give_nan_scores():
    x, y = gaussian_clusters(100, 4, 8, spread=5.0, seed=4)
    x[3, 2] = np.nan
    scores = paper_protocol_scores(x, y, num_classes=4, knn_k=5, seed=0, **PAPER_KMEANS)
    assert set(scores) == PROBE_KEYS | {metrics.EVAL_PROBE_TEST_SIZE}
    assert all(math.isnan(scores[key]) for key in PROBE_KEYS)


def test_neighborhood_accuracy_matches_double_loop():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 5))
    y = rng.integers(0, 3, size=60)
    k = 5
    shares = []
    for i in range(len(x)):
        dist = [(np.sum((x[i] - x[j]) ** 2), j) for j in range(len(x)) if j != i]
        nearest = [j for _, j in sorted(dist)[:k]]
        shares.append(np.mean([y[j] == y[i] for j in nearest]))
    assert neighborhood_accuracy(x, y, k=k) == pytest.approx(np.mean(shares))


def test_neighborhood_accuracy_with_duplicate_points():
    x = np.repeat(np.arange(10.0)[:, None], 3, axis=0)  # every point three times
    y = np.repeat(np.arange(10), 3)
    # Each point's two twins share its label; k=2 excludes the point itself.
    assert neighborhood_accuracy(x, y, k=2) == 1.0


# --- geometry --------------------------------------------------------------------------


def test_effective_rank():
    rng = np.random.default_rng(6)
    rank_one = np.outer(rng.normal(size=300), rng.normal(size=16)) + 3.0
    assert effective_rank(rank_one) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(rng.normal(size=(5000, 8))) > 7.8
    assert effective_rank(np.ones((50, 8))) == 0.0
    collapsed = torch.ones(200, 64) / 8 + 1e-8 * torch.randn(200, 64)  # float32 rounding noise
    assert effective_rank(collapsed) < 1.5
    assert math.isnan(effective_rank(np.full((4, 4), np.nan)))


def test_alignment_and_uniformity():
    z = F.normalize(torch.randn(32, 8), dim=1)
    assert alignment(z, z) == 0.0
    assert alignment(z, -z) == pytest.approx(4.0)
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(antipodal) == pytest.approx(-8.0)
    assert uniformity(torch.ones(5, 3)) == pytest.approx(0.0)  # collapsed: the maximum


# --- evaluate() on a tiny model --------------------------------------------------------


class TinyModel(nn.Module):
    def __init__(self, channels: int = 1, size: int = 8, feature_dim: int = 16, head_dim: int = 8):
        super().__init__()
        self.backbone = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, feature_dim))
        self.dropout = nn.Dropout(0.5)  # makes the outputs depend on eval mode
        self.head = nn.Linear(feature_dim, head_dim)

    def features(self, x):
        return torch.relu(self.backbone(x))

    def forward(self, x):
        return F.normalize(self.head(self.dropout(self.features(x))), dim=1)


def tiny_data(classes: int = 4, train: int = 120, test: int = 90) -> ImageData:
    g = torch.Generator().manual_seed(0)
    protos = torch.randint(0, 256, (classes, 1, 8, 8), generator=g)

    def split(n):
        labels = torch.arange(n) % classes
        jitter = torch.randint(-20, 21, (n, 1, 8, 8), generator=g)
        return (protos[labels] + jitter).clamp(0, 255).to(torch.uint8), labels.long()

    train_images, train_labels = split(train)
    test_images, test_labels = split(test)
    return ImageData("tiny", train_images, train_labels, test_images, test_labels, classes)


def digits_spec():
    """The real augmentation of 1-channel 8x8 images."""
    return augmentation_for("digits", image_size=8, channels=1)


SMALL = {"batch_size": 16, "yardstick_batch": 32, "yardstick_batches": 2}


@pytest.mark.parametrize(("eval_batches", "features"), [(3, "embedding"), (None, "backbone")])
def test_evaluate_all_keys_deterministic_and_restores_mode(eval_batches, features):
    torch.manual_seed(0)
    model, data = TinyModel(), tiny_data()
    settings = EvalSettings(eval_batches=eval_batches, features=features, **SMALL)
    model.train()
    first = evaluate(model, data, settings=settings, augment_spec=digits_spec(), device="cpu")
    assert model.training
    torch.manual_seed(123)  # the global RNG must not matter
    model.eval()
    second = evaluate(model, data, settings=settings, augment_spec=digits_spec(), device="cpu")
    assert not model.training
    assert set(first) == set(metrics.EVAL_METRICS) - set(metrics.CURVE_METRICS)  # the trainer's
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.values())
    assert first == second
    assert all(p.grad is None for p in model.parameters())


def test_yardstick_is_independent_of_trial_seed_and_matches_infonce():
    torch.manual_seed(0)
    model, data = TinyModel(), tiny_data()
    a = evaluate(
        model,
        data,
        settings=EvalSettings(seed=1, **SMALL),
        augment_spec=digits_spec(),
        device="cpu",
    )
    b = evaluate(
        model,
        data,
        settings=EvalSettings(seed=2, **SMALL),
        augment_spec=digits_spec(),
        device="cpu",
    )
    for key in (metrics.EVAL_YARDSTICK_LOSS, metrics.EVAL_ALIGNMENT, metrics.EVAL_UNIFORMITY):
        assert a[key] == b[key]
    model.train()
    alone = yardstick_loss(
        model,
        data.test_images,
        augment_spec=digits_spec(),
        tau=0.5,
        batch=32,
        batches=2,
        device="cpu",
    )
    assert model.training
    assert alone == pytest.approx(a[metrics.EVAL_YARDSTICK_LOSS])
    # InfoNCE by hand on the first yardstick batch: cross-entropy of z1 z2^T / tau.
    g = torch.Generator().manual_seed(evaluation.YARDSTICK_SEED)
    idx = torch.randperm(data.test_images.shape[0], generator=g)[:32]
    v1, v2 = two_views(data.test_images[idx], digits_spec(), g)
    model.eval()
    with torch.no_grad():
        z1, z2 = model(v1), model(v2)
        by_hand = F.cross_entropy(z1 @ z2.T / 0.5, torch.arange(32))
    one_batch = yardstick_loss(
        model,
        data.test_images,
        augment_spec=digits_spec(),
        tau=0.5,
        batch=32,
        batches=1,
        device="cpu",
    )
    assert one_batch == pytest.approx(float(by_hand), rel=1e-5)
    # Larger than the test split: the whole split, every time.
    whole = yardstick_loss(
        model,
        data.test_images,
        augment_spec=digits_spec(),
        tau=0.5,
        batch=10_000,
        batches=1,
        device="cpu",
    )
    assert math.isfinite(whole)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("eval_batches", 0),
        ("features", "logits"),
        ("knn_k", 0),
        ("yardstick_batch", 1),
        ("kmeans_k", "some"),
        ("kmeans_n_init", 0),
    ],
)
def test_eval_settings_reject_bad_values(key, value):
    with pytest.raises(UsageError, match=key):
        EvalSettings(**{key: value})
