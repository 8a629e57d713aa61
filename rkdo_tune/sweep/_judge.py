"""What a finished sweep concludes: ties with the best, and RKDO against the control arm.

Pure (no Ray): it reads the per-seed values in each trial's last report. The
verdict compares the search's best RKDO configuration with the control arm (the
baseline, or the best I-Con trial of a space that samples `objective`), on the
confirmation's fresh seeds when both were re-run, else on the search seeds.
The space's primary endpoint is judged against its margin, the floors (when the
sweep computed them) gate every claim, and every line names the study's context.
"""

from __future__ import annotations

import dataclasses

from rkdo_tune import metrics as m
from rkdo_tune.config import shared_settings_key
from rkdo_tune.inference import mark_ties
from rkdo_tune.judgement import context_of
from rkdo_tune.sweep.protocol import SearchSpace, SweepOutcome, TrialSummary, budget_source
from rkdo_tune.verdict import (
    DEFAULTS_FAMILY,
    FAMILY,
    STAGE_CONFIRMATION,
    STAGE_SEARCH,
    Verdict,
    build_verdict,
    config_label,
)

VERDICT_INPUTS = (*m.VERDICT_METRICS, m.TRAIN_EPOCH_LOSS)


def objective_of(trial: TrialSummary, space: SearchSpace) -> str:
    return str(trial.params.get("objective", space.base_config.objective))


def _per_seed(trial: TrialSummary) -> dict[str, dict[int, float]]:
    return {metric: trial.per_seed(metric) for metric in VERDICT_INPUTS}


def _searched(trial: TrialSummary) -> dict[str, object]:
    return {k: v for k, v in trial.params.items() if k != "objective"}


def _settings(trial: TrialSummary, space: SearchSpace) -> tuple[tuple[str, str], ...]:
    return shared_settings_key({**space.base_config.to_dict(), **trial.params})


def control_of(
    best: TrialSummary, outcome: SweepOutcome, space: SearchSpace
) -> tuple[TrialSummary | None, str]:
    """The control arm and its label: with a tuned baseline, the best trial of I-Con's own
    study; else the baseline; else the best I-Con trial at matched settings (what the
    report's matched pairs use); else the best I-Con trial at all."""
    if outcome.reference is not None:
        tuned = [t for t in outcome.ranked() if objective_of(t, space) == "icon"]
        return (tuned[0], f"tuned I-Con ({_label(tuned[0])})") if tuned else (None, "")
    if outcome.baseline is not None:
        return outcome.baseline, "I-Con baseline"
    icon = [t for t in outcome.ranked() if objective_of(t, space) == "icon"]
    matched = [t for t in icon if _settings(t, space) == _settings(best, space)]
    if matched:
        return matched[0], "I-Con (best trial at matched settings)"
    return (icon[0], "I-Con (best trial; settings not matched)") if icon else (None, "")


def _label(trial: TrialSummary) -> str:
    return config_label(_searched(trial))


def study_verdict(outcome: SweepOutcome, space: SearchSpace) -> Verdict | None:
    """RKDO's best against the control arm; None when the sweep has no pair to compare."""
    rkdo = [t for t in outcome.ranked() if objective_of(t, space) == "rkdo"]
    if not rkdo:
        return None
    control, baseline_label = control_of(rkdo[0], outcome, space)
    if control is None:
        return None
    label = _label(rkdo[0]) or "reference settings"
    untuned = control.role.is_baseline and outcome.reference is None
    searched = len({budget_source(t.trial_id) for t in rkdo}) if untuned else 0
    labels = (label, baseline_label)
    return _paired(rkdo[0], control, outcome, space, labels=labels, searched=searched)


def defaults_verdict(outcome: SweepOutcome, space: SearchSpace) -> Verdict | None:
    """With a tuned baseline, RKDO's default against I-Con's (the two baseline-arm trials)."""
    if outcome.reference is None or outcome.baseline is None:
        return None
    labels = ("default", "I-Con default")
    return _paired(
        outcome.reference, outcome.baseline, outcome, space, labels=labels, family=DEFAULTS_FAMILY
    )


def _paired(
    best: TrialSummary,
    control: TrialSummary,
    outcome: SweepOutcome,
    space: SearchSpace,
    *,
    labels: tuple[str, str],
    family: str = FAMILY,
    searched: int = 0,
) -> Verdict:
    """`best` against `control`: on their confirmation re-runs when both have one, else on
    the search seeds, named by the split and the settings `best` was scored with."""
    context_values = {**space.base_config.to_dict(), **best.params}
    stage = STAGE_SEARCH
    confirmed_best = outcome.confirmation_of(best.trial_id)
    confirmed_control = outcome.confirmation_of(control.trial_id)
    confirmed = [t for t in (confirmed_best, confirmed_control) if t is not None]
    if len(confirmed) == 2 and all(t.per_seed(outcome.metric) for t in confirmed):
        best, control, stage = confirmed_best, confirmed_control, STAGE_CONFIRMATION
    context = context_of({**context_values, "eval_split": space.eval_split(stage)})
    return build_verdict(
        _per_seed(best),
        _per_seed(control),
        rkdo_label=labels[0],
        baseline_label=labels[1],
        stage=stage,
        primary=space.verdict.metric,
        margin=space.verdict.margin,
        context=context,
        references=outcome.references if context.on_test else None,
        family=family,
        searched=searched,
    )


def judge(outcome: SweepOutcome, space: SearchSpace) -> SweepOutcome:
    """The outcome with its tie marks (search stage, one Holm family) and its verdict."""
    ranked = outcome.ranked()
    ties = ()
    if ranked:
        per_seed = {t.trial_id: t.per_seed(outcome.metric) for t in ranked}
        ties = tuple(mark_ties(per_seed, best=ranked[0].trial_id))
    return dataclasses.replace(
        outcome,
        ties=ties,
        verdict=study_verdict(outcome, space),
        defaults_verdict=defaults_verdict(outcome, space),
    )
