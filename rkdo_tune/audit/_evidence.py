"""From the studies' reports to the claims' evidence: which runs answer which claim.

Each study was reported by `rkdo_tune.report` (its arms, verdict and compute-to-target);
this module picks the per-seed values each claim builder needs. The I-Con control of
the alpha, depth and schedule claims is one: the alpha study's tuned I-Con, trained
once. It serves another study only where every shared setting and the scored split
agree (`config.shared_settings_key`), so each pair differs in the objective alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.audit import _builders as build
from rkdo_tune.audit._claims import Arm, ClaimEvidence, with_context
from rkdo_tune.config import shared_settings_key
from rkdo_tune.floors import LABEL_OF, References, check_floor
from rkdo_tune.judgement import context_of
from rkdo_tune.report import StudyReport, Target, step_ratios
from rkdo_tune.survival import ClaimVerdict
from rkdo_tune.tracking.reading import budget_source
from rkdo_tune.verdict import PARAM_SYMBOLS

PROBE = m.EVAL_LINEAR_ACC
CONSTANT = "constant"


@dataclass(frozen=True)
class SharedControl:
    """The tuned I-Con of the alpha study: its search seeds and its re-run on fresh seeds."""

    trial_id: str
    search: Arm
    confirmation: Arm
    key: tuple[tuple[str, str], ...]  # the shared settings of its search-stage runs
    confirm_key: tuple[tuple[str, str], ...]


def arm(seeds: pd.DataFrame, trial_id: str, metric: str = PROBE) -> dict[int, float]:
    """{seed: final value} of one trial's finished seed runs."""
    rows = seeds[(seeds["trial_id"] == trial_id) & np.isfinite(seeds.get(metric, math.nan))]
    return {int(s): float(v) for s, v in zip(rows["seed"], rows[metric], strict=True)}


def settings_key(seeds: pd.DataFrame, trial_id: str) -> tuple[tuple[str, str], ...]:
    """The shared settings of one trial's first seed run, the seed itself left out."""
    rows = seeds[seeds["trial_id"] == trial_id]
    if rows.empty:
        return ()
    values = {k: v for k, v in rows.iloc[0].items() if k != "seed" and _present(v)}
    return shared_settings_key(values)


def _present(value: object) -> bool:
    return not (isinstance(value, float) and math.isnan(value))


def shared_control(alpha: StudyReport) -> SharedControl | None:
    """The alpha study's I-Con control (its tuned best), if its verdict found one."""
    control = alpha.study.control
    if control is None:
        return None
    seeds, arms = alpha.arms.search_stage, alpha.arms
    rerun = arms.confirmation_of.get(control.trial_id, "")
    return SharedControl(
        trial_id=control.trial_id,
        search=arm(seeds, control.trial_id),
        confirmation=arm(arms.confirmation, rerun) if rerun else {},
        key=settings_key(seeds, control.trial_id),
        confirm_key=settings_key(arms.confirmation, rerun) if rerun else (),
    )


def context(report: StudyReport) -> str:
    """'digits, small_cnn, protocol full, 5 full epochs, batch 64' (the study's fixed part)."""
    c = context_of(report.runs.info.base)
    return f"{c.dataset}, {c.model}, protocol {c.protocol}, {c.budget}"


def floor_check(references: References | None, arms: Mapping[str, Arm]) -> tuple[str, bool | None]:
    """The floors sentence, and whether every arm's probe CI clears the stricter floor
    (None: no floor recorded to check against)."""
    found = references.floor(PROBE) if references is not None else None
    if references is None or found is None:
        return ("no floors recorded" if references is None else "no probe floor recorded"), None
    value, kind = found
    above = [
        name
        for name, a in arms.items()
        if (f := check_floor(references, PROBE, list(a.values()))) is not None and f.beats
    ]
    below = [name for name in arms if name not in above]
    where = f"{LABEL_OF.get(kind, kind)} {value:.3f}"
    if not below:
        return f"both arms above the {where}", True
    return f"{' and '.join(below)} not above the {where}: no claim", False


# ---- claims 1, 2 and 6: the budgets study ------------------------------------------------


def _full_trials(seeds: pd.DataFrame) -> dict[str, str]:
    """{objective: trial id} of the whole runs (not budget points) of a budgets study."""
    firsts = seeds.groupby("trial_id", sort=True).first()
    return {
        str(row["objective"]): str(t) for t, row in firsts.iterrows() if budget_source(str(t)) == t
    }


def _budget_arms(seeds: pd.DataFrame, metric: str) -> dict[int, tuple[Arm, Arm]]:
    """{epochs: (RKDO arm, I-Con arm)} over every budget point and the whole run."""
    firsts = seeds.groupby("trial_id", sort=True).first()
    by: dict[int, dict[str, str]] = {}
    for trial, row in firsts.iterrows():
        by.setdefault(int(row["epochs"]), {})[str(row["objective"])] = str(trial)
    return {
        k: (arm(seeds, t["rkdo"], metric), arm(seeds, t["icon"], metric))
        for k, t in sorted(by.items())
        if {"rkdo", "icon"} <= set(t)
    }


def budget_claims(report: StudyReport, *, study: str) -> list[ClaimEvidence]:
    """Claims 1, 2 and 6 from the budgets study (both objectives, budget points, test split)."""
    seeds = report.arms.search_stage
    probes = _budget_arms(seeds, PROBE)
    if not probes:
        missing = ClaimVerdict("undetermined", "undetermined: no RKDO and I-Con runs to pair")
        return [
            ClaimEvidence(n, c, "", "beats", study, preset=missing)
            for n, c in (
                (1, "≈30% lower loss than I-Con"),
                (2, "60–80% fewer resources (steps) than I-Con"),
                (6, "overspecialisation: an early edge that reverses later"),
            )
        ]
    final = max(probes)
    losses = _budget_arms(seeds, m.TRAIN_EPOCH_LOSS)[final]
    yard = _budget_arms(seeds, m.EVAL_YARDSTICK_LOSS)[final]
    where, refs = context(report), report.references
    floors, passed = floor_check(refs, dict(zip(("RKDO", "I-Con"), probes[final], strict=True)))
    loss = build.loss_claim(study=study, loss=losses, probe=probes[final], yardstick=yard)
    ratio = _ratio_claim(report, study=study)
    per_budget, every = _floors_by_budget(refs, probes)
    reversal = build.reversal_claim(study=study, budgets=probes)
    return [
        with_context(loss, context=where, floors=floors, floors_pass=passed),
        with_context(ratio, context=where, floors=floors, floors_pass=passed),
        with_context(reversal, context=where, floors=per_budget, floors_pass=every),
    ]


def _floors_by_budget(
    refs: References | None, probes: Mapping[int, tuple[Arm, Arm]]
) -> tuple[str, bool | None]:
    """'both arms above the raw-pixel floor 0.961 at 2 ep; not at 1, 5, 10 ep', and whether
    both arms clear it at every budget."""
    checks = {
        k: floor_check(refs, dict(zip(("RKDO", "I-Con"), pair, strict=True)))
        for k, pair in probes.items()
    }
    found = refs.floor(PROBE) if refs is not None else None
    if found is None:
        return next(iter(checks.values()), ("no floors recorded", None))
    value, kind = found
    above = [k for k, (_, ok) in checks.items() if ok]
    others = [k for k in checks if k not in above]
    listed = ", ".join(map(str, above)) or "no budget"
    tail = f"; not at {', '.join(map(str, others))} ep (no claim there)" if others else ""
    where = f"{LABEL_OF.get(kind, kind)} {value:.3f}"
    return f"both arms above the {where} at {listed} ep{tail}", not others


def _ratio_claim(report: StudyReport, *, study: str) -> ClaimEvidence:
    """Claim 2: steps to I-Con's final probe, RKDO's whole run against I-Con's."""
    seeds, info = report.arms.search_stage, report.runs.info
    full = _full_trials(seeds)
    icon = arm(seeds, full.get("icon", ""))
    if "rkdo" not in full or not icon:
        verdict = ClaimVerdict("undetermined", "undetermined: no whole RKDO and I-Con runs")
        return build.ratio_claim(
            study=study,
            ratio=math.nan,
            lo=math.nan,
            hi=math.nan,
            n=0,
            verdict=verdict,
            target=math.nan,
        )
    value = float(np.mean(list(icon.values())))
    target = Target(value, "I-Con's final seed-mean", value, 1.0, full["icon"])
    ratios = step_ratios(
        seeds,
        report.runs.history,
        metric=PROBE,
        mode=info.mode,
        pair=(full["rkdo"], full["icon"]),
        target=target,
    )
    first = ratios.iloc[0]
    verdict = ClaimVerdict(str(first["verdict"]), str(first["verdict_line"]))
    return build.ratio_claim(
        study=study,
        ratio=float(first["ratio"]),
        lo=float(first["ci_lo"]),
        hi=float(first["ci_hi"]),
        n=int(first["n"]),
        verdict=verdict,
        target=value,
    )


# ---- claims 3, 4 and 5: sensitivity against the shared control ------------------------------


def points_of(report: StudyReport, knob: str) -> list[build.Point]:
    """Each RKDO search-stage configuration by its value of `knob`, sorted by that value."""
    seeds = report.arms.search_stage
    rkdo = seeds[seeds["objective"] == "rkdo"]
    firsts = rkdo.groupby("trial_id", sort=True).first()
    symbol = PARAM_SYMBOLS.get(knob, knob)
    points = [
        build.Point(row[knob], f"{symbol} = {_shown(row[knob])}", arm(seeds, str(t)))
        for t, row in firsts.iterrows()
    ]
    return sorted(points, key=lambda p: (isinstance(p.value, str), p.value))


def _shown(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def matched_control(
    report: StudyReport, control: SharedControl | None, trial_ids: Sequence[str]
) -> tuple[Arm | None, Arm | None]:
    """The control's search and re-run arms where they share this study's settings."""
    if control is None:
        return None, None
    seeds = report.arms.search_stage
    keys = {settings_key(seeds, t) for t in trial_ids}
    search = control.search if keys == {control.key} else None
    best = report.study.rkdo or ""
    rerun = report.arms.confirmation_of.get(best, "")
    same = rerun and settings_key(report.arms.confirmation, rerun) == control.confirm_key
    return search, control.confirmation if same else None


def confirmed_pair(report: StudyReport, control: Arm | None, label: str) -> build.Confirmed | None:
    best = report.study.rkdo or ""
    rerun = report.arms.confirmation_of.get(best, "")
    if not rerun or control is None:
        return None
    return build.Confirmed(label, arm(report.arms.confirmation, rerun), control)
