"""Text for the terminal: the dry-run plan and the end-of-sweep leaderboard."""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING

import yaml

from rkdo_tune import metrics as m
from rkdo_tune.console import format_table, format_value
from rkdo_tune.floors import reference_rows
from rkdo_tune.inference import (
    MIN_TEST_PAIRS,
    POWER,
    TieMark,
    mean_ci,
    min_detectable_effect,
    seeds_needed,
    tie_sentence,
)
from rkdo_tune.redaction import redact_uri
from rkdo_tune.sweep._budgets import budget_plan_lines, schedules_reading_total
from rkdo_tune.sweep.protocol import budget_source, trains_icon
from rkdo_tune.sweep.space import search_trial_count
from rkdo_tune.verdict import STAGE_CONFIRMATION, STAGE_SEARCH, verdict_lines

if TYPE_CHECKING:
    from rkdo_tune.sweep.plan import SweepPlan
    from rkdo_tune.sweep.protocol import SweepOutcome, TrialSummary
    from rkdo_tune.sweep.space import SearchSpace

TOP_ROWS = 10
SIDE_METRICS = (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS)


def format_dry_run(space: SearchSpace, plan: SweepPlan) -> str:
    """The resolved space (as YAML) and the plan, for --dry-run."""
    lines = [f"# {space.source}", yaml.safe_dump(dict(space.raw), sort_keys=False).rstrip(), ""]
    lines += [f"{label}: {value}" for label, value in plan.describe()]
    lines += seed_plan_lines(space)
    runs = search_trial_count(space) * len(space.seeds)
    reading = schedules_reading_total(space.parameters, space.base_config, space.baseline)
    lines += budget_plan_lines(space.budget_epochs, runs=runs, reading_total=reading)
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def _mean_cell(trial: TrialSummary, metric: str) -> str:
    """'0.9676 [0.9398, 0.9954]': the seed-mean with its 95% t-interval over seeds."""
    value = trial.metrics.get(metric)
    value = float(value) if isinstance(value, int | float) else math.nan
    interval = mean_ci(list(trial.per_seed(metric).values()))
    if not math.isfinite(value):
        return format_value(value)
    if not math.isfinite(interval.lo):
        return f"{value:.4f} (1 seed)"
    return f"{value:.4f} [{interval.lo:.4f}, {interval.hi:.4f}]"


def _tie_cell(mark: TieMark | None) -> str:
    if mark is None:
        return "-"
    if mark.comparison is None:
        return "best"
    if mark.comparison.n < MIN_TEST_PAIRS:
        return f"tied (no test: {mark.comparison.n} shared seeds)"
    if not mark.comparison.testable:
        return "tied (no test: the same difference on every seed)"
    p = format_value(mark.p_holm)
    return f"tied (p_Holm {p})" if mark.tied else f"worse (p_Holm {p})"


def _row(
    rank: str, trial: TrialSummary, names: list[str], side: list[str], outcome: SweepOutcome
) -> list[str]:
    marks = {mark.trial_id: mark for mark in outcome.ties}
    return [
        rank,
        *[format_value(trial.params.get(name, "-")) for name in names],
        _mean_cell(trial, outcome.metric),
        format_value(trial.std),
        *[_mean_cell(trial, key) for key in side],
        _tie_cell(marks.get(trial.trial_id)),
        str(trial.epochs),
        str(trial.status),
    ]


TUNED_HEADING = "Tuned against tuned (each objective's best from equal searches):"
DEFAULTS_HEADING = "Default against default (each objective's reference settings):"


def format_leaderboard(outcome: SweepOutcome, *, stage: str = STAGE_SEARCH) -> str:
    """Best configurations first, the control arm last: seed-mean [95% CI], std, ties."""
    if stage == STAGE_SEARCH:
        ranked = outcome.ranked()[:TOP_ROWS]
        full = [t for t in outcome.trials if budget_source(t.trial_id) == t.trial_id]
        fixed = [t for t in full if t.role.is_baseline]
    else:  # re-runs keep the search's order: they estimate, they do not select again
        order = {t.role.confirms: i for i, t in enumerate(outcome.ranked())}
        ranked = sorted(
            (t for t in outcome.confirmation if not t.role.is_baseline),
            key=lambda t: order.get(t.role.confirms, len(order)),
        )
        fixed = [t for t in outcome.confirmation if t.role.is_baseline]
    if not ranked and not fixed:
        return "no trial produced a finite metric"
    names = sorted({key for t in ranked for key in t.params})  # the control is named by its row
    side = [key for key in SIDE_METRICS if key != outcome.metric]
    header = [
        "rank",
        *names,
        f"{outcome.metric} mean [95% CI]",
        "std",
        *[f"{key} mean [95% CI]" for key in side],
        "vs best",
        "epochs run",
        "status",
    ]
    rows = [header]
    for rank, trial in enumerate(ranked, start=1):
        rows.append(_row(str(rank), trial, names, side, outcome))
    for trial in fixed:  # the baseline arm: I-Con's default (and RKDO's, I-Con tuned)
        label = "I-Con baseline" if trains_icon(trial) else "RKDO default"
        rows.append(_row(label, trial, names, side, outcome))
    return format_table(rows)


def resume_command(argv: list[str], name: str) -> str:
    """The command that continues this sweep: the same arguments, --name, and --resume."""
    # Credentials in a URI argument are masked: the command is printed and logged.
    args = [redact_uri(arg) if "://" in arg else arg for arg in argv if arg != "--resume"]
    if "--name" not in args and not any(arg.startswith("--name=") for arg in args):
        args += ["--name", name]
    return shlex.join(["rkdo-tune", *args, "--resume"])


def format_outcome(
    outcome: SweepOutcome,
    space: SearchSpace,
    *,
    extra_lines: tuple[str, ...] = (),
    resume: str = "",
) -> str:
    plan = outcome.plan
    seeds = ", ".join(map(str, plan.seeds))
    failed = [t for t in outcome.trials if not math.isfinite(t.value)]
    searched = sum(not t.role.is_baseline for t in outcome.trials)
    control = " and the I-Con baseline" if outcome.baseline is not None else ""
    if outcome.reference is not None:
        control = ", RKDO's and I-Con's defaults"
    lines = [
        "",
        f"sweep {plan.name}: {searched} configurations{control}, {outcome.errors} errors, "
        f"{len(failed)} without a finite {outcome.metric}",
        f"best configurations by {outcome.metric} ({outcome.mode}), averaged over seeds {seeds}"
        " (best: the highest mean; a tie goes to the earlier trial):",
        format_leaderboard(outcome),
    ]
    if outcome.ties:
        lines.append(tie_sentence(outcome.ties))
    for trial in failed:
        lines.append(f"  {trial.trial_id}: {trial.status} {trial.reason}".rstrip())
    lines += _confirmation_lines(outcome)
    lines += [
        "",
        f"results (Ray Tune experiment, checkpoints): {plan.experiment_path}",
        *extra_lines,
    ]
    if outcome.unfinished:
        lines.append(f"INTERRUPTED: {outcome.unfinished} trials did not finish")
    default = resume_command(["sweep", "--space", str(space.source)], plan.name)
    lines.append(f"resume it: {resume or default}")
    return "\n".join(lines)


def _confirmation_lines(outcome: SweepOutcome) -> list[str]:
    """The re-runs on fresh seeds, then the verdict (or why there is none)."""
    lines = []
    if outcome.confirmation:
        seeds = ", ".join(map(str, outcome.plan.confirm_seeds))
        lines += [
            "",
            f"confirmation of the top {outcome.plan.confirm_top} on fresh seeds {seeds}:",
            format_leaderboard(outcome, stage=STAGE_CONFIRMATION),
        ]
        for trial in outcome.confirmation:
            if not math.isfinite(trial.value):
                lines.append(f"  {trial.trial_id}: {trial.status} {trial.reason}".rstrip())
    lines += ["", *references_lines(outcome)]
    if outcome.verdict is None:
        lines.append("Verdict: no RKDO and I-Con pair to compare in this sweep (no control arm).")
    elif outcome.defaults_verdict is None:
        lines += verdict_lines(outcome.verdict)
    else:  # a tuned baseline: both comparisons, each labelled
        lines += [TUNED_HEADING, *verdict_lines(outcome.verdict), ""]
        lines += [DEFAULTS_HEADING, *verdict_lines(outcome.defaults_verdict)]
    return lines


FLOOR_METRICS = (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_NMI, m.EVAL_ARI)


def references_lines(outcome: SweepOutcome) -> list[str]:
    """The floors and the ceiling of the evaluation, as a table, or why there are none."""
    refs = outcome.references
    if refs is None:
        note = outcome.references_note or "not computed"
        return [f"floors and ceiling: {note}", ""]
    header = ["reference", *(m.LABEL_OF.get(k, k) for k in FLOOR_METRICS)]
    lines = [
        f"floors and ceiling ({refs.key.label()}; {refs.test_size} test images scored):",
        format_table([header, *reference_rows(refs, FLOOR_METRICS)]),
    ]
    if outcome.references_note:
        lines.append(f"note: {outcome.references_note}")
    return [*lines, ""]


PILOT_SPREADS = (0.005, 0.01, 0.02)  # sd of the paired difference Δ, in the metric's units


def seed_plan_lines(space: SearchSpace) -> list[str]:
    """The verdict's primary endpoint and margin, and the seeds a margin needs per spread.

    The spread of Δ is unknown before a pilot run: the lines tabulate typical ones
    (on digits the paired probe difference spreads about 0.02); after a pilot sweep,
    `rkdo-tune report` states the count for the observed spread.
    """
    verdict = space.verdict
    seeds = len(space.confirm.seeds) if space.confirm else len(space.seeds)
    stage = "fresh confirmation" if space.confirm else "search"
    plans = []
    for sd in PILOT_SPREADS:
        needed = seeds_needed(sd, verdict.margin)
        mde = min_detectable_effect(sd, seeds)
        detects = f"MDE {mde:.3f} with {seeds}" if math.isfinite(mde) else f"no test with {seeds}"
        shown = f"{needed} seeds" if needed else "more than can be planned"
        plans.append(f"sd {sd:g}: {detects}, non-inferiority needs {shown}")
    return [
        f"verdict: primary endpoint {verdict.metric} at the final budget, margin δ = "
        f"{verdict.margin:g}, on {seeds} {stage} seeds",
        f"seed plan ({POWER:.0%} power, by the spread of the paired difference): "
        + "; ".join(plans)
        + " (after a pilot sweep, `rkdo-tune report` gives the count for the observed spread)",
    ]
