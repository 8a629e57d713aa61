"""Renders the report's tables, figures and notes as one Markdown document."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.inference import MIN_TEST_PAIRS
from rkdo_tune.judgement import metric_heading
from rkdo_tune.report._plots import Figure

LOSS_SENTENCE = (
    "Raw training losses of the two objectives are **not comparable**: RKDO sums a KL term "
    "over its d recursion levels against a moving target, while I-Con is a single KL term, "
    "so a lower RKDO loss says nothing by itself about the representation. Only the "
    "yardstick-loss column (one common held-out loss, evaluated the same way for every "
    "trial) and the probe column say whether RKDO's representations are better."
)
PAPER_REFERENCE = (
    "For reference, the paper's Table 1 reports CIFAR-10 at 10 epochs: RKDO 1.6200 vs "
    "I-Con 2.3127, a 30.0% raw loss improvement, while its linear probe was lower for "
    "RKDO (0.2894 vs 0.3206)."
)


@dataclass(frozen=True)
class ReportContent:
    """Everything the Markdown report shows; built by `_build.write_sweep_report`."""

    title: str
    facts: Sequence[tuple[str, str]]
    metric: str
    mode: str
    params: Sequence[str]
    eval_metrics: Sequence[str]
    leaderboard: pd.DataFrame
    matched: pd.DataFrame
    matched_pairs_found: bool
    claims: pd.DataFrame
    verdict: Sequence[str] = ()  # the opening Verdict section, rendered by `_md_verdict`
    to_target: Sequence[str] = ()  # the compute-to-target section, rendered by `_md_targets`
    pareto: Sequence[str] = ()  # a multi-objective sweep's Pareto section (`_pareto`)
    ties: str = ""  # the leaderboard's tie sentence
    matched_family: str = ""  # "Holm family 'matched settings', 36 tests"
    families: Sequence[str] = ()  # the closing list of Holm families, rendered by `_md_verdict`
    figures: Sequence[Figure] = ()
    notes: Sequence[str] = field(default_factory=list)
    environment: Sequence[str] = ()  # the closing Environment section (`_md_environment`)


def num(value: object, digits: int = 4) -> str:
    """A number for a table cell: fixed digits, 'n/a' for NaN/None, ints as ints."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e9):
        return str(int(value))
    return f"{value:.{digits}f}"


def param_cell(value: object) -> str:
    """A parameter value; '—' where it does not apply to the trial's objective."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def p_value(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


def mean_pm_std(mean: float, std: float) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.4f} ± {num(std)}"


def winner_cell(value: object) -> str:
    """A 'better' cell: the winner's name, or '—' where no test rejected (None or NaN)."""
    return value if isinstance(value, str) and value else "—"


def signed(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.4f}"


def interval(lo: float, hi: float) -> str:
    """A CI of a difference, '[-0.0310, +0.0190]'."""
    return "n/a" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:+.4f}, {hi:+.4f}]"


def mean_std_ci(row: pd.Series, name: str) -> str:
    """'0.9676 ± 0.0112 [0.9398, 0.9954]': mean ± std over seeds, then its 95% t-CI."""
    cell = mean_pm_std(row[f"{name} mean"], row[f"{name} std"])
    lo, hi = row.get(f"{name} ci_lo", math.nan), row.get(f"{name} ci_hi", math.nan)
    if cell == "n/a" or not (math.isfinite(lo) and math.isfinite(hi)):
        return cell
    return f"{cell} [{lo:.4f}, {hi:.4f}]"


def vs_best(row: pd.Series) -> str:
    """The leaderboard's tie column: is this configuration distinguishable from the best?"""
    if row.get("arm") == "baseline":
        return "control arm: see Verdict"
    tied, p = row.get("tied_with_best"), row.get("p_holm_vs_best", math.nan)
    if tied is None or (isinstance(tied, float) and math.isnan(tied)):
        return "—"
    if row["rank"] == 1:
        return "best"
    if not math.isfinite(p):
        return "tied (no test: too few shared seeds, or the same difference on every seed)"
    return f"{'tied' if tied else 'distinguishable'} (p_Holm = {p_value(p)})"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; '|' inside cells is escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _leaderboard(c: ReportContent) -> list[str]:
    metrics = list(dict.fromkeys([c.metric, *c.eval_metrics]))
    metrics = [name for name in metrics if f"{name} mean" in c.leaderboard]
    params = [p for p in c.params if p != "objective" and p in c.leaderboard]
    header = ["rank", "trial", "objective", *params, "seeds", "status"]
    header += [f"{name} (mean ± std [95% CI])" for name in metrics[:1]]
    header += ["vs best (paired t, Holm)"]
    header += [f"{name} (mean ± std [95% CI])" for name in metrics[1:]]
    rows = [
        [
            "baseline" if r.get("arm") == "baseline" else num(r["rank"]),
            r["trial_id"],
            param_cell(r.get("objective")),
            *(param_cell(r[p]) for p in params),
            str(r["n_seeds"]),
            r["status"],
            *(mean_std_ci(r, n) for n in metrics[:1]),
            vs_best(r),
            *(mean_std_ci(r, n) for n in metrics[1:]),
        ]
        for _, r in c.leaderboard.iterrows()
    ]
    arrow = "higher" if c.mode == "max" else "lower"
    intro = (
        f"The search's configurations over their seeds, ranked by the final {c.metric} averaged "
        f"over all seeds ({arrow} is better; ties go to the smaller trial id; a configuration "
        "with a non-finite seed ranks last, as in the sweep). The CI is Student's t over the "
        "seeds. The baseline arm is not ranked: it is the control, in its own row."
    )
    lines = ["## Leaderboard", "", intro, "", table(header, rows)]
    return [*lines, "", f"{c.ties}."] if c.ties else lines


def _matched(c: ReportContent) -> list[str]:
    lines = ["## RKDO vs I-Con at matched settings", ""]
    if not c.matched_pairs_found:
        lines.append(
            "**No matched pairs.** No RKDO and I-Con configuration in this sweep share every "
            "common setting (all but the objective's own knobs and the seed), so no paired "
            "test can be made. Sweep both objectives over the same shared settings to get one."
        )
        return lines
    lines.append(
        "Pairs share every setting except the objective's own knobs (RKDO: α, depth, β under "
        "the level schedule, detach_target, recursion, α schedule; I-Con: debias, kernel, "
        "student_df) and the seed, on the search seeds. Seed runs are paired by seed; p is the "
        "paired t-test, d_z the mean paired difference over its standard deviation; "
        f"Δ = RKDO − I-Con. {c.matched_family}: every test of these tables is one family; "
        "'better' names a winner only where p_Holm < 0.05."
    )
    for (rkdo_trial, icon_trial), rows in c.matched.groupby(["rkdo_trial", "icon_trial"]):
        body = [
            [
                metric_heading(r["metric"]),
                str(r["n"]),
                num(r["rkdo_mean"]),
                num(r["icon_mean"]),
                signed(r["diff"]),
                interval(r["ci_lo"], r["ci_hi"]),
                p_value(r["p_value"]),
                p_value(r["p_holm"]),
                num(r["d_z"], 2),
                winner_cell(r["better"]),
            ]
            for _, r in rows.iterrows()
        ]
        n = int(rows["n"].max()) if len(rows) else 0
        header = ["metric", "n", "RKDO", "I-Con", "Δ", "95% CI of Δ", "p", "p_Holm", "d_z"]
        lines += ["", f"### RKDO {rkdo_trial} vs I-Con {icon_trial} (n = {n} seed pairs)", ""]
        lines.append(table([*header, "better"], body))
        if n < MIN_TEST_PAIRS:
            lines += [
                "",
                f"With fewer than {MIN_TEST_PAIRS} seed pairs there is no test (p = n/a).",
            ]
    return lines


def _claims(c: ReportContent) -> list[str]:
    lines = ["## Paper claims: raw loss beside the yardstick and the probe", "", LOSS_SENTENCE, ""]
    if c.claims.empty:
        return [*lines, "No RKDO and I-Con pair to compare."]
    if not c.matched_pairs_found:
        lines += ["Not matched: this compares the best configuration of each objective.", ""]
    header = [
        "compared",
        "epochs",
        "RKDO trial",
        "I-Con trial",
        "loss RKDO",
        "loss I-Con",
        "raw loss improvement",
        "yardstick RKDO",
        "yardstick I-Con",
        "yardstick improvement",
        "probe RKDO",
        "probe I-Con",
        "probe Δ",
    ]
    rows = [
        [
            r["compared"],
            num(r["epochs"]),
            r["rkdo_trial"],
            r["icon_trial"],
            num(r["loss_rkdo"]),
            num(r["loss_icon"]),
            pct(r["loss_improvement_pct"]),
            num(r["yardstick_rkdo"]),
            num(r["yardstick_icon"]),
            pct(r["yardstick_improvement_pct"]),
            num(r["probe_rkdo"]),
            num(r["probe_icon"]),
            f"{r['probe_diff']:+.4f}" if math.isfinite(r["probe_diff"]) else "n/a",
        ]
        for _, r in c.claims.iterrows()
    ]
    lines += [table(header, rows), ""]
    lines.append(
        "Compared: 'verdict' is the Verdict's pair (the best RKDO configuration and its "
        "control, on the search seeds); 'matched' a matched-settings pair. "
        f"Loss = final {m.TRAIN_EPOCH_LOSS} (the paper's measure); improvement = "
        "100 · (I-Con − RKDO) / I-Con, positive when RKDO is lower. Probe = "
        f"{m.EVAL_LINEAR_ACC}, Δ = RKDO − I-Con. {PAPER_REFERENCE}"
    )
    return lines


def render(c: ReportContent) -> str:
    """The whole report as Markdown; figure links are relative to the report's folder."""
    lines = [f"# {c.title}", ""]
    lines += [f"- **{label}:** {value}" for label, value in c.facts]
    lines += ["", *c.verdict, "", *_leaderboard(c), ""]
    lines += [*c.pareto, ""] if c.pareto else []
    lines += [*_matched(c), ""]
    lines += [*c.to_target, "", *_claims(c), "", *c.families, ""]
    if c.figures:
        lines += ["## Plots", ""]
        for figure in c.figures:
            lines += [f"### {figure.title}", "", f"![{figure.title}]({figure.file})", ""]
    if c.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in c.notes), ""]
    lines += [*c.environment, ""] if c.environment else []
    return "\n".join(lines)
