"""One builder per claim of the paper: matched per-seed values in, `ClaimEvidence` out. Pure.

The evidence layer (`_evidence`) picks the values out of the studies' runs; the
builders only test and describe them. Accuracies are the probe's; Δ is RKDO's
side minus the other's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rkdo_tune.audit._claims import (
    EARLY_BUDGET_MAX,
    KIND_BEATS,
    KIND_LOSS,
    KIND_RATIO,
    KIND_REVERSAL,
    KIND_STOP,
    Arm,
    ClaimEvidence,
    Test,
    compare,
    interval_text,
    paired_test,
    saving_interval,
)
from rkdo_tune.inference import PairedComparison, mean_ci
from rkdo_tune.judgement import DEFAULT_MARGIN
from rkdo_tune.survival import UNDETERMINED, ClaimVerdict

CONTROL = "tuned I-Con"


@dataclass(frozen=True)
class Point:
    """One configuration of a sensitivity study: its value of the studied knob, its seeds."""

    value: float | str
    label: str  # 'α = 0.2'
    values: Arm


@dataclass(frozen=True)
class Confirmed:
    """The study's best configuration and the control, re-run on fresh seeds (test split)."""

    label: str
    rkdo: Arm
    control: Arm


def loss_claim(
    *, study: str, loss: tuple[Arm, Arm], probe: tuple[Arm, Arm], yardstick: tuple[Arm, Arm]
) -> ClaimEvidence:
    """Claim 1: the raw loss saving (different functions: shown, not tested), the probe tested."""
    test = paired_test(study, "probe, RKDO vs I-Con at the final budget", *probe)
    saving = saving_interval(*loss)
    yard = compare(*yardstick)
    details = (
        f"raw training loss: {saving.mean:+.1f}% [{saving.lo:+.1f}, {saving.hi:+.1f}] lower for "
        f"RKDO over {saving.n} seeds (two different functions: not a measure of quality)",
        f"InfoNCE yardstick loss (I-Con's own family), RKDO − I-Con: "
        f"{interval_text(yard.delta, yard.lo, yard.hi)} (lower is better)",
    )
    return ClaimEvidence(
        number=1,
        claim="≈30% lower loss than I-Con",
        how="raw loss saving per seed beside the probe, both objectives at reference settings",
        kind=KIND_LOSS,
        study=study,
        tests=(test,),
        headline=0,
        details=details,
        loss_saving=saving,
    )


def ratio_claim(
    *, study: str, ratio: float, lo: float, hi: float, n: int, verdict: ClaimVerdict, target: float
) -> ClaimEvidence:
    """Claim 2: steps to I-Con's final probe, RKDO / I-Con, paired bootstrap CI (no p)."""
    effect = f"step ratio {ratio:.2f} [{lo:.2f}, {hi:.2f}] over {n} seeds"
    return ClaimEvidence(
        number=2,
        claim="60–80% fewer resources (steps) than I-Con",
        how=f"steps to I-Con's final probe ({target:.3f}), paired by seed, ratio RKDO / I-Con",
        kind=KIND_RATIO,
        study=study,
        effect=effect,
        preset=verdict,
    )


def sensitivity_claim(
    *,
    number: int,
    claim: str,
    knob: str,
    study: str,
    points: Sequence[Point],
    control: Arm | None,
    confirmed: Confirmed | None,
    near: Callable[[float, float], bool],
    near_text: str,
    margin: float = DEFAULT_MARGIN,
) -> ClaimEvidence:
    """Claims 3 and 4: each value of the knob against the control, and the best re-run."""
    how = (
        f"every {knob} against {CONTROL} on the validation seeds; the best {knob} re-run "
        "against the control's re-run on fresh test seeds"
    )
    if control is None:
        return ClaimEvidence(
            number,
            claim,
            how,
            KIND_BEATS,
            study,
            preset=_missing("no I-Con control shares this study's settings"),
        )
    tests = [
        paired_test(study, f"{p.label} vs {CONTROL} (validation)", p.values, control)
        for p in points
    ]
    headline = None
    if confirmed is not None:
        label = f"best {confirmed.label} vs {CONTROL}, re-run (test)"
        tests.append(paired_test(study, label, confirmed.rkdo, confirmed.control))
        headline = len(tests) - 1
    elif tests:
        headline = _largest(tests)
    details = (
        _non_inferior(knob, points, tests, margin),
        _robustness(knob, points, near, near_text),
    )
    return ClaimEvidence(
        number,
        claim,
        how,
        KIND_BEATS,
        study,
        tuple(tests),
        headline=headline,
        details=details,
        margin=margin,
    )


def _non_inferior(knob: str, points: Sequence[Point], tests: Sequence[Test], margin: float) -> str:
    kept = [p.label for p, t in zip(points, tests, strict=False) if t.comparison.lo > -margin]
    shown = ", ".join(kept) if kept else "none"
    return (
        f"not worse than {CONTROL} (95% CI above −δ = −{margin:g}) at {len(kept)} of "
        f"{len(points)} values of {knob}: {shown}"
    )


def _robustness(
    knob: str, points: Sequence[Point], near: Callable[[float, float], bool], near_text: str
) -> str:
    """The accuracy lost near the best value: best mean − the worst mean within `near`."""
    means = [float(np.mean(list(p.values.values()))) if p.values else math.nan for p in points]
    if not any(math.isfinite(v) for v in means):
        return f"{knob}-robustness: no values"
    best = int(np.nanargmax(means))
    around = [
        v
        for p, v in zip(points, means, strict=True)
        if near(float(p.value), float(points[best].value))
    ]
    lost = means[best] - min(around)
    return (
        f"{knob}-robustness: best {points[best].label} ({means[best]:.3f}); the worst "
        f"{near_text} loses {lost:.3f} of the probe ({len(around)} values)"
    )


def schedule_claim(
    *,
    study: str,
    kinds: Sequence[Point],
    constant: str,
    control: Arm | None,
    confirmed: Confirmed | None,
    margin: float = DEFAULT_MARGIN,
) -> ClaimEvidence:
    """Claim 5: each annealing kind against constant α at the same α0, and against I-Con."""
    base = next((p for p in kinds if p.value == constant), None)
    how = (
        "every α schedule against constant α at the same α0 (validation seeds); each also "
        f"against {CONTROL}, and the best re-run against the control's re-run (test)"
    )
    if base is None:
        return ClaimEvidence(
            5,
            "adaptive α: start large, then decay",
            how,
            KIND_BEATS,
            study,
            preset=_missing("no constant-α control in the study"),
        )
    tests = tuple(
        paired_test(study, f"{p.label} vs constant (validation)", p.values, base.values)
        for p in kinds
        if p is not base
    )
    side: list[Test] = []
    if control is not None:
        side = [
            paired_test(study, f"{p.label} vs {CONTROL} (validation)", p.values, control)
            for p in kinds
        ]
        if confirmed is not None:
            label = f"best {confirmed.label} vs {CONTROL}, re-run (test)"
            side.append(paired_test(study, label, confirmed.rkdo, confirmed.control))
    headline = _largest(tests) if tests else None
    details = tuple(
        f"{t.label}: Δ {interval_text(t.comparison.delta, t.comparison.lo, t.comparison.hi)}"
        for t in side
    )
    return ClaimEvidence(
        5,
        "adaptive α: start large, then decay",
        how,
        KIND_BEATS,
        study,
        tests,
        tuple(side),
        headline,
        details=details,
        margin=margin,
    )


def reversal_claim(
    *, study: str, budgets: Mapping[int, tuple[Arm, Arm]], margin: float = DEFAULT_MARGIN
) -> ClaimEvidence:
    """Claim 6: Δ probe (RKDO − I-Con) at each budget point, and whether its sign turns."""
    order = sorted(budgets)
    tests = tuple(
        paired_test(study, f"Δ probe at {k} epoch{'s' if k > 1 else ''}", *budgets[k])
        for k in order
    )
    early = tuple(i for i, k in enumerate(order) if k <= EARLY_BUDGET_MAX)
    shown = "; ".join(
        f"{k} ep {interval_text(t.comparison.delta, t.comparison.lo, t.comparison.hi)}"
        for k, t in zip(order, tests, strict=True)
    )
    return ClaimEvidence(
        6,
        "overspecialisation: an early edge that reverses later",
        "Δ probe with its CI at every budget point inside one run per seed",
        KIND_REVERSAL,
        study,
        tests,
        headline=0 if tests else None,
        effect=shown,
        margin=margin,
        early=early,
    )


@dataclass(frozen=True)
class StopObservation:
    """One run: where the loss slope flattened, where the probe peaked, what stopping cost."""

    stop_step: int
    peak_step: int
    given_up: float  # probe at its peak − probe at the last evaluation at or before the stop


def early_stop_claim(
    *,
    study: str,
    observations: Sequence[StopObservation],
    never: int,
    margin: float = DEFAULT_MARGIN,
) -> ClaimEvidence:
    """Claim 7: the accuracy given up by stopping where the slope rule fires, over all runs."""
    how = (
        "every run of the audit: the slope rule's stop step against the best evaluation's "
        "step, and the probe given up by stopping there"
    )
    claim = "early stopping from the loss slope (§6.2.4)"
    if not observations:
        return ClaimEvidence(
            7,
            claim,
            how,
            KIND_STOP,
            study,
            margin=margin,
            effect=f"the rule never fired ({never} runs)",
        )
    given = np.array([o.given_up for o in observations], dtype=float)
    gaps = np.array([o.stop_step - o.peak_step for o in observations], dtype=float)
    test = Test(
        study,
        "probe given up < δ (one-sided t)",
        _against_margin(given, margin),
        _one_sided_p(given, margin),
    )
    g, d = mean_ci(given), mean_ci(gaps)
    effect = (
        f"gives up {g.mean:.3f} [{g.lo:.3f}, {g.hi:.3f}] of the probe; stops {d.mean:+.0f} "
        f"[{d.lo:+.0f}, {d.hi:+.0f}] steps from the best evaluation (− is before it; "
        f"{g.n} runs, {never} more never flattened)"
    )
    return ClaimEvidence(
        7, claim, how, KIND_STOP, study, (test,), headline=0, effect=effect, margin=margin
    )


def _against_margin(given: np.ndarray, margin: float) -> PairedComparison:
    """δ − given up, as a comparison: positive when stopping costs less than δ."""
    interval = mean_ci(given.tolist())
    return PairedComparison(
        margin - interval.mean,
        margin - interval.hi,
        margin - interval.lo,
        interval.n,
        math.nan,
        math.nan,
    )


def _one_sided_p(given: np.ndarray, margin: float) -> float:
    """H0: mean given up ≥ δ; scipy's one-sample t-test, alternative 'less'."""
    if given.size < 3 or float(np.ptp(given)) == 0.0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_1samp(given, popmean=margin, alternative="less").pvalue)


def _largest(tests: Sequence[Test]) -> int:
    """The index of the largest finite Δ (the first test when none is finite)."""
    deltas = [t.comparison.delta for t in tests]
    finite = [i for i, d in enumerate(deltas) if math.isfinite(d)]
    return max(finite, key=lambda i: deltas[i]) if finite else 0


def _missing(why: str) -> ClaimVerdict:
    return ClaimVerdict(UNDETERMINED, f"{UNDETERMINED}: {why}")
