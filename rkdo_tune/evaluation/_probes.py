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
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from rkdo_tune.metrics import (
    EVAL_ARI,
    EVAL_KNN_ACC,
    EVAL_KNN_ACC_20,
    EVAL_KNN_ACC_200,
    EVAL_LINEAR_ACC,
    EVAL_LINEAR_ACC_CV,
    EVAL_NEIGHBORHOOD_ACC,
    EVAL_NMI,
    EVAL_PROBE_TEST_SIZE,
    SMALL_PROBE_TEST,
)

LINEAR_MAX_ITER = 1000
PAPER_TEST_SIZE = 0.2
# The full protocol's probe: standardised features, C chosen by stratified CV on the train
# part (on at most C_SEARCH_ROWS of it), then refitted on the whole train part.
C_GRID = (0.01, 0.1, 1.0, 10.0)
C_FOLDS = 3
C_SEARCH_ROWS = 1000  # a search on more rows costs much and moves C little
C_SEARCH_MAX_ITER = 300
# Below SMALL_PROBE_TEST probe test images one image moves the accuracy by over 0.2 points:
# the probe is also scored by repeated stratified CV over the same features.
CV_SPLITS, CV_REPEATS = 5, 2
EXTRA_KNN = {EVAL_KNN_ACC_20: 20, EVAL_KNN_ACC_200: 200}  # capped by the train part's size
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


def _standardised_probe(seed: int, c: float = 1.0, max_iter: int = LINEAR_MAX_ITER) -> Pipeline:
    probe = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    return make_pipeline(StandardScaler(), probe)


def _folds(y: np.ndarray, wanted: int) -> int:
    """As many stratified folds as wanted, at most the smallest class's count."""
    return int(min(wanted, np.bincount(np.unique(y, return_inverse=True)[1]).min()))


def tuned_c(x: np.ndarray, y: np.ndarray, *, seed: int) -> float:
    """The C of `C_GRID` with the best stratified CV accuracy on (at most C_SEARCH_ROWS of) x, y.

    StratifiedKFold(C_FOLDS, shuffled with `seed`); in each fold the standardised probe
    walks `C_GRID` upwards warm-started from the previous C's weights (the regularisation
    path, as glmnet and sklearn's LogisticRegressionCV walk it), each fit at most
    C_SEARCH_MAX_ITER iterations. The best mean accuracy wins; a tie goes to the smaller
    C, as GridSearchCV's rank does. 1.0 when a class has too few for two folds.
    """
    if len(y) > C_SEARCH_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=C_SEARCH_ROWS, stratify=y, random_state=seed)
    folds = _folds(y, C_FOLDS)
    if folds < 2 or np.unique(y).size < 2:
        return 1.0
    accuracy = np.zeros(len(C_GRID))
    for fit_rows, val_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        scaler = StandardScaler().fit(x[fit_rows])
        x_fit, x_val = scaler.transform(x[fit_rows]), scaler.transform(x[val_rows])
        probe = LogisticRegression(max_iter=C_SEARCH_MAX_ITER, warm_start=True, random_state=seed)
        for index, c in enumerate(sorted(C_GRID)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                probe.set_params(C=c).fit(x_fit, y[fit_rows])
            accuracy[index] += float((probe.predict(x_val) == y[val_rows]).mean())
    return float(sorted(C_GRID)[int(np.argmax(accuracy))])  # argmax: the first, smallest C


def tuned_linear_accuracy(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, *, seed: int
) -> float:
    """Test accuracy of the standardised probe at the C that CV on the train part chose."""
    c = tuned_c(x_tr, y_tr, seed=seed) if np.unique(y_tr).size > 1 else 1.0
    return _fit_accuracy(_standardised_probe(seed, c), x_tr, y_tr, x_te, y_te)


def cv_linear_accuracy(x: np.ndarray, y: np.ndarray, *, seed: int) -> float:
    """Mean accuracy of the standardised probe (C = 1) over repeated stratified CV.

    For small probe test parts: every image is scored CV_REPEATS times instead of one
    fixed fifth once. C is not searched here: a search inside each of the ten folds
    would cost twelve more fits per fold. NaN when a class has fewer than two members.
    """
    folds = _folds(y, CV_SPLITS)
    if folds < 2 or np.unique(y).size < 2:
        return math.nan
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=CV_REPEATS, random_state=seed)
    probe = _standardised_probe(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(cross_val_score(probe, x, y, cv=cv).mean())


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


_PROBE_KEYS = (
    EVAL_LINEAR_ACC,
    EVAL_KNN_ACC,
    *EXTRA_KNN,
    EVAL_NMI,
    EVAL_ARI,
    EVAL_NEIGHBORHOOD_ACC,
)


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
    cv_probe: bool,
) -> dict[str, float]:
    """Linear and kNN probes train -> test; KMeans and neighbours on `clustered`; each (x, y).

    With `cv_probe` and a test part under SMALL_PROBE_TEST, also the repeated-CV probe."""
    (x_tr, y_tr), (x_te, y_te), (x_cl, y_cl) = train, test, clustered
    if not all(np.isfinite(x).all() for x in (x_tr, x_te, x_cl)):  # a diverged model
        return dict.fromkeys(_PROBE_KEYS, math.nan) | {EVAL_PROBE_TEST_SIZE: float(len(y_te))}
    if standardise:
        linear = tuned_linear_accuracy(x_tr, y_tr, x_te, y_te, seed=seed)
    else:
        probe = LogisticRegression(max_iter=LINEAR_MAX_ITER, random_state=seed)
        linear = _fit_accuracy(probe, x_tr, y_tr, x_te, y_te)
    knn = {
        name: _fit_accuracy(_knn(k, len(y_tr)), x_tr, y_tr, x_te, y_te)
        for name, k in EXTRA_KNN.items()
    }
    small = {}
    if cv_probe and len(y_te) < SMALL_PROBE_TEST:
        everything = (np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]))
        small[EVAL_LINEAR_ACC_CV] = cv_linear_accuracy(*everything, seed=seed)
    return {
        EVAL_LINEAR_ACC: linear,
        EVAL_PROBE_TEST_SIZE: float(len(y_te)),
        **small,
        EVAL_KNN_ACC: _fit_accuracy(_knn(knn_k, len(y_tr)), x_tr, y_tr, x_te, y_te),
        **knn,
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


def linear_accuracy(test: XY, train: XY | None = None, *, seed: int) -> float:
    """The protocol's linear probe alone (for a second layer): the paper's 80/20 split of
    `test` with the reference's probe, or (with `train`) the full protocol's tuned probe."""
    x, y = _check_xy(*test, "linear probe")
    if not np.isfinite(x).all():
        return math.nan
    if train is None:
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=PAPER_TEST_SIZE, random_state=seed
        )
        probe = LogisticRegression(max_iter=LINEAR_MAX_ITER, random_state=seed)
        return _fit_accuracy(probe, x_tr, y_tr, x_te, y_te)
    x_tr, y_tr = _check_xy(*train, "linear probe (train)")
    if not np.isfinite(x_tr).all():
        return math.nan
    return tuned_linear_accuracy(x_tr, y_tr, x, y, seed=seed)


def paper_protocol_scores(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    knn_k: int,
    seed: int,
    kmeans_n_init: int,
    kmeans_k: str,
    cv_probe: bool = True,
) -> dict[str, float]:
    """The reference's scores of features (N, D), labels (N,): 80/20 probes, KMeans, neighbours.

    Linear: LogisticRegression(max_iter=1000) on raw features of an 80/20
    train_test_split (the reference's probe, kept for fidelity); its test part is
    small (141 images of 704), so `cv_linear_accuracy` is reported beside it.
    kNN: a cosine k-NN classifier on the same split, at knn_k, 20 and 200.
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
        "cv_probe": cv_probe,
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
    cv_probe: bool = True,
) -> dict[str, float]:
    """Probes trained on the train split, scored on the test split; clustering on the test split.

    Linear: StandardScaler + LogisticRegression(max_iter=1000) at the C that
    stratified CV on the train part chose (`tuned_c`); with fewer than
    SMALL_PROBE_TEST test images also `cv_linear_accuracy` over train and test.
    kNN: cosine k-NN at knn_k, 20 and 200 (capped by the train split's size).
    NMI/ARI: KMeans on the test features (k and runs as for the paper
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
        "cv_probe": cv_probe,
    }
    return _probe_scores(train, test, test, standardise=True, **options)
