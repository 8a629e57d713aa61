"""Renders the compute-to-target section: the target, the claim's verdict, the tables."""

from __future__ import annotations

import math

import pandas as pd

from rkdo_tune.report._markdown import pct, table
from rkdo_tune.report._ratio import ToTarget
from rkdo_tune.report._targets import RATIO_LABEL
from rkdo_tune.survival import CLAIM_RULE, CLAIMED_RATIO

REACHED_RULE = (
    "A seed run has reached the target at the first evaluation from which it stays at or "
    "beyond it for the rest of the run (the first crossing of a noisy curve comes too "
    "early); a run that never does is censored at its budget, not dropped. Medians are "
    "Kaplan–Meier estimates under that censoring, with a 95% interval (Brookmeyer–Crowley; "
    "∞: these seeds do not bound it)."
)


def _num(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


def _interval(lo: float, hi: float, digits: int = 0) -> str:
    if math.isnan(lo) and math.isnan(hi):
        return "n/a"
    return f"[{_num(lo, digits)}, {_num(hi, digits)}]"


def section(t: ToTarget, *, metric: str, mode: str) -> list[str]:
    """The Markdown lines of the compute-to-target section."""
    lines = ["## Compute-to-target", ""]
    if math.isnan(t.target.value):
        return [*lines, "No target: no trial has a finite final value of the metric."]
    sign = "≥" if mode == "max" else "≤"
    lines += [f"Target: {metric} {sign} {t.target.value:.4f} ({t.target.note}).", ""]
    lines += [REACHED_RULE, ""]
    low, high = CLAIMED_RATIO
    lines += [
        f'**The paper\'s "{100 * (1 - high):.0f}–{100 * (1 - low):.0f}% fewer resources" '
        f"(RKDO / I-Con steps in {low}–{high}): {t.claim.line}.**",
        "",
        f"Rule: {CLAIM_RULE}.",
        "",
    ]
    if not t.ratios.empty:
        lines += [*_ratio_lines(t.ratios), ""]
    lines += [table(*_objective_rows(t.by_objective)), "", "Per configuration:", ""]
    return [*lines, table(*_trial_rows(t.by_trial))]


def _ratio_lines(ratios: pd.DataFrame) -> list[str]:
    header = ["target", "of control's final mean", "RKDO reached", "I-Con reached"]
    header += [RATIO_LABEL + " steps", "95% CI", "saving", "verdict"]
    rows = [
        [
            f"{r['target']:.4f}" + (" (headline)" if i == 0 else ""),
            "—" if pd.isna(r["fraction"]) else f"{r['fraction']:g}",
            f"{r['rkdo_reached']}/{r['n']}",
            f"{r['icon_reached']}/{r['n']}",
            _num(r["ratio"], 2),
            _interval(r["ci_lo"], r["ci_hi"], 2),
            pct(r["saving_pct"]),
            r["verdict"],
        ]
        for i, (_, r) in enumerate(ratios.iterrows())
    ]
    first = ratios.iloc[0]
    note = (
        f"RKDO {first['rkdo_trial']} against I-Con {first['icon_trial']} on the "
        f"{first['n']} seeds both ran (pairs share a seed): the ratio is "
        "exp(mean log(RKDO steps / I-Con steps)), a censored run entering with its budget; "
        "the CI is a seeded percentile bootstrap of the mean log ratio. With "
        f"{first['n']} seeds a bootstrap has only {first['distinct_resamples']} distinct "
        "resamples: the interval is coarse."
    )
    return [table(header, rows), "", note]


SUMMARY_HEADER = ["seeds", "reached", "median steps", "95% CI", "median epochs"]


def _summary_cells(r: pd.Series) -> list[str]:
    unreached = math.isnan(r["median_steps"]) and r["reached"] < 0.5
    return [
        str(r["n_seeds"]),
        _num(r["reached"], 2),
        "over half never reached" if unreached else _num(r["median_steps"], 0),
        _interval(r["median_lo"], r["median_hi"]),
        _num(r["median_epochs"], 2),
    ]


def _objective_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    rows = [[r["objective"], r["scope"], *_summary_cells(r)] for _, r in frame.iterrows()]
    return ["objective", "configuration", *SUMMARY_HEADER], rows


def _trial_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    rows = [[r["trial_id"], r["objective"], *_summary_cells(r)] for _, r in frame.iterrows()]
    return ["trial", "objective", *SUMMARY_HEADER], rows
