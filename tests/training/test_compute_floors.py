"""The floors and the ceiling, computed by the run's own evaluation (training.floors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rkdo_tune import metrics as m
from rkdo_tune.config import TrialConfig
from rkdo_tune.data import augmentation_for, load_dataset
from rkdo_tune.evaluation import EvalSettings, evaluate
from rkdo_tune.floors import RANDOM_INIT, RAW_PIXELS, SUPERVISED, FloorKey, settings_digest
from rkdo_tune.models import build_model
from rkdo_tune.training.callbacks import History
from rkdo_tune.training.floors import compute_references, raw_pixel_scores
from rkdo_tune.training.summary import overspecialisation_delta
from rkdo_tune.training.trainer import seed_everything


def _pixels(images: torch.Tensor) -> np.ndarray:
    return (images.float() / 255 * 2 - 1).flatten(1).numpy()


def _floor(config: TrialConfig) -> dict[str, float]:
    data = load_dataset("digits")
    spec = augmentation_for("digits", image_size=8, channels=1)
    return raw_pixel_scores(data, settings=EvalSettings.from_config(config), spec=spec)


def test_paper_protocol_raw_pixel_floor_is_a_direct_sklearn_fit_on_the_same_split():
    config = TrialConfig(dataset="digits", protocol="paper")
    data = load_dataset("digits")
    n = config.eval_batches * config.eval_batch_size  # the scored subset: 704 test images
    x, y = _pixels(data.test_images[:n]), data.test_labels[:n].numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=42)
    direct = LogisticRegression(max_iter=1000, random_state=42).fit(x_tr, y_tr).score(x_te, y_te)
    assert _floor(config)[m.EVAL_LINEAR_ACC] == pytest.approx(direct)


def test_full_protocol_raw_pixel_floor_is_a_direct_sklearn_fit_on_the_same_split():
    config = TrialConfig(dataset="digits", protocol="full")
    data = load_dataset("digits")

    def probe(**kwargs):
        lr = LogisticRegression(random_state=42, **kwargs)
        return make_pipeline(StandardScaler(), lr)

    x, y = _pixels(data.train_images), data.train_labels.numpy()
    # C tuned by stratified CV on 1000 rows of the train split (sklearn's own grid search
    # with cold, converged fits: the warm-started path must choose the same) ...
    rows, _, labels, _ = train_test_split(x, y, train_size=1000, stratify=y, random_state=42)
    search = GridSearchCV(
        probe(max_iter=5000),
        {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]},
        cv=StratifiedKFold(3, shuffle=True, random_state=42),
    ).fit(rows, labels)
    best = search.best_params_["logisticregression__C"]  # ... then refitted on all of it
    final = probe(max_iter=1000, C=best).fit(x, y)
    direct = final.score(_pixels(data.test_images), data.test_labels.numpy())
    assert _floor(config)[m.EVAL_LINEAR_ACC] == pytest.approx(direct)


def test_random_init_floor_is_the_untrained_model_evaluated_identically():
    config = TrialConfig(dataset="digits", epochs=1, steps_per_epoch=2, device="cpu")
    refs = compute_references(config)
    assert refs.key == FloorKey(
        "digits", "small_cnn", "paper", 42, settings_digest(config.to_dict())
    )
    seed_everything(config.seed)
    model = build_model("small_cnn", in_channels=1)
    data = load_dataset("digits")
    spec = augmentation_for("digits", image_size=8, channels=1)
    again = evaluate(
        model, data, settings=EvalSettings.from_config(config), augment_spec=spec, device="cpu"
    )
    assert refs.scores[RANDOM_INIT][m.EVAL_LINEAR_ACC] == pytest.approx(again[m.EVAL_LINEAR_ACC])
    assert set(refs.scores) == {RAW_PIXELS, RANDOM_INIT, SUPERVISED}
    assert refs.test_size == 360  # digits' test split is smaller than the 704 the protocol asks
    assert m.EVAL_YARDSTICK_LOSS in refs.scores[SUPERVISED]


def test_the_ceiling_is_skipped_with_a_reason_where_it_costs_a_trial():
    config = TrialConfig(dataset="digits", epochs=2, steps_per_epoch=3, device="cpu")
    refs = compute_references(config, ceiling_max_steps=5)
    assert SUPERVISED not in refs.scores
    assert "6 training steps" in refs.notes[SUPERVISED]


def test_overspecialisation_needs_a_drop_beyond_the_probes_own_noise():
    history = History()
    for step, acc in ((10, 0.90), (20, 0.872)):  # a drop of 2 images in 72
        history.add_eval(step, step // 10, {m.EVAL_LINEAR_ACC: acc, m.EVAL_PROBE_TEST_SIZE: 72})
    config = TrialConfig(dataset="digits")
    delta = overspecialisation_delta(config, history)
    assert delta == pytest.approx(2 * (0.9 * 0.1 / 72) ** 0.5)  # two binomial SEs: 0.071
    assert delta > 0.90 - 0.872  # so this drop does not flag
    nmi = TrialConfig(dataset="digits", monitor_metric=m.EVAL_NMI)
    assert overspecialisation_delta(nmi, history) == nmi.overspec_delta
