"""Claims 3, 4 and 5: α, depth and the α schedule, each against the shared tuned I-Con."""

from __future__ import annotations

from rkdo_tune.audit import _builders as build
from rkdo_tune.audit._claims import ROBUST_FACTOR, ClaimEvidence, with_context
from rkdo_tune.audit._evidence import (
    CONSTANT,
    SharedControl,
    confirmed_pair,
    context,
    floor_check,
    matched_control,
    points_of,
)
from rkdo_tune.report import StudyReport
from rkdo_tune.verdict import PARAM_SYMBOLS


def _trial_ids(report: StudyReport) -> list[str]:
    seeds = report.arms.search_stage
    return sorted(set(seeds.loc[seeds["objective"] == "rkdo", "trial_id"].astype(str)))


def _best_label(report: StudyReport, knob: str, points: list[build.Point]) -> str:
    seeds = report.arms.search_stage
    rows = seeds[seeds["trial_id"] == (report.study.rkdo or "")]
    if rows.empty or knob not in rows:
        return "configuration"
    return next((p.label for p in points if p.value == rows.iloc[0][knob]), "configuration")


def _with_floors(
    evidence: ClaimEvidence, report: StudyReport, confirmed: build.Confirmed | None
) -> ClaimEvidence:
    """The claim with its context and the re-runs' floors (test-split numbers, as the
    floors are); without a re-run nothing is checked and nothing is gated."""
    if confirmed is None:
        text, passed = "not checked: no re-run on the test split to set against them", None
    else:
        arms = {"RKDO": confirmed.rkdo, "I-Con": confirmed.control}
        text, passed = floor_check(report.references, arms)
        text = f"{text} (the re-runs, test split)"
    return with_context(evidence, context=context(report), floors=text, floors_pass=passed)


def _within_factor(x: float, best: float) -> bool:
    """α is log-spaced: near the best means within ROBUST_FACTOR of it either way."""
    return best / ROBUST_FACTOR <= x <= best * ROBUST_FACTOR


def _within_one(x: float, best: float) -> bool:
    return abs(x - best) <= 1


def knob_claim(
    report: StudyReport, control: SharedControl | None, *, number: int, knob: str, study: str
) -> ClaimEvidence:
    """Claim 3 (α, log-spaced) or 4 (depth): every value against the tuned I-Con."""
    points = points_of(report, knob)
    search, rerun = matched_control(report, control, _trial_ids(report))
    confirmed = confirmed_pair(report, rerun, _best_label(report, knob, points))
    symbol = PARAM_SYMBOLS.get(knob, knob)
    if knob == "alpha":
        claim = "RKDO beats I-Con at some α (α sensitivity; the paper ran no ablation)"
        near, near_text = _within_factor, f"α within ×{ROBUST_FACTOR:g} of it"
    else:
        claim = "RKDO beats I-Con at some depth (depth sensitivity, d = 1–8)"
        near, near_text = _within_one, f"{symbol} within ±1 of it"
    evidence = build.sensitivity_claim(
        number=number,
        claim=claim,
        knob=symbol,
        study=study,
        points=points,
        control=search,
        confirmed=confirmed,
        near=near,
        near_text=near_text,
    )
    return _with_floors(evidence, report, confirmed)


def schedule_claim(
    report: StudyReport, control: SharedControl | None, *, study: str
) -> ClaimEvidence:
    """Claim 5: every α schedule against constant α (matched α0), and against the tuned I-Con."""
    points = points_of(report, "alpha_schedule")
    search, rerun = matched_control(report, control, _trial_ids(report))
    confirmed = confirmed_pair(report, rerun, _best_label(report, "alpha_schedule", points))
    evidence = build.schedule_claim(
        study=study, kinds=points, constant=CONSTANT, control=search, confirmed=confirmed
    )
    return _with_floors(evidence, report, confirmed)
