"""The verdict of a study: the best RKDO configuration against the I-Con baseline.

Pure: it takes each arm's per-seed final values and returns numbers and
sentences, so the sweep's closing table, its MLflow run and the report all
print the same verdict. The comparison family (one Holm adjustment) is every
metric of `metrics.VERDICT_METRICS`; the raw training loss is shown beside it,
marked as not comparable (the two objectives are different functions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rkdo_tune import metrics as m
from rkdo_tune.inference import (
    ALPHA_LEVEL,
    MIN_TEST_PAIRS,
    PairedComparison,
    family_size,
    holm,
    paired,
)

# Values of one arm: metric -> {seed: final value}.
PerSeed = Mapping[str, Mapping[int, float]]

FAMILY = "verdict"  # the Holm family: every metric of VERDICT_METRICS, one test each
# The arms of a study: configurations the search proposed, and the I-Con control arm.
ARM_SEARCH, ARM_BASELINE = "search", "baseline"
ARMS = (ARM_SEARCH, ARM_BASELINE)
# Its stages: the search (selection) and the re-run of the top configurations on fresh seeds.
STAGE_SEARCH, STAGE_CONFIRMATION = "search", "confirmation"
STAGES = (STAGE_SEARCH, STAGE_CONFIRMATION)
PARAM_SYMBOLS = {"alpha": "α", "depth": "d", "tau": "τ0", "beta": "β", "alpha_schedule": "α sched"}


def config_label(params: Mapping[str, object]) -> str:
    """'α = 0.304, d = 3' from a configuration's searched values (3 significant digits)."""
    parts = []
    for name, value in params.items():
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{PARAM_SYMBOLS.get(name, name)} = {shown}")
    return ", ".join(parts)


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    comparison: PairedComparison
    p_holm: float
    rkdo_mean: float
    icon_mean: float

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

    @property
    def family_size(self) -> int:
        return family_size([row.p_holm for row in self.rows])

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


def build_verdict(
    rkdo: PerSeed,
    icon: PerSeed,
    *,
    rkdo_label: str,
    baseline_label: str = "I-Con baseline",
    stage: str = STAGE_SEARCH,
    metrics: Sequence[str] = m.VERDICT_METRICS,
) -> Verdict:
    """Paired comparisons over the seeds both arms share, one Holm family over `metrics`."""
    present = [name for name in metrics if rkdo.get(name) and icon.get(name)]
    compared = [_compare(name, rkdo, icon) for name in present]
    adjusted = holm([c.p_t for c, _, _ in compared])
    rows = tuple(
        MetricVerdict(name, c, p, ma, mb)
        for name, (c, ma, mb), p in zip(present, compared, adjusted, strict=True)
    )
    loss = None
    if rkdo.get(m.TRAIN_EPOCH_LOSS) and icon.get(m.TRAIN_EPOCH_LOSS):
        c, ma, mb = _compare(m.TRAIN_EPOCH_LOSS, rkdo, icon)
        loss = MetricVerdict(m.TRAIN_EPOCH_LOSS, c, math.nan, ma, mb)
    seeds = sorted(set().union(*(set(rkdo.get(n, {})) & set(icon.get(n, {})) for n in present)))
    return Verdict(rkdo_label, baseline_label, stage, tuple(seeds), rows, loss)


def _num(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:+.3f}"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2g}"


def _seeds_phrase(verdict: Verdict, n: int) -> str:
    kind = "fresh seeds" if verdict.stage == STAGE_CONFIRMATION else "search seeds"
    return f"{n} {kind}"


def row_sentence(verdict: Verdict, row: MetricVerdict) -> str:
    """'RKDO (α = 0.3) vs I-Con on the linear probe: -0.006 [-0.031, +0.019], not ...'."""
    c = row.comparison
    head = (
        f"RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label} on "
        f"{m.LABEL_OF.get(row.metric, row.metric)}: {_num(c.delta)} [{_num(c.lo)}, {_num(c.hi)}]"
    )
    if c.n < MIN_TEST_PAIRS:
        return f"{head}, too few seeds for a test ({c.n} pairs, {MIN_TEST_PAIRS} needed)"
    if not c.testable:
        return f"{head}, no test: the same difference on every seed ({c.n} pairs)"
    winner = row.winner
    outcome = f"{winner} better" if winner else "not distinguishable"
    return f"{head}, {outcome} (p_Holm = {_p(row.p_holm)}, {_seeds_phrase(verdict, c.n)})"


def headline(verdict: Verdict, *, metric: str) -> str:
    """The one-line verdict on `metric` (the study's monitored metric when compared)."""
    for row in verdict.rows:
        if row.metric == metric:
            return row_sentence(verdict, row)
    if verdict.rows:
        return row_sentence(verdict, verdict.rows[0])
    return f"RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label}: no shared seeds to compare"


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
    lines = [
        f"Verdict: RKDO ({verdict.rkdo_label}) vs {verdict.baseline_label}, "
        f"Δ = RKDO − I-Con with 95% CI over {len(verdict.seeds)} {verdict.stage} seeds "
        f"({', '.join(map(str, verdict.seeds))}); Holm over the {verdict.family_size} "
        f"metrics of the '{FAMILY}' family.",
    ]
    if verdict.pairs < MIN_TEST_PAIRS:
        lines.append(
            f"Too few seeds for a test: {verdict.pairs} pairs, {MIN_TEST_PAIRS} needed. "
            "Only the differences and intervals are shown."
        )
    lines += [f"- {row_sentence(verdict, row)}" for row in verdict.rows]
    loss = loss_sentence(verdict)
    if loss:
        lines.append(f"- {loss}")
    return lines
