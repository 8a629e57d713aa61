"""Claim 7: early stopping from the loss slope, read from every whole run of the audit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.audit import _builders as build
from rkdo_tune.audit._claims import ClaimEvidence, with_context
from rkdo_tune.audit._evidence import PROBE
from rkdo_tune.report import StudyReport
from rkdo_tune.tracking.reading import budget_source

ALL_STUDIES = "every study"  # claim 7 pools the runs of every study: its own Holm family


def value_at(history: pd.DataFrame, run_id: str, step: float, *, key: str = PROBE) -> float:
    """The last evaluation of `key` at or before `step` in one run's history; NaN if none."""
    rows = history[(history["run_id"] == run_id) & (history["key"] == key)]
    rows = rows[rows["step"] <= step]
    if rows.empty:
        return math.nan
    return float(rows.sort_values("step")["value"].iloc[-1])


def observations(report: StudyReport) -> tuple[list[build.StopObservation], int]:
    """Each whole seed run's stop, peak and probe given up; and how many never flattened.

    Budget points are prefixes of a whole run, so they are left out (counted once)."""
    rows = pd.concat([report.arms.search_stage, report.arms.confirmation], ignore_index=True)
    found, never = [], 0
    for _, row in rows.iterrows():
        if budget_source(str(row["trial_id"])) != row["trial_id"]:
            continue
        stop = float(row.get(m.DIAG_EARLY_STOP_STEP, math.nan))
        peak = float(row.get(m.DIAG_PEAK_EVAL_STEP, math.nan))
        best = float(row.get(m.DIAG_PEAK_EVAL_VALUE, math.nan))
        if not math.isfinite(stop) or not math.isfinite(peak) or peak < 0:
            continue
        if stop < 0:
            never += 1
            continue
        at_stop = value_at(report.runs.history, str(row["run_id"]), stop)
        if math.isfinite(at_stop) and math.isfinite(best):
            found.append(build.StopObservation(int(stop), int(peak), best - at_stop))
    return found, never


def early_stop_claim(reports: Sequence[StudyReport], *, context: str) -> ClaimEvidence:
    """Claim 7 over every study's whole runs."""
    found: list[build.StopObservation] = []
    never = 0
    for report in reports:
        more, missed = observations(report)
        found += more
        never += missed
    evidence = build.early_stop_claim(study=ALL_STUDIES, observations=found, never=never)
    return with_context(evidence, context=context, floors="n/a: a property of each run's curves")
