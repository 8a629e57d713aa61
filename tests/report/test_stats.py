"""The report's statistics on hand-built tables whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS, SCOPES
from rkdo_tune.inference import holm
from rkdo_tune.report import _pairs, _stats, _verdict

ACC = m.EVAL_LINEAR_ACC


def seed_rows(trial_id: str, objective: str, values: list[float], **config) -> list[dict]:
    """One row per seed (seeds 1, 2, ...) with `values` as the final linear accuracy."""
    base = {
        "tau": 0.5,
        "beta": 0.1,
        "tau_schedule": "level",
        "epochs": 4,
        "alpha": 0.5,
        "debias": 0.2,
        "status": "completed",
        "steps_per_epoch": 10,
        "eval_every": 1,
    }
    return [
        {
            **base,
            **config,
            "run_id": f"{trial_id}-{i}",
            "trial_id": trial_id,
            "objective": objective,
            "seed": i + 1,
            ACC: value,
        }
        for i, value in enumerate(values)
    ]


def frame(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def test_leaderboard_mean_std_and_ranking():
    seeds = frame(
        seed_rows("a", "rkdo", [0.1, 0.3], alpha=0.3),
        seed_rows("b", "icon", [0.5, 0.7, 0.9]),
        seed_rows("c", "rkdo", [math.nan, math.nan]),
    )
    board = _stats.leaderboard_frame(seeds, metric=ACC, mode="max", params=["alpha"], metrics=[ACC])
    assert list(board["trial_id"]) == ["b", "a", "c"]  # NaN ranks last
    row = board.set_index("trial_id")
    assert row.at["a", f"{ACC} mean"] == pytest.approx(0.2)
    assert row.at["a", f"{ACC} std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert row.at["b", f"{ACC} mean"] == pytest.approx(0.7)
    assert row.at["b", f"{ACC} std"] == pytest.approx(0.2)
    assert row.at["a", "alpha"] == 0.3
    assert pd.isna(row.at["b", "alpha"])  # alpha does not apply to I-Con
    assert list(board["rank"]) == [1, 2, 3]
    board_min = _stats.leaderboard_frame(seeds, metric=ACC, mode="min", params=[], metrics=[])
    assert list(board_min["trial_id"]) == ["a", "b", "c"]


def test_paired_test_is_scipys_and_pairs_by_seed_whatever_the_row_order():
    rkdo = [0.30, 0.35, 0.31, 0.40, 0.33]
    icon = [0.28, 0.36, 0.25, 0.33, 0.30]
    seeds = frame(seed_rows("r", "rkdo", rkdo), seed_rows("i", "icon", icon))
    shuffled = seeds.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert list(shuffled["seed"]) != sorted(shuffled["seed"])
    table = _pairs.matched_comparison(shuffled, [("r", "i")], metrics=[ACC])
    row = table.iloc[0]
    diff = np.array(rkdo) - np.array(icon)
    assert row["p_value"] == pytest.approx(stats.ttest_rel(rkdo, icon).pvalue, rel=1e-12)
    assert row["d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-12)
    assert row["n"] == 5
    assert row["diff"] == pytest.approx(diff.mean())
    ci = stats.ttest_rel(rkdo, icon).confidence_interval()
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((ci.low, ci.high))
    assert row["p_holm"] == pytest.approx(row["p_value"])  # a family of one test
    assert row["p_value"] > 0.05 and pd.isna(row["better"])  # RKDO is higher, but not shown to be
    wrong_pairing = stats.ttest_rel(rkdo, icon[::-1]).pvalue
    assert not math.isclose(row["p_value"], wrong_pairing)


def test_matched_table_is_one_holm_family_and_names_a_winner_only_below_alpha():
    def rows(trial, objective, acc, yardstick, **config):
        out = seed_rows(trial, objective, acc, **config)
        for row, value in zip(out, yardstick, strict=True):
            row[m.EVAL_YARDSTICK_LOSS] = value
        return out

    seeds = frame(
        rows("r", "rkdo", [0.90, 0.92, 0.91, 0.93], [2.0, 2.1, 2.05, 2.02]),
        rows("i", "icon", [0.80, 0.83, 0.80, 0.82], [2.5, 2.52, 2.6, 2.55]),
        rows("r2", "rkdo", [0.81, 0.80, 0.84, 0.80], [2.51, 2.49, 2.62, 2.5], tau=0.3),
        rows("i2", "icon", [0.80, 0.83, 0.80, 0.82], [2.5, 2.52, 2.6, 2.55], tau=0.3),
    )
    metrics = [ACC, m.EVAL_YARDSTICK_LOSS]
    table = _pairs.matched_comparison(seeds, [("r", "i"), ("r2", "i2")], metrics=metrics)
    raw = [
        stats.ttest_rel(
            seeds.loc[seeds["trial_id"] == a, metric], seeds.loc[seeds["trial_id"] == b, metric]
        ).pvalue
        for a, b in (("r", "i"), ("r2", "i2"))
        for metric in metrics
    ]
    assert table["p_value"].tolist() == pytest.approx(raw)
    assert table["p_holm"].tolist() == pytest.approx(holm(raw))
    assert table["p_holm"].tolist() != pytest.approx(raw)  # the family of 4 costs something
    by_test = table.set_index(["rkdo_trial", "metric"])["better"]
    assert by_test[("r", ACC)] == "rkdo"  # higher accuracy
    assert by_test[("r", m.EVAL_YARDSTICK_LOSS)] == "rkdo"  # lower loss
    assert pd.isna(by_test[("r2", ACC)]) and pd.isna(by_test[("r2", m.EVAL_YARDSTICK_LOSS)])


def test_pairs_drop_missing_seeds_and_non_finite_values():
    seeds = frame(
        seed_rows("r", "rkdo", [0.3, math.nan, 0.5, 0.6]),
        seed_rows("i", "icon", [0.2, 0.3, 0.4]),
    )
    joined = _pairs.paired_values(seeds, rkdo_trial="r", icon_trial="i", metric=ACC)
    assert list(joined["seed"]) == [1, 3]  # seed 2 is NaN for RKDO, seed 4 has no I-Con run
    assert _pairs.paired_test(np.array([0.1]), np.array([0.2])) == (
        pytest.approx(math.nan, nan_ok=True),
        pytest.approx(math.nan, nan_ok=True),
    )


def test_matching_ignores_objective_knobs_but_not_shared_settings():
    seeds = frame(
        seed_rows("r_t3", "rkdo", [0.1], tau=0.3, alpha=0.9, beta=0.3),
        seed_rows("r_t5", "rkdo", [0.1], tau=0.5),
        seed_rows("i_t3", "icon", [0.1], tau=0.3, debias=0.5),
        seed_rows("i_t5", "icon", [0.1], tau=0.5),
        seed_rows("i_e8", "icon", [0.1], tau=0.5, epochs=8),
        seed_rows("i_stop", "icon", [0.1], tau=0.5, status="stopped"),
    )
    assert _pairs.matched_trial_pairs(seeds) == [("r_t3", "i_t3"), ("r_t5", "i_t5")]


def test_beta_matters_for_matching_once_tau_cools_over_training():
    seeds = frame(
        seed_rows("r", "rkdo", [0.1], beta=0.3, tau_schedule="linear"),
        seed_rows("i", "icon", [0.1], beta=0.1, tau_schedule="linear"),
    )
    assert _pairs.matched_trial_pairs(seeds) == []
    assert _stats.param_applies("icon", "beta", tau_schedule="linear")
    assert not _stats.param_applies("icon", "beta", tau_schedule="level")


def test_loss_improvement_is_the_papers_table_1_measure():
    # CIFAR-10, 10 epochs in the paper: RKDO 1.6200 vs I-Con 2.3127.
    assert _pairs.loss_improvement_pct(icon=2.3127, rkdo=1.6200) == pytest.approx(29.952, abs=1e-3)
    assert _pairs.loss_improvement_pct(icon=1.0, rkdo=1.5) == pytest.approx(-50.0)


def test_paper_claims_puts_loss_beside_yardstick_and_probe():
    def rows(trial, objective, loss, yardstick, acc):
        out = seed_rows(trial, objective, acc)
        for row, l_value, y_value in zip(out, loss, yardstick, strict=True):
            row[m.TRAIN_EPOCH_LOSS], row[m.EVAL_YARDSTICK_LOSS] = l_value, y_value
        return out

    seeds = frame(
        rows("r", "rkdo", [1.0, 2.0], [3.0, 3.2], [0.30, 0.40]),
        rows("i", "icon", [3.0, 3.0], [2.9, 3.1], [0.40, 0.50]),
    )
    claims = _pairs.paper_claims(seeds, [("r", "i")]).iloc[0]
    assert claims["loss_improvement_pct"] == pytest.approx(100 * (3.0 - 1.5) / 3.0)
    assert claims["yardstick_improvement_pct"] == pytest.approx(100 * (3.0 - 3.1) / 3.0)
    assert claims["probe_diff"] == pytest.approx(0.35 - 0.45)
    assert claims["epochs"] == 4


def test_best_trial_per_objective_and_metric_by_param():
    seeds = frame(
        seed_rows("a", "rkdo", [0.1, 0.3], alpha=0.3),
        seed_rows("b", "rkdo", [0.5, 0.7], alpha=0.7),
        seed_rows("c", "icon", [0.4, 0.4]),
    )
    board = _stats.leaderboard_frame(seeds, metric=ACC, mode="max", params=[], metrics=[])
    best = [_verdict.best_of(board, mode="max", objective=o) for o in ("rkdo", "icon")]
    assert best == ["b", "c"]
    table = _stats.metric_by_param(seeds[seeds["objective"] == "rkdo"], param="alpha", metric=ACC)
    assert table["value"].tolist() == [0.3, 0.7]
    assert table["mean"].tolist() == pytest.approx([0.2, 0.6])
    assert _stats.varying(seeds, ["alpha", "tau"]) == ["alpha"]


def test_every_config_field_has_a_scope_and_the_objective_lists_come_from_it():
    unclassified = [name for name, f in FIELDS.items() if f.metadata.get("scope") not in SCOPES]
    assert unclassified == []
    # The lists as they were written by hand before the fields carried their scope.
    assert set(_stats.RKDO_ONLY) == {
        "alpha",
        "depth",
        "detach_target",
        "recursion",
        "temporal_anchors",
        "alpha_schedule",
        "alpha_min",
        "alpha_decay_factor",
        "alpha_step_every",
        "alpha_patience",
    }
    assert set(_stats.ICON_ONLY) == {"debias", "kernel", "student_df"}
    assert set(_stats.BOOKKEEPING) == {
        "seed",
        "objective",
        "data_dir",
        "download",
        "log_every",
        "target_metric_value",
        "eval_every_steps",  # evaluation draws no training randomness (tests/training)
    }
