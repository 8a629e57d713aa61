"""The study sections of a space: the I-Con control arm and confirmation on fresh seeds."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rkdo_tune.errors import UsageError
from rkdo_tune.sweep import count_trials, load_space
from rkdo_tune.sweep._judge import judge
from rkdo_tune.sweep.confirm import chosen_for_confirmation, confirmation_points
from rkdo_tune.sweep.plan import SweepOptions, plan_sweep
from rkdo_tune.sweep.protocol import (
    ARM_KEY,
    SweepOutcome,
    TrialRole,
    TrialSummary,
    seed_key,
    split_markers,
)
from rkdo_tune.verdict import ARM_BASELINE, STAGE_CONFIRMATION

SPACE = """
name: study
description: An RKDO-only space for the study sections.
metric: {name: eval/linear_acc, mode: max}
base: {dataset: digits, epochs: 1, steps_per_epoch: 2}
parameters:
  alpha: {type: float, low: 0.1, high: 0.9}
search: {algorithm: random, num_samples: 4}
repeats: {seeds: [42, 123, 456]}
"""


def _space(tmp_path, extra: str = "", overrides=()):
    path = tmp_path / "study.yaml"
    path.write_text(SPACE + extra)
    return load_space(path, overrides=list(overrides))


def test_an_rkdo_only_space_gets_the_default_icon_arm(tmp_path):
    space = _space(tmp_path)
    assert space.baseline == {"objective": "icon"}
    assert count_trials(space) == (4 + 1) * 3


def test_the_baseline_keys_override_and_null_or_flag_turns_it_off(tmp_path):
    assert _space(tmp_path, "baseline: {debias: 0.1}\n").baseline == {
        "objective": "icon",
        "debias": 0.1,
    }
    assert _space(tmp_path, "baseline: null\n").baseline is None
    assert _space(tmp_path).with_updates(no_baseline=True).baseline is None
    assert _space(tmp_path, overrides=["baseline.kernel=student_t"]).baseline["kernel"] == (
        "student_t"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("baseline: {debias: 2.0}\n", "baseline.debias: 2.0 is invalid"),
        ("baseline: {objective: rkdo}\n", "baseline.objective: 'rkdo' is invalid"),
        ("baseline: {seed: 3}\n", "baseline.seed: 3 is invalid"),
        ("baseline: {nope: 1}\n", "baseline.nope"),
        ("confirm: {top: 9}\n", "confirm.top: 9 is invalid: the search runs only 4"),
        ("confirm: {top: 1, seeds: [7, 42]}\n", "confirm.seeds[1]: 42 is invalid: the search"),
        ("confirm: {top: 1, seeds: [7, 7]}\n", "confirm.seeds[1]: 7 is invalid: duplicate"),
        ("confirm: {seeds: [7]}\n", "confirm.top"),
    ],
)
def test_bad_study_sections_are_one_line_errors(tmp_path, extra, message):
    with pytest.raises(UsageError) as info:
        _space(tmp_path, extra)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_space_that_samples_the_objective_has_its_own_controls(tmp_path):
    space = load_space("smoke.yaml")
    assert space.baseline is None
    path = tmp_path / "s.yaml"
    path.write_text(space.source.read_text() + "baseline: {}\n")
    with pytest.raises(UsageError, match="its I-Con trials are the controls"):
        load_space(path)


def test_confirmation_seeds_are_fresh_and_the_plan_counts_them(tmp_path):
    space = _space(tmp_path, "confirm: {top: 2}\n")
    assert not set(space.confirm.seeds) & set(space.seeds)
    assert len(space.confirm.seeds) == len(space.seeds)
    assert count_trials(space) == 5 * 3 + 3 * 3  # the top 2 and the baseline, again
    plan = plan_sweep(space, SweepOptions(name="n", storage=str(tmp_path)))
    assert plan.confirm_experiment_path == f"{tmp_path}/n-confirm"
    described = dict(plan.describe())
    assert described["confirmation"] == "top 2 and the baseline on fresh seeds 789, 101, 7"
    assert _space(tmp_path, "confirm: {top: 1, seeds: [1, 2, 3]}\n").confirm.seeds == (1, 2, 3)
    assert _space(tmp_path).with_updates(confirm_top=1).confirm.top == 1


def _summary(trial_id, value, *, arm="search", seeds=(42, 123, 456), offset=0.0, alpha=0.5):
    metrics = {seed_key(s, "eval/linear_acc"): value + offset * i for i, s in enumerate(seeds)}
    role = TrialRole(arm=arm)
    params = {"objective": "icon"} if arm == ARM_BASELINE else {"alpha": alpha}
    return TrialSummary(trial_id, params, value, 0.0, "completed", "", 1, metrics, role)


def _outcome(tmp_path, trials):
    space = _space(tmp_path)
    plan = plan_sweep(space, SweepOptions(name="n", storage=str(tmp_path)))
    return SweepOutcome(plan, "eval/linear_acc", "max", tuple(trials), 0), space


def test_best_is_one_definition_and_the_baseline_is_never_ranked(tmp_path):
    outcome, _ = _outcome(
        tmp_path,
        [
            _summary("t3", 0.9),
            _summary("t2", 0.9),
            _summary("t1", 0.8),
            _summary("base", 0.99, arm=ARM_BASELINE),
            _summary("t0", math.nan),
        ],
    )
    assert [t.trial_id for t in outcome.ranked()] == ["t2", "t3", "t1"]
    assert outcome.baseline.trial_id == "base"
    chosen = chosen_for_confirmation(outcome, 2)
    assert [t.trial_id for t in chosen] == ["t2", "t3", "base"]
    points = confirmation_points(chosen)
    roles = [split_markers(p)[0] for p in points]
    assert [r.confirms for r in roles] == ["t2", "t3", "base"]
    assert all(r.stage == STAGE_CONFIRMATION for r in roles)
    assert points[2][ARM_KEY] == ARM_BASELINE and split_markers(points[0])[1] == {"alpha": 0.5}


def _two_rkdo_and_the_baseline() -> list[TrialSummary]:
    return [
        _summary("a", 0.90, offset=0.01, alpha=0.3),
        _summary("b", 0.80, offset=0.001),
        _summary("base", 0.85, arm=ARM_BASELINE, offset=-0.005),
    ]


def test_judge_marks_ties_and_compares_the_best_with_the_baseline(tmp_path):
    outcome, space = _outcome(tmp_path, _two_rkdo_and_the_baseline())
    judged = judge(outcome, space)
    marks = {m.trial_id: m for m in judged.ties}
    assert marks["a"].tied and not marks["b"].tied
    row = judged.verdict.rows[0]
    assert row.metric == "eval/linear_acc" and judged.verdict.rkdo_label == "α = 0.3"
    assert row.comparison.n == 3 and row.comparison.delta == pytest.approx(0.05 + 0.015)


def test_a_failed_confirmation_leaves_the_verdict_on_the_search_seeds(tmp_path):
    trials = [_summary("a", 0.90, offset=0.01), _summary("base", 0.85, arm=ARM_BASELINE)]
    outcome, space = _outcome(tmp_path, trials)
    failed = [
        TrialSummary(
            f"c{i}",
            {},
            math.nan,
            math.nan,
            "error",
            "boom",
            0,
            {},
            TrialRole(arm=arm, stage=STAGE_CONFIRMATION, confirms=confirms),
        )
        for i, (arm, confirms) in enumerate([("search", "a"), (ARM_BASELINE, "base")])
    ]
    judged = judge(dataclasses.replace(outcome, confirmation=tuple(failed)), space)
    assert judged.verdict.stage == "search" and judged.verdict.seeds == (42, 123, 456)


# --- a tuned baseline (`baseline: {tune: true}`) ----------------------------------------


def test_a_tuned_baseline_searches_icons_own_knobs_with_the_same_budget(tmp_path):
    space = _space(tmp_path, "baseline: {tune: true}\nconfirm: {top: 1}\n")
    assert [p.name for p in space.baseline_search] == [
        "objective",
        "debias",
        "kernel",
        "student_df",
    ]
    assert space.fixed_arm == {"objective": "rkdo"}  # RKDO's default beside RKDO's study
    icon = space.baseline_study()
    assert icon.base_config.objective == "icon" and icon.fixed_arm == {"objective": "icon"}
    assert icon.search.num_samples == space.search.num_samples
    assert (icon.search.algorithm, icon.search.seed) == (space.search.algorithm, space.search.seed)
    assert (icon.scheduler, icon.seeds, icon.confirm) == (
        space.scheduler,
        space.seeds,
        space.confirm,
    )
    # each study's 4 samples and its default; each objective's top 1 and both defaults again
    assert count_trials(space) == 2 * (4 + 1) * 3 + (2 * 1 + 2) * 3
    described = dict(plan_sweep(space, SweepOptions(name="n", storage=str(tmp_path))).describe())
    assert described["configurations (Optuna trials)"] == "4 RKDO + 4 I-Con (tuned baseline)"


def test_a_tuned_baseline_searches_tau_where_rkdo_does_and_leaves_fixed_knobs(tmp_path):
    extra = "baseline: {tune: true, kernel: gaussian}\n"
    space = _space(tmp_path, extra, overrides=["parameters.tau={type: float, low: 0.1, high: 1}"])
    assert [p.name for p in space.baseline_search] == ["objective", "debias", "tau"]
    tau = next(p for p in space.baseline_search if p.name == "tau")
    assert (tau.low, tau.high) == (0.1, 1)  # RKDO's own range
    student = _space(tmp_path, "baseline: {tune: true, kernel: student_t}\n")
    df = next(p for p in student.baseline_search if p.name == "student_df")
    assert df.when == {}  # the kernel is fixed: the df is searched unconditionally
    based = _space(tmp_path, "baseline: {tune: true}\n", overrides=["base.debias=0.3"])
    assert "debias" not in [p.name for p in based.baseline_search]


@pytest.mark.parametrize(
    ("extra", "overrides", "message"),
    [
        ("baseline: {tune: 1}\n", (), "baseline.tune: 1 is invalid: expected true or false"),
        (
            "baseline: {tune: true}\n",
            ["search.algorithm=grid", "parameters.alpha.step=0.2", "search.num_samples=4"],
            "baseline.tune: True is invalid: a tuned baseline samples",
        ),
    ],
)
def test_bad_tuned_baselines_are_one_line_errors(tmp_path, extra, overrides, message):
    with pytest.raises(UsageError) as info:
        _space(tmp_path, extra, overrides=overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def _tuned_outcome(tmp_path):
    trials = [
        _summary("r1", 0.90, offset=0.01, alpha=0.3),
        _summary("r2", 0.80, alpha=0.6),
        _summary("i1", 0.88, offset=-0.01),
        _summary("i2", 0.95),
        _summary("rdef", 0.85, arm=ARM_BASELINE),
        _summary("idef", 0.84, arm=ARM_BASELINE, offset=0.002),
    ]
    icon = {"objective": "icon", "debias": 0.4}
    trials = [
        dataclasses.replace(t, params=icon) if t.trial_id.startswith("i") else t for t in trials
    ]
    trials[4] = dataclasses.replace(trials[4], params={"objective": "rkdo"})
    return _outcome(tmp_path, trials)


def test_a_tuned_baselines_confirmation_takes_each_objectives_top_and_both_defaults(tmp_path):
    outcome, _ = _tuned_outcome(tmp_path)
    assert outcome.reference.trial_id == "rdef" and outcome.baseline.trial_id == "idef"
    chosen = chosen_for_confirmation(outcome, 1)
    assert [t.trial_id for t in chosen] == ["r1", "i2", "rdef", "idef"]


def test_judge_compares_tuned_with_tuned_and_default_with_default(tmp_path):
    outcome, space = _tuned_outcome(tmp_path)
    judged = judge(outcome, space)
    assert judged.verdict.baseline_label == "tuned I-Con (debias = 0.4)"
    assert judged.verdict.rows[0].comparison.delta == pytest.approx(0.90 + 0.01 - 0.95)
    defaults = judged.defaults_verdict
    assert (defaults.rkdo_label, defaults.baseline_label) == ("default", "I-Con default")
    assert defaults.family == "default against default"
    assert defaults.rows[0].comparison.delta == pytest.approx(0.85 - 0.84 - 0.002)


def test_an_untuned_control_against_several_rkdo_configurations_is_flagged(tmp_path):
    from rkdo_tune.verdict import verdict_lines

    outcome, space = _outcome(tmp_path, _two_rkdo_and_the_baseline())
    verdict = judge(outcome, space).verdict
    assert verdict.searched == 2
    assert any(
        "RKDO's best of 2 configurations meets one I-Con" in x for x in verdict_lines(verdict)
    )
    tuned, space = _tuned_outcome(tmp_path)
    judged = judge(tuned, space)
    assert judged.verdict.searched == 0 == judged.defaults_verdict.searched
    assert not any("untuned" in x for x in verdict_lines(judged.verdict))
