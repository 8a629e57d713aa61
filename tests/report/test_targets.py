"""Compute-to-target in the report: the target's rule, censored reach, medians, the ratio."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_stats import ACC, frame, seed_rows

from rkdo_tune import metrics as m
from rkdo_tune.report import _md_targets, _ratio, _targets
from rkdo_tune.survival import CONTRADICTED, SUPPORTED, UNDETERMINED


def history_rows(run_id: str, steps: list[int], values: list[float]) -> list[dict]:
    return [
        {"run_id": run_id, "key": ACC, "step": s, "value": v}
        for s, v in zip(steps, values, strict=True)
    ]


def test_the_target_is_the_controls_final_mean_unless_overridden():
    seeds = frame(seed_rows("i", "icon", [0.6, 0.8, math.nan]), seed_rows("r", "rkdo", [0.9]))
    board = pd.DataFrame({f"{ACC} mean": [0.9, 0.7]})
    control = ("i", "I-Con baseline")
    kwargs = {"seeds": seeds, "board": board, "metric": ACC, "mode": "max"}
    target = _targets.choose_target(given=None, fraction=None, control=control, **kwargs)
    assert target.value == pytest.approx(0.7) and target.reference == pytest.approx(0.7)
    assert (target.fraction, target.control) == (1.0, "i")
    assert "final seed-mean of the I-Con baseline (i, 2 seeds, 0.7000)" in target.note
    half = _targets.choose_target(given=None, fraction=0.5, control=control, **kwargs)
    assert half.value == pytest.approx(0.35) and "--target-fraction" in half.note
    given = _targets.choose_target(given=0.42, fraction=None, control=control, **kwargs)
    assert given.value == 0.42 and given.note == "given with --target"
    loss = _targets.choose_target(
        given=None, fraction=0.5, control=control, seeds=seeds, board=board, metric=ACC, mode="min"
    )
    assert loss.value == pytest.approx(1.4)  # a "min" target loosens by division


def test_without_an_icon_run_the_target_falls_back_and_says_so():
    board = pd.DataFrame({f"{ACC} mean": [0.4, 0.6, math.nan]})
    kwargs = {"seeds": frame(), "board": board, "metric": ACC, "control": None}
    target = _targets.choose_target(given=None, fraction=None, mode="max", **kwargs)
    assert target.value == pytest.approx(0.54) and "no I-Con run" in target.note
    assert math.isnan(target.reference) and target.control is None
    assert _targets.shown_targets(target, mode="max") == [(None, target.value)]
    low = _targets.choose_target(given=None, fraction=None, mode="min", **kwargs)
    assert low.value == pytest.approx(0.4 / 0.9)


def test_shown_targets_are_the_headline_then_the_fractions():
    target = _targets.Target(0.8, "", reference=0.8, fraction=1.0, control="i")
    shown = _targets.shown_targets(target, mode="max")
    assert shown == [(1.0, 0.8), (0.9, pytest.approx(0.72)), (0.95, pytest.approx(0.76))]


def test_reached_means_staying_and_a_never_reaching_run_is_censored_at_its_budget():
    seeds = frame(
        seed_rows("r", "rkdo", [0.6, 0.7, 0.2]),
        seed_rows("i", "icon", [0.6, 0.6], steps_per_epoch=None, eval_every=2),
    )
    seeds[m.DIAG_STEPS] = [40, 40, 40, math.nan, math.nan]
    history = pd.DataFrame(
        history_rows("r-0", [10, 20, 30, 40], [0.1, 0.55, 0.4, 0.6])  # a spike at 20
        + history_rows("r-1", [10, 20, 30, 40], [0.55, 0.6, 0.7, 0.7])
        + history_rows("r-2", [10, 20, 30, 40], [0.1, 0.2, 0.2, 0.2])  # never
        + history_rows("i-0", [20, 40, 60], [0.3, 0.5, 0.6])
        + history_rows("i-1", [20, 40, 60], [0.2, 0.4, 0.6])
    )
    reached = _targets.target_reached(seeds, history, metric=ACC, target=0.5, mode="max")
    by_run = reached.set_index(["trial_id", "seed"])
    assert by_run.at[("r", 1), "step"] == 40 and not by_run.at[("r", 1), "censored"]
    assert by_run.at[("r", 2), "step"] == 10 and by_run.at[("r", 2), "epoch"] == 1
    assert math.isnan(by_run.at[("r", 3), "step"]) and by_run.at[("r", 3), "censored"]
    assert by_run.at[("r", 3), "time"] == 40 == by_run.at[("r", 3), "budget"]  # 4 epochs x 10
    # No steps_per_epoch nor diag/steps: the first eval (step 20) closes epoch eval_every=2.
    assert by_run.at[("i", 1), "epoch"] == 4 and by_run.at[("i", 2), "epoch"] == 6
    assert by_run.at[("i", 1), "budget"] == 40  # 4 epochs x 10 inferred steps

    by_trial = _targets.compute_to_target_by_trial(reached).set_index("trial_id")
    assert by_trial.at["r", "reached"] == pytest.approx(2 / 3)
    # Kaplan–Meier over 10, 40 and 40+ (censored): S(10) = 2/3, S(40) = 1/3: median 40.
    assert by_trial.at["r", "median_steps"] == 40
    assert by_trial.at["i", "median_steps"] == 40  # 40 and 60: S(40) = 0.5
    summary = _targets.compute_to_target_by_objective(reached, best={"rkdo": "r", "icon": "i"})
    assert list(summary["scope"]) == [
        "best: r",
        "all configurations",
        "best: i",
        "all configurations",
    ]


def test_min_mode_reaches_downward():
    seeds = frame(seed_rows("r", "rkdo", [1.0]))
    history = pd.DataFrame(history_rows("r-0", [10, 20, 30], [2.0, 1.4, 1.0]))
    reached = _targets.target_reached(seeds, history, metric=ACC, target=1.5, mode="min")
    assert reached["step"].tolist() == [20]


def curves(rng: np.random.Generator, speed: float, seeds: range) -> dict[int, np.ndarray]:
    """Noisy saturating curves over 10 evaluations (steps 10..100)."""
    steps = np.arange(10, 110, 10)
    return {s: 0.8 * (1 - np.exp(-steps / speed)) + rng.normal(0, 0.01, 10) for s in seeds}


def _sweep_tables(rkdo_speed: float, icon_speed: float):
    rng = np.random.default_rng(5)
    seed_ids = range(1, 6)
    values = {"r": curves(rng, rkdo_speed, seed_ids), "i": curves(rng, icon_speed, seed_ids)}
    rows, history = [], []
    for trial, objective in (("r", "rkdo"), ("i", "icon")):
        finals = [values[trial][s][-1] for s in seed_ids]
        group = seed_rows(trial, objective, finals, epochs=10, steps_per_epoch=10)
        rows.append(group)
        for row, s in zip(group, seed_ids, strict=True):
            history += history_rows(row["run_id"], list(range(10, 110, 10)), list(values[trial][s]))
    return frame(*rows), pd.DataFrame(history), values


def _hand_ratio(values, target: float) -> tuple[float, list[float]]:
    steps = np.arange(10, 110, 10)

    def reach(curve: np.ndarray) -> float:
        stays = [i for i in range(10) if (curve[i:] >= target).all()]
        return float(steps[stays[0]]) if stays else 100.0

    logs = [math.log(reach(values["r"][s]) / reach(values["i"][s])) for s in range(1, 6)]
    return math.exp(np.mean(logs)), logs


def test_step_ratio_is_the_paired_geometric_mean_with_the_seeded_bootstrap():
    seeds, history, values = _sweep_tables(rkdo_speed=8, icon_speed=30)
    control_final = float(np.mean([values["i"][s][-1] for s in range(1, 6)]))
    target = _targets.Target(0.9 * control_final, "", control_final, 0.9, "i")
    t = _ratio.compute_to_target(
        seeds, history, target=target, metric=ACC, mode="max", pair=("r", "i")
    )
    row = t.ratios.iloc[0]
    ratio, logs = _hand_ratio(values, 0.9 * control_final)
    assert row["ratio"] == pytest.approx(ratio)
    ci = stats.bootstrap(
        (np.array(logs),),
        np.mean,
        n_resamples=9999,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((math.exp(ci.low), math.exp(ci.high)))
    assert list(t.ratios["fraction"]) == [0.9, 0.95, 1.0] and row["distinct_resamples"] == 126
    assert t.claim.word == row["verdict"] == SUPPORTED
    # At the control's own final mean most control seeds end below it: censored.
    at_full = t.ratios.set_index("fraction").loc[1.0]
    assert at_full["icon_censored"] >= 3 and at_full["rkdo_censored"] == 0


def test_a_slow_rkdo_contradicts_the_claim_and_no_pair_is_undetermined():
    seeds, history, values = _sweep_tables(rkdo_speed=30, icon_speed=30)
    control_final = float(np.mean([values["i"][s][-1] for s in range(1, 6)]))
    target = _targets.Target(0.8 * control_final, "", control_final, 0.8, "i")
    t = _ratio.compute_to_target(
        seeds, history, target=target, metric=ACC, mode="max", pair=("r", "i")
    )
    assert t.claim.word == CONTRADICTED, t.claim.line
    alone = _ratio.compute_to_target(
        seeds, history, target=target, metric=ACC, mode="max", pair=None
    )
    assert alone.claim.word == UNDETERMINED and alone.ratios.empty
    text = "\n".join(_md_targets.section(t, metric=ACC, mode="max"))
    assert t.claim.line in text and "126 distinct resamples" in text and "coarse" in text


def test_seed_metrics_carry_steps_and_the_censoring_flag():
    reached = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "time": [20.0, 50.0, math.nan],
            "censored": [False, True, True],
        }
    )
    assert _targets.seed_metrics(reached) == {
        "a": {m.REPORT_STEPS_TO_TARGET: 20.0, m.REPORT_TARGET_CENSORED: 0.0},
        "b": {m.REPORT_STEPS_TO_TARGET: 50.0, m.REPORT_TARGET_CENSORED: 1.0},
    }
