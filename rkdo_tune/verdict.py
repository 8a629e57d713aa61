"""The verdict of a study: the best RKDO configuration against the I-Con baseline.

Pure: it takes each arm's per-seed final values and returns numbers and
sentences, so the sweep's closing table, its MLflow run and the report all
print the same verdict. With a primary endpoint (the space's `verdict.metric`,
at the final budget) that metric is judged alone against a margin (`judgement`)
and the others are secondary, one Holm family; without one, every metric of
`metrics.VERDICT_METRICS` is one Holm family. The raw training loss is shown
beside it, marked as not comparable (the two objectives are different functions).
With floors (`floors.py`), a metric where an arm's CI does not clear the untrained
floor makes no claim. Every sentence names the study's context (dataset, model,
protocol, budget) when it is known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rkdo_tune import metrics as m
from rkdo_tune.floors import LABEL_OF, SUPERVISED, References, check_floor
from rkdo_tune.inference import (
    ALPHA_LEVEL,
    MIN_TEST_PAIRS,
    MIN_WILCOXON_PAIRS,
    POWER,
    PairedComparison,
    family_size,
    holm,
    min_detectable_effect,
    paired,
    paired_differences,
    seeds_needed,
    tost_p,
)
from rkdo_tune.judgement import (
    DEFAULT_MARGIN,
    FloorGate,
    StudyContext,
    outcome,
    outcome_phrase,
)

# Values of one arm: metric -> {seed: final value}.
PerSeed = Mapping[str, Mapping[int, float]]

FAMILY = "verdict"  # the Holm family: every metric of VERDICT_METRICS, one test each
DEFAULTS_FAMILY = "default against default"  # the same, RKDO's default vs I-Con's (I-Con tuned)
# The arms of a study: configurations the search proposed, and the I-Con control arm.
ARM_SEARCH, ARM_BASELINE = "search", "baseline"
ARMS = (ARM_SEARCH, ARM_BASELINE)
# Its stages: the search (selection) and the re-run of the top configurations on fresh seeds.
STAGE_SEARCH, STAGE_CONFIRMATION = "search", "confirmation"
STAGES = (STAGE_SEARCH, STAGE_CONFIRMATION)
PARAM_SYMBOLS = {"alpha": "α", "depth": "d", "tau": "τ0", "beta": "β", "alpha_schedule": "α sched"}


def config_label(params: Mapping[str, object], *, equals: str = " = ", joiner: str = ", ") -> str:
    """'α = 0.304, d = 3' from a configuration's searched values (3 significant digits);
    `equals` and `joiner` give the compact form of MLflow run names ('α=0.304 d=3')."""
    parts = []
    for name, value in params.items():
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{PARAM_SYMBOLS.get(name, name)}{equals}{shown}")
    return joiner.join(parts)


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    comparison: PairedComparison
    p_holm: float
    rkdo_mean: float
    icon_mean: float
    primary: bool = False  # the space's primary endpoint: judged alone, against the margin
    margin: float = math.nan
    p_tost: float = math.nan  # TOST of |Δ| < margin (primary only)

    @property
    def outcome(self) -> str | None:
        """The margin outcome (`judgement.OUTCOMES`) of the primary endpoint; None otherwise."""
        if not self.primary or not math.isfinite(self.margin):
            return None
        c = self.comparison
        return outcome(self.metric, c.lo, c.hi, margin=self.margin, p_tost=self.p_tost)

    @property
    def mde(self) -> float:
        """The smallest |Δ| detectable at 80% power with these pairs and this spread."""
        return min_detectable_effect(self.comparison.sd, self.comparison.n)

    @property
    def seeds_for_margin(self) -> int | None:
        """Seeds that the observed spread needs to show non-inferiority at the margin."""
        return seeds_needed(self.comparison.sd, self.margin)

    @property
    def winner(self) -> str | None:
        """'RKDO' or 'I-Con' only when the Holm-adjusted test rejects; None otherwise."""
        if not (math.isfinite(self.p_holm) and self.p_holm < ALPHA_LEVEL):
            return None
        higher_is_better = m.MODE_OF.get(self.metric, "max") == "max"
        return "RKDO" if (self.comparison.delta > 0) == higher_is_better else "I-Con"


@dataclass(frozen=True)
class Verdict:
    rkdo_label: str
    baseline_label: str
    stage: str  # which seeds the numbers come from: fresh confirmation seeds, or the search's
    seeds: tuple[int, ...]
    rows: tuple[MetricVerdict, ...]
    loss: MetricVerdict | None  # the raw training loss: not comparable, shown beside
    context: StudyContext | None = None
    references: References | None = None
    gates: Mapping[str, FloorGate] = field(default_factory=dict)  # metric -> floor check
    family: str = FAMILY  # the name of its secondary metrics' Holm family
    searched: int = 0  # RKDO configurations the control faces; > 1 against an untuned I-Con

    @property
    def primary(self) -> MetricVerdict | None:
        return next((row for row in self.rows if row.primary), None)

    @property
    def family_size(self) -> int:
        """The Holm family's size: the secondary metrics with a test (all, without a primary)."""
        return family_size([row.p_holm for row in self.rows if not row.primary])

    @property
    def pairs(self) -> int:
        return max((row.comparison.n for row in self.rows), default=0)


def _compare(metric: str, rkdo: PerSeed, icon: PerSeed) -> tuple[PairedComparison, float, float]:
    a, b = rkdo.get(metric, {}), icon.get(metric, {})
    seeds = sorted(set(a) & set(b))
    values_a, values_b = [a[s] for s in seeds], [b[s] for s in seeds]
    mean_a = m.mean_over_seeds(values_a, non_finite="omit")[0]
    mean_b = m.mean_over_seeds(values_b, non_finite="omit")[0]
    return paired(values_a, values_b), mean_a, mean_b


def _adjusted(
    present: Sequence[str], p_values: Sequence[float], primary: str | None
) -> list[float]:
    """Holm over the secondary metrics; the primary endpoint keeps its own p (a family of one)."""
    pairs = list(zip(present, p_values, strict=True))
    adjusted = iter(holm([p for name, p in pairs if name != primary]))
    return [p if name == primary else next(adjusted) for name, p in pairs]


def _gates(
    references: References | None, present: Sequence[str], rkdo: PerSeed, icon: PerSeed
) -> dict[str, FloorGate]:
    """Each compared metric that has a floor: both arms' per-seed values against it."""
    gates = {}
    for name in present if references is not None else ():
        a, b = rkdo.get(name, {}), icon.get(name, {})
        seeds = sorted(set(a) & set(b))
        check_a = check_floor(references, name, [a[s] for s in seeds])
        check_b = check_floor(references, name, [b[s] for s in seeds])
        if check_a is not None and check_b is not None:
            gates[name] = FloorGate(check_a, check_b)
    return gates


def build_verdict(
    rkdo: PerSeed,
    icon: PerSeed,
    *,
    rkdo_label: str,
    baseline_label: str = "I-Con baseline",
    stage: str = STAGE_SEARCH,
    metrics: Sequence[str] = m.VERDICT_METRICS,
    primary: str | None = None,
    margin: float = DEFAULT_MARGIN,
    context: StudyContext | None = None,
    references: References | None = None,
    family: str = FAMILY,
    searched: int = 0,
) -> Verdict:
    """Paired comparisons over the seeds both arms share.

    `primary` (one of `metrics`) is judged alone against `margin`; the other
    metrics form one Holm family (all of them when there is no primary).
    `references` adds the floors gate; `context` names the study on every line;
    `searched` > 1 says that RKDO's best of that many meets one untuned I-Con.
    """
    present = [name for name in metrics if rkdo.get(name) and icon.get(name)]
    primary = primary if primary in present else None
    compared = [_compare(name, rkdo, icon) for name in present]
    adjusted = _adjusted(present, [c.p_t for c, _, _ in compared], primary)
    rows = []
    for name, (c, ma, mb), p in zip(present, compared, adjusted, strict=True):
        if name != primary:
            rows.append(MetricVerdict(name, c, p, ma, mb))
            continue
        a, b = rkdo[name], icon[name]
        seeds = sorted(set(a) & set(b))
        diffs = paired_differences([a[s] for s in seeds], [b[s] for s in seeds])
        rows.append(MetricVerdict(name, c, p, ma, mb, True, margin, tost_p(diffs, margin)))
    loss = None
    if rkdo.get(m.TRAIN_EPOCH_LOSS) and icon.get(m.TRAIN_EPOCH_LOSS):
        c, ma, mb = _compare(m.TRAIN_EPOCH_LOSS, rkdo, icon)
        loss = MetricVerdict(m.TRAIN_EPOCH_LOSS, c, math.nan, ma, mb)
    seeds = sorted(set().union(*(set(rkdo.get(n, {})) & set(icon.get(n, {})) for n in present)))
    gates = _gates(references, present, rkdo, icon)
    return Verdict(
        rkdo_label,
        baseline_label,
        stage,
        tuple(seeds),
        tuple(rows),
        loss,
        context=context,
        references=references,
        gates=gates,
        family=family,
        searched=searched,
    )


def _num(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:+.3f}"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2g}"


def _seeds_phrase(verdict: Verdict, n: int) -> str:
    kind = "fresh seeds" if verdict.stage == STAGE_CONFIRMATION else "search seeds"
    return f"{n} {kind}"


def _where(verdict: Verdict) -> str:
    return f" [{verdict.context.label()}]" if verdict.context is not None else ""


def row_sentence(verdict: Verdict, row: MetricVerdict) -> str:
    """'RKDO (α = 0.3) vs I-Con on the linear probe: -0.006 [-0.031, +0.019], not ...'.

    Ends with the study's context when known; a metric whose floors gate holds
    no claim says so instead of a test result.
    """
    return _row_outcome(verdict, row) + _where(verdict)


def _row_outcome(verdict: Verdict, row: MetricVerdict) -> str:
    c = row.comparison
    role = "primary endpoint " if row.primary else ""
    head = (
        f"RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label} on {role}"
        f"{m.LABEL_OF.get(row.metric, row.metric)}: {_num(c.delta)} [{_num(c.lo)}, {_num(c.hi)}]"
    )
    gate = verdict.gates.get(row.metric)
    if gate is not None and not gate.allows_claim:
        dataset = verdict.context.dataset if verdict.context else verdict.references.key.dataset
        return f"{head}: {gate.sentence(dataset)}"
    if c.n < MIN_TEST_PAIRS:
        return f"{head}, too few seeds for a test ({c.n} pairs, {MIN_TEST_PAIRS} needed)"
    if not c.testable:
        return f"{head}, no test: the same difference on every seed ({c.n} pairs)"
    seeds = _seeds_phrase(verdict, c.n)
    wilcoxon = f", p_Wilcoxon = {_p(c.p_wilcoxon)}" if c.n >= MIN_WILCOXON_PAIRS else ""
    result = row.outcome
    if result is not None:
        phrase = outcome_phrase(result, margin=row.margin)
        return f"{head}, {phrase} (p = {_p(row.p_holm)}{wilcoxon}, {seeds})"
    winner = row.winner
    result = f"{winner} better" if winner else "not distinguishable"
    return f"{head}, {result} (p_Holm = {_p(row.p_holm)}{wilcoxon}, {seeds})"


def power_sentence(verdict: Verdict) -> str | None:
    """The primary endpoint's power: its MDE at 80% and the seeds its margin needs."""
    row = verdict.primary
    if row is None or not math.isfinite(row.comparison.sd):
        return None
    c, needed = row.comparison, row.seeds_for_margin
    seeds = f"about {needed} seeds" if needed else "more seeds than can be planned"
    return (
        f"Power: with {c.n} pairs and a spread of Δ of {c.sd:.4f} (sd), the smallest "
        f"difference the paired t-test detects with {POWER:.0%} power is {row.mde:.4f}; "
        f"showing non-inferiority at δ = {row.margin:g} with {POWER:.0%} power would take "
        f"{seeds} at this spread."
    )


def floors_sentence(verdict: Verdict) -> str | None:
    """The floors and ceiling of the compared metrics, with what they were computed on."""
    refs = verdict.references
    if refs is None:
        return None
    parts = []
    for row in verdict.rows:
        found = refs.floor(row.metric)
        if found is None:
            continue
        ceiling = refs.value(SUPERVISED, row.metric)
        top = f", ceiling {ceiling:.4f}" if math.isfinite(ceiling) else ""
        label = m.LABEL_OF.get(row.metric, row.metric)
        parts.append(f"{label} {found[0]:.4f} ({LABEL_OF[found[1]]}{top})")
    if not parts:
        return None
    absent = refs.notes.get(SUPERVISED)
    note = f" Supervised ceiling {absent}." if absent else ""
    return (
        f"Floors ({refs.key.label()}, {refs.test_size} test images): " + "; ".join(parts) + "."
        f"{note} A claim needs both arms' CIs beyond the floor."
    )


def budget_sentence(verdict: Verdict) -> str | None:
    """A warning when RKDO's best of several configurations meets one untuned I-Con."""
    if verdict.searched <= 1:
        return None
    return (
        f"I-Con is untuned here: RKDO's best of {verdict.searched} configurations meets one "
        "I-Con default, so a difference may measure the search budget, not the objective "
        "(`baseline: {tune: true}` tunes I-Con as RKDO is)."
    )


def split_sentence(verdict: Verdict) -> str | None:
    """A warning when the verdict's numbers come from the split that selected its arms."""
    if verdict.context is None or verdict.context.on_test:
        return None
    return (
        f"These numbers come from the {verdict.context.split} split, on which the search "
        "chose these configurations, and the confirmation stage that scores them on the test "
        "split has not finished: they select, they do not estimate. No floors gate them "
        "(the floors are test-split numbers)."
    )


def headline(verdict: Verdict, *, metric: str) -> str:
    """The one-line verdict on the primary endpoint, else on `metric` (the monitored one)."""
    if verdict.primary is not None:
        return row_sentence(verdict, verdict.primary)
    for row in verdict.rows:
        if row.metric == metric:
            return row_sentence(verdict, row)
    if verdict.rows:
        return row_sentence(verdict, verdict.rows[0])
    return (
        f"RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label}: no shared seeds to compare"
        f"{_where(verdict)}"
    )


def loss_sentence(verdict: Verdict) -> str | None:
    """The paper's "≈30% lower loss", marked as not comparable."""
    if verdict.loss is None:
        return None
    row = verdict.loss
    change = (
        100 * (row.rkdo_mean - row.icon_mean) / abs(row.icon_mean)
        if math.isfinite(row.icon_mean) and row.icon_mean
        else math.nan
    )
    direction = "lower" if change < 0 else "higher"
    return (
        f"Not comparable: raw training loss, RKDO {row.rkdo_mean:.4f} vs I-Con "
        f"{row.icon_mean:.4f} (RKDO's {abs(change):.1f}% {direction}; the paper claims ≈30% "
        "lower). The two losses are different functions (RKDO sums d levels), so this says "
        "nothing about which representation is better."
    )


def verdict_lines(verdict: Verdict) -> list[str]:
    """The verdict as plain lines: the family, one sentence per metric, the loss aside."""
    primary = verdict.primary
    family = f"Holm over the {verdict.family_size} metrics of the '{verdict.family}' family"
    if primary is not None:
        label = m.LABEL_OF.get(primary.metric, primary.metric)
        family = (
            f"primary endpoint: {label} at the final budget, judged alone against the margin "
            f"δ = {primary.margin:g}; the other metrics are secondary, {family}"
        )
    lines = [
        f"Verdict: RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label}{_where(verdict)}, "
        f"Δ = RKDO − I-Con with 95% CI over {len(verdict.seeds)} {verdict.stage} seeds "
        f"({', '.join(map(str, verdict.seeds))}); {family}.",
    ]
    notes = (floors_sentence(verdict), split_sentence(verdict), budget_sentence(verdict))
    lines += [text for text in notes if text]
    if verdict.pairs < MIN_TEST_PAIRS:
        lines.append(
            f"Too few seeds for a test: {verdict.pairs} pairs, {MIN_TEST_PAIRS} needed. "
            "Only the differences and intervals are shown."
        )
    lines += [f"- {row_sentence(verdict, row)}" for row in verdict.rows]
    lines += [f"- {text}" for text in (power_sentence(verdict),) if text]
    loss = loss_sentence(verdict)
    if loss:
        lines.append(f"- {loss}")
    return lines
