"""The paper's claims as tests: pure functions from per-seed values to verdict rows.

Each claim builder takes matched per-seed values (`Arm`: seed -> final value)
and returns its `ClaimEvidence`: the tests it rests on and what it shows. The
verdicts are decided only after every test of the audit is known, because each
claim is judged at its audit-wide Holm-adjusted p (`decide`); its study's own
adjusted p is shown beside it. Δ is always RKDO's side minus the other, on
accuracy (higher is better), so positive favours the claim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rkdo_tune.inference import ALPHA_LEVEL, Interval, PairedComparison, holm, mean_ci, paired
from rkdo_tune.judgement import DEFAULT_MARGIN
from rkdo_tune.survival import CLAIM_RULE, CONTRADICTED, SUPPORTED, UNDETERMINED, ClaimVerdict

Arm = Mapping[int, float]  # seed -> the final value of one configuration

EARLY_BUDGET_MAX = 2  # epochs: "the edge appears early" reads budgets up to this one
ROBUST_FACTOR = 2.0  # α-robustness: the accuracy lost within this factor of the best α

# The rule of each kind of claim, printed next to the claims table.
KIND_BEATS, KIND_LOSS, KIND_RATIO, KIND_REVERSAL, KIND_STOP = (
    "beats",
    "loss",
    "ratio",
    "reversal",
    "stop",
)
RULES = {  # in the order of the claims
    KIND_LOSS: (
        f"supported when RKDO's raw loss is lower (the 95% CI of the per-seed saving lies "
        f"above 0) and the probe is better (Δ > 0 at audit-wide Holm p < {ALPHA_LEVEL}); "
        "contradicted when the loss is not lower (the CI lies below 0) or the probe cannot be "
        "better by δ (its CI lies below +δ); undetermined otherwise"
    ),
    KIND_RATIO: CLAIM_RULE,
    KIND_BEATS: (
        f"supported when at least one of the claim's tests finds RKDO's side better (Δ > 0 "
        f"at audit-wide Holm p < {ALPHA_LEVEL}); contradicted when none can be better by δ "
        "(every CI lies below +δ); undetermined otherwise"
    ),
    KIND_REVERSAL: (
        f"supported when RKDO leads at a budget of at most {EARLY_BUDGET_MAX} epochs and "
        f"trails at a later one (each Δ at audit-wide Holm p < {ALPHA_LEVEL}); contradicted "
        "when there is no early lead to lose (every early CI lies below +δ) or the lead "
        "holds at every later budget (each significant); undetermined otherwise"
    ),
    KIND_STOP: (
        "supported when stopping where the loss slope flattens gives up less than δ of the "
        f"probe (one-sided t-test against δ, audit-wide Holm p < {ALPHA_LEVEL}); "
        "contradicted when the 95% CI of what it gives up lies above δ; undetermined "
        "otherwise, and when the rule never fired"
    ),
}


@dataclass(frozen=True)
class Test:
    """One hypothesis test of the audit; Δ = RKDO's side − the other (or δ − given up)."""

    study: str
    label: str
    comparison: PairedComparison
    p: float  # two-sided paired-t p, or the one-sided p of a claim's own test

    @property
    def key(self) -> tuple[str, str]:
        return self.study, self.label


@dataclass(frozen=True)
class ClaimEvidence:
    """What a claim rests on, before the audit's Holm adjustments decide it."""

    number: int
    claim: str
    how: str
    kind: str
    study: str
    tests: tuple[Test, ...] = ()  # what the rule reads
    side_tests: tuple[Test, ...] = ()  # adjusted in the families and shown, not in the rule
    headline: int | None = None  # index into tests: the effect the table shows
    effect: str = ""  # a one-line effect where no test applies (claim 2)
    details: tuple[str, ...] = ()  # sensitivity read-outs and other numbers shown below
    context: str = ""
    floors: str = ""
    floors_pass: bool | None = None  # every arm's probe CI above the stricter floor; None: n/a
    preset: ClaimVerdict | None = None  # decided without a p (claim 2's CI rule), or missing
    loss_saving: Interval | None = None  # claim 1: per-seed % saving of the raw loss
    margin: float = DEFAULT_MARGIN
    early: tuple[int, ...] = ()  # claim 6: the indices of the early budgets' tests


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims table, decided."""

    evidence: ClaimEvidence
    effect: str
    p_study: float
    p_audit: float
    verdict: str
    why: str


@dataclass(frozen=True)
class Adjusted:
    """Holm-adjusted p of every test: within its study's family, and over the whole audit."""

    study: Mapping[tuple[str, str], float]
    audit: Mapping[tuple[str, str], float]
    study_sizes: Mapping[str, int] = field(default_factory=dict)
    audit_size: int = 0


def compare(rkdo: Arm, other: Arm) -> PairedComparison:
    """Paired by seed: the seeds both arms have, in seed order."""
    seeds = sorted(set(rkdo) & set(other))
    return paired([rkdo[s] for s in seeds], [other[s] for s in seeds])


def paired_test(study: str, label: str, rkdo: Arm, other: Arm) -> Test:
    comparison = compare(rkdo, other)
    return Test(study, label, comparison, comparison.p_t)


def adjust(claims: Sequence[ClaimEvidence]) -> Adjusted:
    """Holm over each study's tests, and over every test of the audit (each counted once)."""
    tests: dict[tuple[str, str], Test] = {}
    for claim in claims:
        for test in (*claim.tests, *claim.side_tests):
            tests.setdefault(test.key, test)
    keys = list(tests)
    audit = dict(zip(keys, holm([tests[k].p for k in keys]), strict=True))
    study: dict[tuple[str, str], float] = {}
    sizes: dict[str, int] = {}
    for name in dict.fromkeys(k[0] for k in keys):
        own = [k for k in keys if k[0] == name]
        ps = [tests[k].p for k in own]
        study.update(zip(own, holm(ps), strict=True))
        sizes[name] = sum(math.isfinite(p) for p in ps)
    size = sum(math.isfinite(t.p) for t in tests.values())
    return Adjusted(study, audit, sizes, size)


def interval_text(delta: float, lo: float, hi: float, *, digits: int = 3) -> str:
    if not math.isfinite(delta):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{delta:+.{digits}f} (no CI)"
    return f"{delta:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _significant(test: Test, adjusted: Adjusted, *, positive: bool) -> bool:
    p = adjusted.audit.get(test.key, math.nan)
    delta = test.comparison.delta
    return math.isfinite(p) and p < ALPHA_LEVEL and (delta > 0) == positive and delta != 0


def _below_margin(test: Test, margin: float) -> bool:
    """The CI excludes an improvement of δ: RKDO's side cannot be better by the margin."""
    hi = test.comparison.hi
    return math.isfinite(hi) and hi < margin


def decide(evidence: ClaimEvidence, adjusted: Adjusted) -> ClaimRow:
    """The claim's verdict by its kind's rule (`RULES`), at audit-wide adjusted p."""
    head = evidence.tests[evidence.headline] if evidence.headline is not None else None
    effect = evidence.effect
    p_study = p_audit = math.nan
    if head is not None:
        c = head.comparison
        effect = effect or f"{head.label}: Δ {interval_text(c.delta, c.lo, c.hi)}"
        p_study, p_audit = adjusted.study.get(head.key, math.nan), adjusted.audit[head.key]
    if evidence.preset is not None:
        word, why = evidence.preset.word, evidence.preset.line
    else:
        word, why = _RULE_OF[evidence.kind](evidence, adjusted)
    if evidence.floors_pass is False and word != UNDETERMINED:
        word, why = UNDETERMINED, f"{why}; but an arm does not clear the floor: no claim"
    return ClaimRow(evidence, effect, p_study, p_audit, word, why)


def _beats(e: ClaimEvidence, adjusted: Adjusted) -> tuple[str, str]:
    better = [t for t in e.tests if _significant(t, adjusted, positive=True)]
    if better:
        return SUPPORTED, f"better at adjusted p < {ALPHA_LEVEL}: {_labels(better)}"
    if e.tests and all(_below_margin(t, e.margin) for t in e.tests):
        return CONTRADICTED, f"no test's CI reaches +δ = {e.margin:g}"
    return UNDETERMINED, f"none better at adjusted p < {ALPHA_LEVEL}, some CI reaches +δ"


def _loss(e: ClaimEvidence, adjusted: Adjusted) -> tuple[str, str]:
    saving = e.loss_saving
    probe = e.tests[e.headline] if e.headline is not None else None
    if saving is None or probe is None or not math.isfinite(saving.lo):
        return UNDETERMINED, "too few matched seeds for the loss saving's CI"
    shown = f"raw loss {saving.mean:+.1f}% [{saving.lo:+.1f}, {saving.hi:+.1f}] lower"
    if saving.hi < 0:
        return CONTRADICTED, f"{shown}: RKDO's loss is higher"
    if _below_margin(probe, e.margin) or _significant(probe, adjusted, positive=False):
        return CONTRADICTED, f"{shown}, but the probe cannot be better by δ = {e.margin:g}"
    if saving.lo > 0 and _significant(probe, adjusted, positive=True):
        return SUPPORTED, f"{shown}, and the probe is better"
    return UNDETERMINED, f"{shown}; the probe is not better at adjusted p < {ALPHA_LEVEL}"


def _reversal(e: ClaimEvidence, adjusted: Adjusted) -> tuple[str, str]:
    early = [e.tests[i] for i in e.early]
    later = [t for i, t in enumerate(e.tests) if i not in e.early]
    lead = [t for t in early if _significant(t, adjusted, positive=True)]
    if lead and any(_significant(t, adjusted, positive=False) for t in later):
        return SUPPORTED, f"a lead at {_labels(lead)} that reverses later"
    if early and all(_below_margin(t, e.margin) for t in early):
        return CONTRADICTED, f"no early lead: every early CI lies below +δ = {e.margin:g}"
    if lead and later and all(_significant(t, adjusted, positive=True) for t in later):
        return CONTRADICTED, "the early lead holds at every later budget"
    signs = "".join("+" if t.comparison.delta > 0 else "-" for t in e.tests)
    return UNDETERMINED, f"no significant lead followed by a significant reversal (signs {signs})"


def _stop(e: ClaimEvidence, adjusted: Adjusted) -> tuple[str, str]:
    if not e.tests:
        return UNDETERMINED, "the slope rule never fired"
    test = e.tests[0]
    given_up = e.margin - test.comparison.delta  # the test's Δ is δ − given up
    lo, hi = e.margin - test.comparison.hi, e.margin - test.comparison.lo
    shown = f"gives up {given_up:.3f} [{lo:.3f}, {hi:.3f}]"
    p = adjusted.audit.get(test.key, math.nan)
    if math.isfinite(p) and p < ALPHA_LEVEL:
        return SUPPORTED, f"{shown}: less than δ = {e.margin:g}"
    if math.isfinite(lo) and lo > e.margin:
        return CONTRADICTED, f"{shown}: more than δ = {e.margin:g}"
    return UNDETERMINED, f"{shown}: not shown below δ = {e.margin:g}"


_RULE_OF = {KIND_BEATS: _beats, KIND_LOSS: _loss, KIND_REVERSAL: _reversal, KIND_STOP: _stop}


def _labels(tests: Sequence[Test]) -> str:
    return "; ".join(t.label for t in tests)


def decide_all(claims: Sequence[ClaimEvidence]) -> tuple[list[ClaimRow], Adjusted]:
    adjusted = adjust(claims)
    return [decide(c, adjusted) for c in claims], adjusted


def with_context(
    evidence: ClaimEvidence, *, context: str, floors: str, floors_pass: bool | None = None
) -> ClaimEvidence:
    return replace(evidence, context=context, floors=floors, floors_pass=floors_pass)


def saving_interval(rkdo: Arm, icon: Arm) -> Interval:
    """The paper's Table 1 measure per seed, 100 (L_icon − L_rkdo) / L_icon, with its CI."""
    seeds = sorted(set(rkdo) & set(icon))
    return mean_ci([100.0 * (icon[s] - rkdo[s]) / icon[s] for s in seeds if icon[s]])
