"""Text for the terminal: the dry-run plan and the end-of-sweep leaderboard."""

from __future__ import annotations

import math
import shlex
from typing import Any

import yaml

from rkdo_tune import metrics as m
from rkdo_tune.tracking import redact_uri

TOP_ROWS = 10
SIDE_METRICS = (m.EVAL_LINEAR_ACC, m.EVAL_KNN_ACC, m.EVAL_YARDSTICK_LOSS)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_dry_run(space: Any, plan: Any) -> str:
    """The resolved space (as YAML) and the plan, for --dry-run."""
    lines = [f"# {space.source}", yaml.safe_dump(dict(space.raw), sort_keys=False).rstrip(), ""]
    lines += [f"{label}: {value}" for label, value in plan.describe()]
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def leaderboard(outcome: Any) -> str:
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
                *[_fmt(trial.params.get(name, "-")) for name in names],
                f"{trial.value:.4f} ± {trial.std:.4f}",
                *[_fmt(trial.metrics.get(key, math.nan)) for key in side],
                str(trial.epochs),
                str(trial.status),
            ]
        )
    return _table(rows)


def resume_command(argv: list[str], name: str) -> str:
    """The command that continues this sweep: the same arguments, --name, and --resume."""
    # Credentials in a URI argument are masked: the command is printed and logged.
    args = [redact_uri(arg) if "://" in arg else arg for arg in argv if arg != "--resume"]
    if "--name" not in args and not any(arg.startswith("--name=") for arg in args):
        args += ["--name", name]
    return shlex.join(["rkdo-tune", *args, "--resume"])


def format_outcome(
    outcome: Any, space: Any, *, extra_lines: tuple[str, ...] = (), resume: str = ""
) -> str:
    plan = outcome.plan
    seeds = ", ".join(map(str, plan.seeds))
    failed = [t for t in outcome.trials if not math.isfinite(t.value)]
    lines = [
        "",
        f"sweep {plan.name}: {len(outcome.trials)} configurations, {outcome.errors} errors, "
        f"{len(failed)} without a finite {outcome.metric}",
        f"best configurations by {outcome.metric} ({outcome.mode}), averaged over seeds {seeds}:",
        leaderboard(outcome),
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
