"""Floors and the ceiling as values: the stricter floor, the CI rule, the MLflow round trip."""

from __future__ import annotations

import math

from rkdo_tune import metrics as m
from rkdo_tune.floors import (
    RANDOM_INIT,
    RAW_PIXELS,
    SUPERVISED,
    FloorKey,
    References,
    check_floor,
    reference_rows,
)

KEY = FloorKey("digits", "small_cnn", "paper", 42)
REFS = References(
    KEY,
    {
        RAW_PIXELS: {m.EVAL_LINEAR_ACC: 0.914, m.EVAL_KNN_ACC: 0.95},
        RANDOM_INIT: {m.EVAL_LINEAR_ACC: 0.80, m.EVAL_YARDSTICK_LOSS: 5.0},
    },
    {SUPERVISED: "not computed: too costly"},
    test_size=141,
)


def test_the_stricter_floor_is_the_higher_one_or_for_a_loss_the_lower():
    assert REFS.floor(m.EVAL_LINEAR_ACC) == (0.914, RAW_PIXELS)
    assert REFS.floor(m.EVAL_YARDSTICK_LOSS) == (5.0, RANDOM_INIT)
    assert REFS.floor(m.EVAL_NMI) is None


def test_an_arm_beats_the_floor_only_when_its_whole_ci_is_beyond_it():
    above = check_floor(REFS, m.EVAL_LINEAR_ACC, [0.95, 0.96, 0.955])
    straddles = check_floor(REFS, m.EVAL_LINEAR_ACC, [0.90, 0.93, 0.92])
    one_seed = check_floor(REFS, m.EVAL_LINEAR_ACC, [0.99])
    assert above.beats and not straddles.beats
    assert not one_seed.beats and one_seed.n == 1  # no interval, nothing shown
    loss = check_floor(REFS, m.EVAL_YARDSTICK_LOSS, [4.0, 4.1, 4.05])
    assert loss.beats  # lower is better for a loss


def test_metrics_and_tag_round_trip():
    metrics = REFS.to_metrics("floor/")
    assert metrics["floor/raw_pixels/eval/linear_acc"] == 0.914
    back = References.from_metrics(
        FloorKey.from_tag(KEY.tag()), {**metrics, "other": 1.0}, prefix="floor/"
    )
    assert back.key == KEY and back.scores == REFS.scores
    assert FloorKey.from_tag("nonsense") is None
    assert References.from_metrics(KEY, {"x": 1.0}, prefix="floor/") is None


def test_rows_say_why_the_ceiling_is_absent():
    rows = reference_rows(REFS, [m.EVAL_LINEAR_ACC, m.EVAL_NMI])
    assert rows[0] == ["raw-pixel floor", "0.9140", "—"]
    assert rows[2][:2] == ["supervised ceiling", "not computed: too costly"]
    assert math.isnan(REFS.value(SUPERVISED, m.EVAL_LINEAR_ACC))


def test_the_key_changes_with_every_shared_setting_and_no_other():
    """The ceiling trains with the shared settings: floors are reused only where they match."""
    from rkdo_tune.config import FIELDS, SCOPE_SHARED, TrialConfig

    base = TrialConfig(dataset="digits").to_dict()
    key = FloorKey.of(base)
    assert FloorKey.from_tag(key.tag()) == key and key.settings
    changed = {"epochs": 7, "batch_size": 32, "lr": 0.01, "eval_features": "backbone", "tau": 0.2}
    for name, value in changed.items():
        assert FIELDS[name].metadata["scope"] == SCOPE_SHARED
        assert FloorKey.of({**base, name: value}) != key, name
    for name, value in {"seed": 7, "alpha": 0.9, "debias": 0.5, "objective": "icon"}.items():
        assert FloorKey.of({**base, name: value}) == key, name
    # a key recorded before the digest never matches a new one
    old = FloorKey.from_tag("dataset=digits;model=small_cnn;protocol=paper;eval_seed=42")
    assert old is not None and old.settings == "" and old != key
