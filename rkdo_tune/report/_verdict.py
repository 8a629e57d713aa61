"""The report's verdict: the best RKDO configuration against its I-Con control.

Pure functions over the tables of `_stats` (no MLflow, no plotting). Which trial
is which comes from the trial runs' arm and stage (`sweep.protocol.TrialRole`):

- the best RKDO configuration is the search's best RKDO trial under the one
  definition of best (the leaderboard's ranking, `inference.rank_order`);
- its control is the baseline arm; without one, the best I-Con search trial at
  settings matched to it, else the best I-Con search trial (a space that samples
  `objective` has its I-Con trials as controls);
- the verdict is estimated on the fresh seeds of the confirmation stage when both
  trials were re-run there, else on the search seeds (subject to the winner's curse);
- the primary endpoint and margin, and the floors, are those the sweep run recorded
  (`tracking.reading.recorded_evidence`); the context comes from the fixed settings
  and the best RKDO trial's values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.config import FIELDS, SPLIT_TEST, TrialConfig
from rkdo_tune.errors import InvalidValue, UsageError
from rkdo_tune.floors import References
from rkdo_tune.inference import best_index, holm
from rkdo_tune.judgement import DEFAULT_MARGIN, StudyContext, context_of
from rkdo_tune.report._pairs import COMPARABLE_STATUSES, matched_trial_pairs
from rkdo_tune.report._stats import ICON, RANK_MEAN, RKDO
from rkdo_tune.tracking.reading import ParamValue, TrialRole, budget_source
from rkdo_tune.verdict import (
    ARM_BASELINE,
    DEFAULTS_FAMILY,
    FAMILY,
    STAGE_CONFIRMATION,
    STAGE_SEARCH,
    MetricVerdict,
    PerSeed,
    Verdict,
    build_verdict,
    config_label,
)

# Seed runs whose final values enter a verdict. Unlike the matched tables, a diverged
# seed counts: leaving it out would hide exactly the failures the comparison is about.
VERDICT_STATUSES = (*COMPARABLE_STATUSES, "diverged")
CONTROL_BASELINE = "the baseline arm"
CONTROL_MATCHED = "the best I-Con search trial at matched settings"
CONTROL_UNMATCHED = "the best I-Con search trial (settings not matched)"
CONTROL_TUNED = "the best trial of I-Con's own study (tuned as RKDO is)"


@dataclass(frozen=True)
class Arms:
    """One sweep's seed runs split by stage, and which trial plays which part."""

    search: pd.DataFrame  # search stage, search arm: what the leaderboard ranks
    baseline_seeds: pd.DataFrame  # search stage, baseline arm
    confirmation: pd.DataFrame  # confirmation stage, both arms
    baseline: str | None  # the baseline arm's search-stage trial: I-Con's default
    confirmation_of: dict[str, str]  # search-stage trial id -> its confirmation trial id
    reference: str | None = None  # RKDO's default, the other baseline-arm trial (I-Con tuned)

    @property
    def search_stage(self) -> pd.DataFrame:
        """Search and baseline arms on the search seeds: what the matched tables compare."""
        return pd.concat([self.search, self.baseline_seeds], ignore_index=True)


def split_arms(seeds: pd.DataFrame, roles: Mapping[str, TrialRole], *, baseline_tag: str) -> Arms:
    """Split by the trial runs' roles; a trial without a role is a search trial."""
    role = [roles.get(str(t), TrialRole()) for t in seeds.get("trial_id", [])]
    confirming = pd.Series([r.stage == STAGE_CONFIRMATION for r in role], index=seeds.index)
    baseline = pd.Series([r.arm == ARM_BASELINE for r in role], index=seeds.index)
    in_search = ~confirming
    fixed = sorted(t for t, r in roles.items() if r.arm == ARM_BASELINE and r.stage == STAGE_SEARCH)
    objective = _objectives(seeds)
    baselines = [t for t in fixed if objective.get(t, ICON) == ICON]
    references = [t for t in fixed if t not in baselines]
    chosen = baseline_tag if baseline_tag in baselines else (baselines[0] if baselines else None)
    confirmation_of = {
        r.confirms: t for t, r in sorted(roles.items()) if r.stage == STAGE_CONFIRMATION
    }
    return Arms(
        search=seeds[in_search & ~baseline],
        baseline_seeds=seeds[in_search & baseline],
        confirmation=seeds[confirming],
        baseline=chosen,
        confirmation_of={k: v for k, v in confirmation_of.items() if k},
        reference=references[0] if references else None,
    )


def _objectives(seeds: pd.DataFrame) -> dict[str, str]:
    """{trial id: the objective its seed runs trained}, where the seed runs record it."""
    if "objective" not in seeds or seeds.empty:
        return {}
    return {str(t): str(o) for t, o in zip(seeds["trial_id"], seeds["objective"], strict=True)}


def best_of(board: pd.DataFrame, *, mode: str, objective: str | None = None) -> str | None:
    """The best trial of the board (of one objective): `inference.best_index` on RANK_MEAN."""
    rows = board if objective is None or board.empty else board[board["objective"] == objective]
    if rows.empty or RANK_MEAN not in rows:
        return None
    index = best_index(rows[RANK_MEAN].astype(float).tolist(), list(rows["trial_id"]), mode=mode)
    return None if index is None else str(rows["trial_id"].iloc[index])


def label_of(params: Mapping[str, ParamValue], names: Sequence[str]) -> str:
    """The verdict's label of a configuration: its searched values, objective aside."""
    shown = {n: v for n, v in params.items() if n in names and n != "objective" and v is not None}
    return config_label(shown)


@dataclass(frozen=True)
class Control:
    trial_id: str
    kind: str  # CONTROL_BASELINE | CONTROL_MATCHED | CONTROL_UNMATCHED
    label: str  # how the verdict's sentences name it


def choose_control(
    board: pd.DataFrame,
    arms: Arms,
    *,
    rkdo: str | None,
    mode: str,
    trial_params: Mapping[str, Mapping[str, ParamValue]],
    names: Sequence[str],
) -> Control | None:
    """With a tuned baseline, the best trial of I-Con's own study; else the baseline arm;
    else the best I-Con search trial, matched to `rkdo` if one is."""
    if arms.reference:
        trial_id = best_of(board, mode=mode, objective=ICON)
        if trial_id is None:
            return None
        label = label_of(trial_params.get(trial_id, {}), names)
        return Control(trial_id, CONTROL_TUNED, f"tuned I-Con ({label})" if label else "I-Con")
    if arms.baseline:
        return Control(arms.baseline, CONTROL_BASELINE, "I-Con baseline")
    matched = {icon for r, icon in matched_trial_pairs(arms.search) if r == rkdo}
    for kind, rows in (
        (CONTROL_MATCHED, board[board["trial_id"].isin(matched)] if matched else board.iloc[:0]),
        (CONTROL_UNMATCHED, board),
    ):
        trial_id = best_of(rows, mode=mode, objective=ICON) if not rows.empty else None
        if trial_id is not None:
            label = label_of(trial_params.get(trial_id, {}), names)
            return Control(trial_id, kind, f"I-Con ({label})" if label else "I-Con")
    return None


def per_seed(seeds: pd.DataFrame, trial_id: str, metrics: Sequence[str]) -> PerSeed:
    """{metric: {seed: final value}} of one trial's seed runs that count for a verdict."""
    rows = seeds[(seeds["trial_id"] == trial_id) & seeds["status"].isin(VERDICT_STATUSES)]
    return {
        name: dict(zip(rows["seed"].astype(int), rows[name].astype(float), strict=True))
        for name in metrics
        if name in rows.columns
    }


@dataclass(frozen=True)
class StudyVerdict:
    """What the Verdict section says; `verdict` is None when there is nothing to compare."""

    best: str | None  # the search's best trial, any objective (the leaderboard's rank 1)
    rkdo: str | None  # the best RKDO search trial
    control: Control | None
    verdict: Verdict | None
    estimated_on: tuple[str, str] | None  # the (RKDO, control) trials whose seed runs entered
    others: pd.DataFrame  # the other confirmed RKDO configurations vs the control's re-run
    warnings: tuple[str, ...] = ()
    missing: str = ""  # one line when there is no verdict
    labels: dict[str, str] = field(default_factory=dict)  # trial id -> configuration label
    defaults: Verdict | None = None  # I-Con tuned: RKDO's default against I-Con's
    defaults_on: tuple[str, str] | None = None  # the (RKDO, I-Con) trials it was estimated on

    @property
    def pair(self) -> tuple[str, str] | None:
        """(best RKDO trial, control trial) on the search seeds, for the other tables."""
        return (self.rkdo, self.control.trial_id) if self.rkdo and self.control else None


def study_verdict(
    board: pd.DataFrame,
    arms: Arms,
    *,
    metric: str,
    mode: str,
    trial_params: Mapping[str, Mapping[str, ParamValue]],
    names: Sequence[str],
    tags: Mapping[str, str | tuple[str, ...]],
    references: References | None = None,
    primary: str | None = None,
    margin: float = DEFAULT_MARGIN,
    base: Mapping[str, ParamValue] | None = None,
) -> StudyVerdict:
    """Choose the trials, the seeds, and build the verdict on every VERDICT_METRICS metric.

    `tags` holds what the sweep run recorded ("best", "baseline", "confirmed"), to warn
    where the runs disagree with it; "best" is checked only when `metric` is the sweep's.
    `primary` and `margin` (the space's `verdict`), `references` (the floors) and `base`
    (the fixed settings, for the context) come from the sweep run.
    """
    best, rkdo = best_of(board, mode=mode), best_of(board, mode=mode, objective=RKDO)
    control = choose_control(
        board, arms, rkdo=rkdo, mode=mode, trial_params=trial_params, names=names
    )
    labels = {t: label_of(p, names) for t, p in trial_params.items()}
    warnings = _tag_warnings(tags, best=best, arms=arms)
    empty = pd.DataFrame()
    if rkdo is None or control is None:
        missing = _missing_line(rkdo, control, metric=metric)
        return StudyVerdict(best, rkdo, control, None, None, empty, warnings, missing, labels)
    judged = {"primary": primary, "margin": margin, "references": references}
    values = {**(base or {}), **trial_params.get(rkdo, {})}
    labelled = (labels.get(rkdo) or rkdo, control.label)
    searched = _rkdo_configurations(board) if control.kind == CONTROL_BASELINE else 0
    verdict, pair = _paired(
        arms, (rkdo, control.trial_id), labelled, values, **judged, searched=searched
    )
    others = other_confirmed(board, arms, rkdo=rkdo, control=control, metric=metric)
    defaults, defaults_on = None, None
    if arms.reference and arms.baseline:
        values = {**(base or {}), **trial_params.get(arms.reference, {})}
        trials, labelled = (arms.reference, arms.baseline), ("default", "I-Con default")
        judged["family"] = DEFAULTS_FAMILY
        defaults, defaults_on = _paired(arms, trials, labelled, values, **judged)
    return StudyVerdict(
        best, rkdo, control, verdict, pair, others, warnings, "", labels, defaults, defaults_on
    )


def _paired(
    arms: Arms,
    trials: tuple[str, str],
    labels: tuple[str, str],
    values: Mapping[str, ParamValue],
    *,
    primary: str | None,
    margin: float,
    references: References | None,
    family: str = FAMILY,
    searched: int = 0,
) -> tuple[Verdict, tuple[str, str]]:
    """The verdict of `trials` (RKDO's, the control's) and the pair it was estimated on: their
    confirmation re-runs on fresh seeds when both have seed runs, else the search seeds.
    `values`: the RKDO trial's settings, for the context."""
    rerun = set(arms.confirmation["trial_id"]) if len(arms.confirmation) else set()
    fresh = (arms.confirmation_of.get(trials[0]), arms.confirmation_of.get(trials[1]))
    stage, seeds, pair = STAGE_SEARCH, arms.search_stage, trials
    if fresh[0] in rerun and fresh[1] in rerun:  # both re-runs have seed runs
        stage, seeds, pair = STAGE_CONFIRMATION, arms.confirmation, (fresh[0], fresh[1])
    wanted = (*m.VERDICT_METRICS, m.TRAIN_EPOCH_LOSS)
    # The estimated trial's own record: a confirmation re-run holds its scored split.
    context = study_context({**values, **split_of(seeds, pair[0])})
    verdict = build_verdict(
        per_seed(seeds, pair[0], wanted),
        per_seed(seeds, pair[1], wanted),
        rkdo_label=labels[0],
        baseline_label=labels[1],
        stage=stage,
        primary=primary,
        margin=margin,
        context=context,
        references=references if context.on_test else None,  # the floors are test numbers
        family=family,
        searched=searched,
    )
    return verdict, pair


def _rkdo_configurations(board: pd.DataFrame) -> int:
    """RKDO search configurations on the leaderboard (a budget point is not another one)."""
    if board.empty or "objective" not in board:
        return 0
    ids = board.loc[board["objective"] == RKDO, "trial_id"].astype(str)
    return len({budget_source(t) for t in ids})


def split_of(seeds: pd.DataFrame, trial_id: str) -> dict[str, str]:
    """{"eval_split": the split a trial's seed runs were scored on}; test for a sweep
    recorded before the field (no `eval_split` column)."""
    if "eval_split" not in seeds:
        return {"eval_split": SPLIT_TEST}
    found = seeds.loc[seeds["trial_id"] == trial_id, "eval_split"].dropna().unique()
    return {"eval_split": str(found[0]) if len(found) == 1 else SPLIT_TEST}


def study_context(values: Mapping[str, ParamValue]) -> StudyContext:
    """The context of a trial's recorded values, protocol presets resolved where they build."""
    known = {k: v for k, v in values.items() if k in FIELDS}
    with contextlib.suppress(InvalidValue, UsageError, TypeError):  # a partial record: as is
        known = TrialConfig(**known).to_dict()
    return context_of(known)


def _missing_line(rkdo: str | None, control: Control | None, *, metric: str) -> str:
    if rkdo is None:
        return f"No verdict: no RKDO search trial has a finite final {metric} on every seed."
    return (
        "No verdict: this sweep has no I-Con run to compare with (no baseline arm, and the "
        "space does not sample `objective`), so it cannot say whether RKDO beats I-Con."
    )


def _tag_warnings(
    tags: Mapping[str, str | tuple[str, ...]], *, best: str | None, arms: Arms
) -> tuple[str, ...]:
    out = []
    tagged_best = tags.get("best")
    if tagged_best and best and tagged_best != best:
        out.append(
            f"The sweep run's tag names {tagged_best} as the best trial, but the final "
            f"seed-means rank {best} first (ties to the smaller trial id); this report uses {best}."
        )
    tagged_baseline = tags.get("baseline")
    if tagged_baseline and tagged_baseline != arms.baseline:
        out.append(
            f"The sweep run's tag names baseline trial {tagged_baseline}, but no search-stage "
            f"trial run of the baseline arm has that id (found: {arms.baseline or 'none'})."
        )
    unconfirmed = [t for t in tags.get("confirmed", ()) if t not in arms.confirmation_of]
    if unconfirmed:
        out.append(
            "The sweep run lists confirmed trials without confirmation runs: "
            f"{', '.join(unconfirmed)} (an interrupted confirmation stage?)."
        )
    return tuple(out)


def other_confirmed(
    board: pd.DataFrame, arms: Arms, *, rkdo: str, control: Control, metric: str
) -> pd.DataFrame:
    """Each other confirmed RKDO configuration vs the control's re-run, on `metric`.

    One Holm family (`_families.CONFIRMED`) over them, in leaderboard order; Δ is
    configuration − control. Empty when the control has no confirmation run.
    """
    control_run = arms.confirmation_of.get(control.trial_id)
    if control_run is None or board.empty:
        return pd.DataFrame()
    reference = per_seed(arms.confirmation, control_run, [metric])
    compared = []
    for trial_id, objective in zip(board["trial_id"], board["objective"], strict=True):
        run = arms.confirmation_of.get(trial_id)
        if run is not None and trial_id != rkdo and objective == RKDO:
            values = per_seed(arms.confirmation, run, [metric])
            verdict = build_verdict(values, reference, rkdo_label="", metrics=(metric,))
            if verdict.rows:
                compared.append((trial_id, run, verdict.rows[0]))
    adjusted = holm([row.comparison.p_t for _, _, row in compared])
    rows = []
    for (trial_id, run, row), p_holm in zip(compared, adjusted, strict=True):
        row = MetricVerdict(row.metric, row.comparison, p_holm, row.rkdo_mean, row.icon_mean)
        c = row.comparison
        rows.append(
            {
                "trial_id": trial_id,
                "confirmation_trial": run,
                "control_trial": control_run,
                "n": c.n,
                "rkdo_mean": row.rkdo_mean,
                "icon_mean": row.icon_mean,
                "delta": c.delta,
                "ci_lo": c.lo,
                "ci_hi": c.hi,
                "p_value": c.p_t,
                "p_holm": p_holm,
                "better": row.winner,
            }
        )
    return pd.DataFrame(rows)
