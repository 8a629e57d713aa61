"""Scores of fixed features by sklearn: linear and k-NN probes, KMeans NMI/ARI, neighbours."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from rkdo_tune.metrics import (
    EVAL_ARI,
    EVAL_KNN_ACC,
    EVAL_LINEAR_ACC,
    EVAL_NEIGHBORHOOD_ACC,
    EVAL_NMI,
)

LINEAR_MAX_ITER = 1000
PAPER_TEST_SIZE = 0.2
XY = tuple[np.ndarray, np.ndarray]  # features (N, D) and labels (N,)


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


def _fit_accuracy(
    model: BaseEstimator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> float:
    """Test accuracy of `model` fitted on the train part (a constant guess if it has one class)."""
    if np.unique(y_train).size < 2:
        return float((y_test == y_train[0]).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())


def _knn(k: int, n_train: int) -> Pipeline:
    """Cosine k-NN, as euclidean k-NN of L2-normalised rows (same ranking, ~6x faster)."""
    knn = KNeighborsClassifier(n_neighbors=max(1, min(k, n_train)), algorithm="brute")
    return make_pipeline(Normalizer(), knn)


def _cluster_scores(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    seed: int,
    kmeans_n_init: int,
    kmeans_k: str,
) -> dict[str, float]:
    """KMeans NMI/ARI of x (N, D) against y (N,), with k = kmeans_k: "labels" or "classes"."""
    k = np.unique(y).size if kmeans_k == "labels" else num_classes
    n_clusters = max(1, min(k, x.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=n_clusters, random_state=seed, n_init=kmeans_n_init)
        assigned = kmeans.fit_predict(x)
    return {
        EVAL_NMI: float(normalized_mutual_info_score(y, assigned)),
        EVAL_ARI: float(adjusted_rand_score(y, assigned)),
    }


_PROBE_KEYS = (EVAL_LINEAR_ACC, EVAL_KNN_ACC, EVAL_NMI, EVAL_ARI, EVAL_NEIGHBORHOOD_ACC)


def _check_xy(features: np.ndarray, labels: np.ndarray, what: str) -> XY:
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: need (N, D) features and (N,) labels, got {x.shape}, {y.shape}")
    return x, y


def _probe_scores(
    train: XY,
    test: XY,
    clustered: XY,
    *,
    standardise: bool,
    num_classes: int,
    knn_k: int,
    seed: int,
    kmeans_n_init: int,
    kmeans_k: str,
) -> dict[str, float]:
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
        **_cluster_scores(
            x_cl,
            y_cl,
            num_classes=num_classes,
            seed=seed,
            kmeans_n_init=kmeans_n_init,
            kmeans_k=kmeans_k,
        ),
        EVAL_NEIGHBORHOOD_ACC: neighborhood_accuracy(x_cl, y_cl, k=knn_k),
    }


def paper_protocol_scores(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    knn_k: int,
    seed: int,
    kmeans_n_init: int,
    kmeans_k: str,
) -> dict[str, float]:
    """The reference's scores of features (N, D), labels (N,): 80/20 probes, KMeans, neighbours.

    Linear: LogisticRegression(max_iter=1000) on raw features of an 80/20
    train_test_split. kNN: a cosine k-NN classifier on the same split.
    NMI/ARI: KMeans (k-means++, kmeans_n_init runs) on all the features, with
    k = the distinct labels present (kmeans_k "labels", the reference) or num_classes.
    Non-finite features (a diverged model) give NaN for every score.
    """
    x, y = _check_xy(features, labels, "paper protocol")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=PAPER_TEST_SIZE, random_state=seed)
    options = {
        "num_classes": num_classes,
        "knn_k": knn_k,
        "seed": seed,
        "kmeans_n_init": kmeans_n_init,
        "kmeans_k": kmeans_k,
    }
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
    kmeans_n_init: int,
    kmeans_k: str,
) -> dict[str, float]:
    """Probes trained on the train split, scored on the test split; clustering on the test split.

    Linear: StandardScaler + LogisticRegression(max_iter=1000). kNN: cosine
    k-NN. NMI/ARI: KMeans on the test features (k and runs as for the paper
    protocol). Neighbourhood agreement on the test features. Non-finite
    features give NaN for every score.
    """
    train = _check_xy(train_features, train_labels, "full protocol (train)")
    test = _check_xy(test_features, test_labels, "full protocol (test)")
    options = {
        "num_classes": num_classes,
        "knn_k": knn_k,
        "seed": seed,
        "kmeans_n_init": kmeans_n_init,
        "kmeans_k": kmeans_k,
    }
    return _probe_scores(train, test, test, standardise=True, **options)
