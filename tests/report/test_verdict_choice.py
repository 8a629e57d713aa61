"""The report's verdict pieces on hand-built tables: ranking, ties, arms, control, seeds, text."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rkdo_tune import metrics as m
from rkdo_tune.inference import holm
from rkdo_tune.report import _families, _md_verdict, _stats, _targets, _verdict
from rkdo_tune.tracking.reading import TrialRole

ACC = m.EVAL_LINEAR_ACC
SEARCH_SEEDS, FRESH_SEEDS = (1, 2, 3), (7, 8, 9)


def rows(trial_id, objective, values, *, seeds=SEARCH_SEEDS, status="completed", **config):
    """Seed rows with `values` as the final linear accuracy (and a kNN value beside it)."""
    base = {"tau": 0.5, "beta": 0.1, "tau_schedule": "level", "epochs": 4, "alpha": 0.5}
    return [
        {
            **base,
            **config,
            "run_id": f"{trial_id}-{seed}",
            "trial_id": trial_id,
            "objective": objective,
            "seed": seed,
            "status": status,
            ACC: value,
            m.EVAL_KNN_ACC: value - 0.1,
        }
        for seed, value in zip(seeds, values, strict=True)
    ]


def frame(*groups) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def board_of(seeds: pd.DataFrame, mode: str = "max") -> pd.DataFrame:
    return _stats.leaderboard_frame(seeds, metric=ACC, mode=mode, params=["alpha"], metrics=[ACC])


def test_ranking_breaks_ties_by_trial_id_and_a_non_finite_seed_ranks_last():
    seeds = frame(
        rows("t2", "rkdo", [0.9, 0.8, 0.7]),
        rows("t1", "rkdo", [0.7, 0.9, 0.8]),  # the same mean as t2
        rows("t0", "rkdo", [0.99, 0.98, math.nan]),  # best shown mean, but a seed has none
    )
    board = board_of(seeds)
    assert list(board["trial_id"]) == ["t1", "t2", "t0"]
    t0 = board.set_index("trial_id").loc["t0"]
    assert t0[f"{ACC} mean"] == pytest.approx(0.985) and math.isnan(t0[_stats.RANK_MEAN])
    t1 = board.set_index("trial_id").loc["t1"]
    ci = stats.t.interval(0.95, 2, loc=0.8, scale=stats.sem([0.7, 0.9, 0.8]))
    assert (t1[f"{ACC} ci_lo"], t1[f"{ACC} ci_hi"]) == pytest.approx(ci)
    assert _verdict.best_of(board, mode="max") == "t1"


def test_ties_are_paired_tests_against_the_best_in_one_holm_family():
    best, close, far = [0.95, 0.96, 0.97], [0.949, 0.962, 0.965], [0.80, 0.82, 0.81]
    seeds = frame(rows("a", "rkdo", best), rows("b", "rkdo", close), rows("c", "rkdo", far))
    board = board_of(seeds)
    marks = _stats.tie_marks(seeds, board, metric=ACC)
    shown = _stats.with_ties(board, marks).set_index("trial_id")
    raw = [stats.ttest_rel(best, other).pvalue for other in (close, far)]
    assert [shown.at["b", "p_holm_vs_best"], shown.at["c", "p_holm_vs_best"]] == pytest.approx(
        holm(raw)
    )
    assert shown.at["c", "delta_vs_best"] == pytest.approx(np.mean(far) - np.mean(best))
    assert list(shown["tied_with_best"]) == [True, True, False]
    assert (
        _families.family(_families.TIES, raw).label() == "Holm family 'ties with the best', 2 tests"
    )


ROLES = {
    "s1": TrialRole(),
    "s2": TrialRole(),
    "base": TrialRole(arm="baseline"),
    "c1": TrialRole(stage="confirmation", confirms="s1"),
    "cb": TrialRole(arm="baseline", stage="confirmation", confirms="base"),
}


def study_seeds(*, confirm_baseline: bool = True) -> pd.DataFrame:
    groups = [
        rows("s1", "rkdo", [0.93, 0.94, 0.95], alpha=0.3),
        rows("s2", "rkdo", [0.90, 0.91, 0.93], alpha=0.6),
        rows("base", "icon", [0.90, 0.92, 0.91]),
        rows("c1", "rkdo", [0.92, 0.93, 0.935], seeds=FRESH_SEEDS, alpha=0.3),
    ]
    if confirm_baseline:
        groups.append(rows("cb", "icon", [0.91, 0.915, 0.92], seeds=FRESH_SEEDS))
    return frame(*groups)


def test_arms_split_by_stage_and_the_confirmation_map():
    arms = _verdict.split_arms(study_seeds(), ROLES, baseline_tag="base")
    assert set(arms.search["trial_id"]) == {"s1", "s2"}
    assert set(arms.baseline_seeds["trial_id"]) == {"base"}
    assert set(arms.confirmation["trial_id"]) == {"c1", "cb"}
    assert set(arms.confirmation["seed"]).isdisjoint(arms.search_stage["seed"])
    assert arms.baseline == "base" and arms.confirmation_of == {"s1": "c1", "base": "cb"}
    older = _verdict.split_arms(study_seeds(), {}, baseline_tag="")  # runs without the tags
    assert len(older.search) == len(study_seeds()) and older.baseline is None


def verdict_for(seeds, roles=ROLES, **tags) -> _verdict.StudyVerdict:
    arms = _verdict.split_arms(seeds, roles, baseline_tag=tags.get("baseline", ""))
    return _verdict.study_verdict(
        board_of(arms.search),
        arms,
        metric=ACC,
        mode="max",
        trial_params={"s1": {"alpha": 0.3}, "s2": {"alpha": 0.6}, "base": {"objective": "icon"}},
        names=["alpha"],
        tags={"best": "", "baseline": "", "confirmed": (), **tags},
    )


def test_the_verdict_uses_fresh_seeds_when_both_arms_were_confirmed():
    study = verdict_for(study_seeds(), best="s1", baseline="base")
    assert (study.rkdo, study.control.trial_id, study.control.kind) == (
        "s1",
        "base",
        _verdict.CONTROL_BASELINE,
    )
    v = study.verdict
    assert (
        v.stage == "confirmation" and v.seeds == FRESH_SEEDS and study.estimated_on == ("c1", "cb")
    )
    linear = v.rows[0]
    expected = stats.ttest_rel([0.92, 0.93, 0.935], [0.91, 0.915, 0.92])
    assert linear.comparison.p_t == pytest.approx(expected.pvalue)
    assert v.rkdo_label == "α = 0.3" and study.warnings == ()
    assert study.pair == ("s1", "base")


def test_without_the_baselines_confirmation_it_falls_back_to_the_search_seeds():
    study = verdict_for(study_seeds(confirm_baseline=False), best="s2", confirmed=("s1", "s2"))
    assert study.verdict.stage == "search" and study.verdict.seeds == SEARCH_SEEDS
    assert study.estimated_on == ("s1", "base") and study.others.empty
    assert any("names s2 as the best trial" in w and "rank s1 first" in w for w in study.warnings)
    assert any("without confirmation runs: s2" in w for w in study.warnings)
    text = "\n".join(_md_verdict.verdict_section(study, metric=ACC))
    assert "Estimated on the search seeds 1, 2, 3 (stage search)" in text
    assert "winner's curse" in text and "> **Warning:**" in text


def test_other_confirmed_configurations_are_one_holm_family_against_the_controls_rerun():
    roles = {**ROLES, "s3": TrialRole(), "c2": TrialRole(stage="confirmation", confirms="s2")}
    roles["c3"] = TrialRole(stage="confirmation", confirms="s3")
    seeds = frame(
        study_seeds().to_dict("records"),
        rows("s3", "rkdo", [0.80, 0.81, 0.82], alpha=0.9),
        rows("c2", "rkdo", [0.95, 0.96, 0.955], seeds=FRESH_SEEDS, alpha=0.6),
        rows("c3", "rkdo", [0.80, 0.82, 0.815], seeds=FRESH_SEEDS, alpha=0.9),
    )
    study = verdict_for(seeds, roles)
    control = [0.91, 0.915, 0.92]
    raw = [
        stats.ttest_rel([0.95, 0.96, 0.955], control).pvalue,
        stats.ttest_rel([0.80, 0.82, 0.815], control).pvalue,
    ]
    assert list(study.others["trial_id"]) == ["s2", "s3"]  # leaderboard order, best left out
    assert study.others["p_holm"].tolist() == pytest.approx(holm(raw))
    families = _md_verdict.verdict_families(study)
    assert [(f.name, f.size) for f in families] == [("verdict", 2), (_families.CONFIRMED, 2)]


def test_control_without_a_baseline_arm_prefers_a_matched_icon_trial():
    seeds = frame(
        rows("r", "rkdo", [0.9, 0.91, 0.92], tau=0.3),
        rows("i_far", "icon", [0.95, 0.96, 0.97], tau=0.5),  # better, but other settings
        rows("i_near", "icon", [0.85, 0.86, 0.87], tau=0.3),
    )
    study = verdict_for(seeds, roles={})
    assert study.control.trial_id == "i_near" and study.control.kind == _verdict.CONTROL_MATCHED
    assert study.best == "i_far" and study.rkdo == "r"  # the search's best is an I-Con trial
    unmatched = verdict_for(
        frame(rows("r", "rkdo", [0.9, 0.92, 0.91], tau=0.3), rows("i", "icon", [0.8, 0.83, 0.81])),
        roles={},
    )
    assert unmatched.control.kind == _verdict.CONTROL_UNMATCHED


def test_no_icon_run_is_one_line_and_too_few_seeds_prints_no_p():
    alone = verdict_for(frame(rows("r", "rkdo", [0.9, 0.91, 0.92])), roles={})
    assert alone.verdict is None
    lines = _md_verdict.verdict_section(alone, metric=ACC)
    assert lines == ["## Verdict", "", alone.missing] and "no I-Con run" in alone.missing
    two = frame(
        rows("r", "rkdo", [0.9, 0.91], seeds=(1, 2)), rows("i", "icon", [0.8, 0.82], seeds=(1, 2))
    )
    text = "\n".join(_md_verdict.verdict_section(verdict_for(two, roles={}), metric=ACC))
    assert "Too few seeds for a test: 2 pairs, 3 needed" in text
    assert "p_Holm =" not in text


def test_a_diverged_seed_enters_the_verdict_and_a_failed_one_does_not():
    seeds = frame(
        rows("r", "rkdo", [0.9], seeds=(1,)),
        rows("r", "rkdo", [0.2], seeds=(2,), status="diverged"),
        rows("r", "rkdo", [0.9], seeds=(3,), status="failed"),
    )
    assert _verdict.per_seed(seeds, "r", [ACC]) == {ACC: {1: 0.9, 2: 0.2}}


def test_compute_to_target_uses_the_given_best_not_the_fastest():
    reached = pd.DataFrame(
        {
            "trial_id": ["fast", "fast", "chosen", "chosen", "i", "i"],
            "objective": ["rkdo", "rkdo", "rkdo", "rkdo", "icon", "icon"],
            "seed": [1, 2, 1, 2, 1, 2],
            "time": [10.0, 10.0, 30.0, 50.0, 40.0, 40.0],
            "censored": [False] * 6,
            "steps_per_epoch": [10.0] * 6,
        }
    )
    table = _targets.compute_to_target_by_objective(reached, best={"rkdo": "chosen", "icon": "i"})
    assert "best: chosen" in set(table["scope"]) and "best: fast" not in set(table["scope"])
    chosen = table[table["scope"] == "best: chosen"]
    assert chosen["median_steps"].iloc[0] == 30.0  # S(30) = 0.5 over 30 and 50


def test_families_section_lists_each_family_once_with_its_size():
    families = [_families.family(_families.VERDICT, [0.1, 0.2, math.nan])]
    families.append(_families.family(_families.MATCHED, [0.01] * 4))
    text = "\n".join(_md_verdict.families_section(families))
    assert "| verdict | 2 |" in text and "| matched settings | 4 |" in text
    assert set(_families.MEMBERS) == set(_families.NAMES)
