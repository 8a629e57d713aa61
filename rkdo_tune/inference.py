"""Statistics for comparing configurations over matched seeds: pure functions, no I/O.

One definition each, used by the sweep's closing table, the sweep run's tags and
the report alike:
- **best**: the highest (mode "max") or lowest final seed-mean of the metric; a
  tie is broken by the earlier trial (smaller trial id: Tune numbers its trials
  in creation order, so this is also Optuna's order and MLflow's start-time order);
- **confidence interval** of a mean: Student's t over the seeds (95% by default);
- **paired comparison**: two arms' values on the same seeds, as the difference
  a - b, its t-based CI and paired-t p-value (`scipy.stats.ttest_rel`), with a
  Wilcoxon signed-rank p only from `MIN_WILCOXON_PAIRS` pairs on (below that its
  smallest possible two-sided p is over 0.05, so it can never reject);
- **Holm's step-down adjustment** over one family of tests. Each family is
  named where it is built, and its size is printed beside its results.

Nothing here needs more than 3 pairs to run; with fewer, p-values are NaN and
callers say "too few seeds" instead of printing them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA_LEVEL = 0.05  # the family-wise error rate every Holm family is held to
MIN_TEST_PAIRS = 3  # below this a paired test has one or no degree of freedom to speak of
MIN_WILCOXON_PAIRS = 6  # smallest n whose exact two-sided Wilcoxon p can fall below 0.05


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval; lo/hi are NaN with fewer than two values."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


@dataclass(frozen=True)
class PairedComparison:
    """a - b over matched seeds: the mean difference, its CI and the tests' p-values."""

    delta: float
    lo: float
    hi: float
    n: int
    p_t: float
    p_wilcoxon: float  # NaN below MIN_WILCOXON_PAIRS pairs
    sd: float = math.nan  # sample std (ddof 1) of the differences; NaN below 2 pairs

    @property
    def testable(self) -> bool:
        return self.n >= MIN_TEST_PAIRS and math.isfinite(self.p_t)


def finite(values: Sequence[float]) -> np.ndarray:
    """The finite values, as a float array."""
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def mean_ci(values: Sequence[float], *, confidence: float = CONFIDENCE) -> Interval:
    """Mean of the finite values with a t-based CI over them (NaN bounds for n < 2)."""
    array = finite(values)
    if array.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if array.size < 2:
        return Interval(mean, math.nan, math.nan, 1)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: a zero-width CI
        test = stats.ttest_1samp(array, popmean=0.0)
    ci = test.confidence_interval(confidence_level=confidence)
    return Interval(mean, float(ci.low), float(ci.high), int(array.size))


def paired(
    a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE
) -> PairedComparison:
    """Compare a and b, matched by position (the same seed); pairs with a NaN are dropped."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        return PairedComparison(math.nan, math.nan, math.nan, 0, math.nan, math.nan)
    delta = float((x - y).mean())
    if n < 2:
        return PairedComparison(delta, math.nan, math.nan, n, math.nan, math.nan)
    from scipy import stats

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant differences
        test = stats.ttest_rel(x, y)
    ci = test.confidence_interval(confidence_level=confidence)
    p_t = float(test.pvalue)
    diff = x - y
    if np.all(x == y):  # identical arms: scipy's 0/0 is "no difference at all"
        p_t = 1.0
    elif float(np.ptp(diff)) <= 1e-12 * max(1.0, abs(delta)):
        # The same nonzero difference on every seed (one test image, say): t is infinite and
        # p is 0, but a spread of zero is an artefact of discrete scores, not evidence.
        p_t = math.nan
    p_t = p_t if n >= MIN_TEST_PAIRS else math.nan
    p_w = math.nan
    if n >= MIN_WILCOXON_PAIRS:
        p_w = 1.0 if np.all(x == y) else float(stats.wilcoxon(x, y).pvalue)
    sd = float((x - y).std(ddof=1))
    return PairedComparison(delta, float(ci.low), float(ci.high), n, p_t, p_w, sd)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order; NaN stays NaN, not counted.

    Sort the m finite p ascending; the i-th (from 0) gets (m - i) * p, made
    non-decreasing along the order and capped at 1.
    """
    values = [float(p) for p in pvalues]
    order = sorted((p, i) for i, p in enumerate(values) if math.isfinite(p))
    m = len(order)
    adjusted = [math.nan] * len(values)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def family_size(pvalues: Sequence[float]) -> int:
    """How many tests a Holm family holds (its finite p-values)."""
    return sum(math.isfinite(float(p)) for p in pvalues)


def best_index(means: Sequence[float], trial_ids: Sequence[str], *, mode: str) -> int | None:
    """Index of the best finite mean; ties go to the smaller trial id. None if none is finite."""
    sign = -1.0 if mode == "max" else 1.0
    candidates = [
        (sign * float(mean), str(trial_id), i)
        for i, (mean, trial_id) in enumerate(zip(means, trial_ids, strict=True))
        if math.isfinite(float(mean))
    ]
    return min(candidates)[2] if candidates else None


def rank_order(means: Sequence[float], trial_ids: Sequence[str], *, mode: str) -> list[int]:
    """Indices best first under the one definition of best; non-finite means last."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(
        range(len(means)),
        key=lambda i: (
            not math.isfinite(float(means[i])),
            sign * float(means[i]) if math.isfinite(float(means[i])) else 0.0,
            str(trial_ids[i]),
        ),
    )


@dataclass(frozen=True)
class TieMark:
    """One configuration against the best: paired test over shared seeds, Holm-adjusted."""

    trial_id: str
    comparison: PairedComparison | None  # None for the best itself
    p_holm: float
    tied: bool  # not distinguishable from the best at ALPHA_LEVEL (the best is tied with itself)


def mark_ties(
    per_seed: Mapping[str, Mapping[int, float]], *, best: str, alpha: float = ALPHA_LEVEL
) -> list[TieMark]:
    """Is each configuration distinguishable from `best`? One Holm family over the others.

    `per_seed` maps trial id -> {seed: value}. Each comparison uses the seeds it
    shares with the best. A configuration with too few shared seeds for a test
    counts as tied: nothing shows that it differs.
    """
    reference = per_seed[best]
    others = [trial_id for trial_id in per_seed if trial_id != best]
    comparisons = []
    for trial_id in others:
        seeds = sorted(set(reference) & set(per_seed[trial_id]))
        comparisons.append(
            paired([reference[s] for s in seeds], [per_seed[trial_id][s] for s in seeds])
        )
    adjusted = holm([c.p_t for c in comparisons])
    marks = [TieMark(best, None, math.nan, True)]
    for trial_id, comparison, p in zip(others, comparisons, adjusted, strict=True):
        tied = not (math.isfinite(p) and p < alpha)
        marks.append(TieMark(trial_id, comparison, p, tied))
    return marks


def tie_sentence(marks: Sequence[TieMark], *, alpha: float = ALPHA_LEVEL) -> str:
    """'8 of 10 configurations are statistically tied with the best at α = 0.05 (Holm, 9 tests)'."""
    tied = sum(mark.tied for mark in marks)
    tests = family_size([mark.p_holm for mark in marks])
    return (
        f"{tied} of {len(marks)} configurations are statistically tied with the best "
        f"at α = {alpha:g} (paired t over shared seeds, Holm over {tests} tests)"
    )


# --- equivalence, non-inferiority and power -------------------------------------------
POWER = 0.8  # the power a minimum detectable effect and a seed count are stated at
MAX_PLANNED_SEEDS = 1000  # `seeds_needed` gives up beyond this many


def paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """a - b by position, pairs with a NaN dropped, as a float array."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep] - y[keep]


def tost_p(differences: Sequence[float], margin: float) -> float:
    """Two one-sided paired t-tests of |mean difference| < margin: the larger p (Schuirmann).

    H0: Δ <= -margin or Δ >= +margin. Equivalence at level α when the p is below
    α, which is when the (1 - 2α) CI lies inside (-margin, +margin). NaN below
    MIN_TEST_PAIRS pairs; a zero spread gives 0 inside the margin and 1 outside.
    """
    d = finite(differences)
    n = d.size
    if n < MIN_TEST_PAIRS or not margin > 0:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return 0.0 if abs(mean) < margin else 1.0
    from scipy import stats

    se = sd / math.sqrt(n)
    p_lower = float(stats.t.sf((mean + margin) / se, n - 1))  # H0: Δ <= -margin
    p_upper = float(stats.t.cdf((mean - margin) / se, n - 1))  # H0: Δ >= +margin
    return max(p_lower, p_upper)


def paired_power(
    effect: float, sd: float, n: int, *, alpha: float = ALPHA_LEVEL, sided: int = 2
) -> float:
    """Power of the paired t-test (n pairs, spread sd of the differences) against `effect`.

    The exact noncentral-t power, as statsmodels' TTestPower: two-sided (sided=2)
    or one-sided in the effect's direction (sided=1, level alpha on that side).
    """
    if n < 2 or not sd > 0:
        return math.nan
    from scipy import stats

    df, nc = n - 1, abs(effect) / (sd / math.sqrt(n))
    crit = float(stats.t.ppf(1 - alpha / sided, df))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        power = float(stats.nct.sf(crit, df, nc))
        if sided == 2:
            power += float(stats.nct.cdf(-crit, df, nc))
    if not math.isfinite(power):  # nct's tails fail far out: the test surely rejects or not
        return 1.0 if nc > crit else 0.0
    return min(power, 1.0)


def min_detectable_effect(
    sd: float, n: int, *, power: float = POWER, alpha: float = ALPHA_LEVEL
) -> float:
    """The smallest |Δ| the two-sided paired t-test detects with `power`, at n pairs."""
    if n < 2 or not sd > 0 or not math.isfinite(sd):
        return math.nan
    from scipy.optimize import brentq

    high = sd
    while paired_power(high, sd, n, alpha=alpha) < power:
        high *= 2
    try:
        return float(brentq(lambda e: paired_power(e, sd, n, alpha=alpha) - power, 0.0, high))
    except ValueError:  # no sign change found numerically
        return math.nan


def seeds_needed(
    sd: float, margin: float, *, power: float = POWER, alpha: float = ALPHA_LEVEL
) -> int | None:
    """Seeds (pairs) to show non-inferiority at `margin` with `power` if the true Δ is 0.

    The one-sided test at level alpha / 2 (the lower end of the 95% CI above
    -margin). At least MIN_TEST_PAIRS; None beyond MAX_PLANNED_SEEDS or without a spread.
    """
    if not sd > 0 or not margin > 0 or not math.isfinite(sd):
        return None
    for n in range(MIN_TEST_PAIRS, MAX_PLANNED_SEEDS + 1):
        if paired_power(margin, sd, n, alpha=alpha / 2, sided=1) >= power:
            return n
    return None


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on n independent images: sqrt(p(1-p)/n)."""
    if n < 1 or not math.isfinite(accuracy):
        return math.nan
    p = min(max(accuracy, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n)
