"""Text for the terminal: the dry-run plan and the end-of-sweep leaderboard."""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING

import yaml

from rkdo_tune import metrics as m
from rkdo_tune.console import format_table, format_value
from rkdo_tune.redaction import redact_uri

if TYPE_CHECKING:
    from rkdo_tune.sweep.plan import SweepPlan
    from rkdo_tune.sweep.protocol import SweepOutcome
    from rkdo_tune.sweep.space import SearchSpace

TOP_ROWS = 10
SIDE_METRICS = (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS)


def format_dry_run(space: SearchSpace, plan: SweepPlan) -> str:
    """The resolved space (as YAML) and the plan, for --dry-run."""
    lines = [f"# {space.source}", yaml.safe_dump(dict(space.raw), sort_keys=False).rstrip(), ""]
    lines += [f"{label}: {value}" for label, value in plan.describe()]
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def format_leaderboard(outcome: SweepOutcome) -> str:
    """Best configurations first; the metric as mean ± std over seeds."""
    ranked = outcome.ranked()[:TOP_ROWS]
    if not ranked:
        return "no trial produced a finite metric"
    names = sorted({key for t in ranked for key in t.params})
    side = [key for key in SIDE_METRICS if key != outcome.metric]
    header = ["rank", *names, f"{outcome.metric} (mean ± std)", *side, "epochs run", "status"]
    rows = [header]
    for rank, trial in enumerate(ranked, start=1):
        rows.append(
            [
                str(rank),
                *[format_value(trial.params.get(name, "-")) for name in names],
                f"{trial.value:.4f} ± {trial.std:.4f}",
                *[format_value(trial.metrics.get(key, math.nan)) for key in side],
                str(trial.epochs),
                str(trial.status),
            ]
        )
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
    lines = [
        "",
        f"sweep {plan.name}: {len(outcome.trials)} configurations, {outcome.errors} errors, "
        f"{len(failed)} without a finite {outcome.metric}",
        f"best configurations by {outcome.metric} ({outcome.mode}), averaged over seeds {seeds}:",
        format_leaderboard(outcome),
    ]
    for trial in failed:
        lines.append(f"  {trial.trial_id}: {trial.status} {trial.reason}".rstrip())
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
