"""Steps-to-target as survival data: Kaplan–Meier medians, the paired step ratio, the claim.

Pure functions over numbers (numpy; scipy for the bootstrap), no I/O. A seed run is
one observation: the steps it needed to reach a target (an *event*), or, when it never
did, its budget (*right-censored*: it needed more, if it ever gets there).

- **Kaplan–Meier** survival S(t) = P(steps > t), with Greenwood's variance and the
  log(-log) ("exponential Greenwood") pointwise interval, as lifelines and R's
  survival package report it. The **median** is the first time with S(t) <= 0.5
  (lifelines' rule); its interval (Brookmeyer–Crowley) runs from the first time the
  lower band falls to 0.5 or below to the first time the upper band does: inf when
  the upper band never gets there (few seeds, or many censored).
- **Paired ratio** of RKDO's steps to I-Con's over matched seeds (a pair shares a
  seed): the geometric mean of the per-seed ratios, exp(mean log ratio), with a
  percentile bootstrap 95% CI on the mean log ratio (seeded). A censored seed enters
  with its budget, so its ratio is a bound: `claim_verdict` only draws a conclusion
  that the bound cannot overturn. With n pairs the bootstrap has only C(2n-1, n)
  distinct resamples (10 for 3 seeds, 126 for 5): the interval is coarse.
- **The claim**: the paper's "60-80% fewer resources" is a ratio in 0.2-0.4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
CLAIMED_RATIO = (0.2, 0.4)  # RKDO / I-Con steps: the paper's "60-80% fewer resources"
SUPPORTED, CONTRADICTED, UNDETERMINED = "supported", "contradicted", "undetermined"
CLAIM_RULE = (
    "supported when the whole 95% CI of the RKDO / I-Con step ratio lies at or below "
    f"{CLAIMED_RATIO[1]} (at least the claimed {100 * (1 - CLAIMED_RATIO[1]):.0f}% saving) "
    "and no RKDO seed is censored; contradicted when the whole CI lies above "
    f"{CLAIMED_RATIO[1]} and no I-Con seed is censored; undetermined otherwise "
    "(a censored seed enters with its budget, so its ratio is only a bound)"
)

# One seed run's steps to the target, and whether that is its budget (censored).
Observation = tuple[float, bool]


@dataclass(frozen=True)
class SurvivalCurve:
    """S(t) just after each distinct event time, all (K,): Kaplan–Meier with its band."""

    times: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def kaplan_meier(
    durations: np.ndarray, observed: np.ndarray, *, confidence: float = CONFIDENCE
) -> SurvivalCurve:
    """The Kaplan–Meier estimate of durations (N,) with observed (N,) events (False = censored).

    At an event time S = 1 has band [1, 1]; S = 0 has band [0, 1] (Greenwood's variance
    is infinite there), so a median interval never ends on a time the data cannot bound.
    """
    from scipy import stats

    t = np.asarray(durations, dtype=float)
    d = np.asarray(observed, dtype=bool)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError(f"durations and observed must be (N,) alike, got {t.shape}, {d.shape}")
    times = np.unique(t[d])
    at_risk = np.array([(t >= u).sum() for u in times], dtype=float)
    events = np.array([(d & (t == u)).sum() for u in times], dtype=float)
    survival = np.cumprod(1 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        log_s = np.log(survival)
        sigma = np.sqrt(greenwood) / np.abs(log_s)
        z = stats.norm.ppf(0.5 + confidence / 2)
        lower = survival ** np.exp(z * sigma)
        upper = survival ** np.exp(-z * sigma)
    whole = survival >= 1.0
    lower[whole], upper[whole] = 1.0, 1.0
    empty = survival <= 0.0
    lower[empty], upper[empty] = 0.0, 1.0
    return SurvivalCurve(times, at_risk, events, survival, lower, upper)


@dataclass(frozen=True)
class MedianSteps:
    """The Kaplan–Meier median and its interval; NaN median when S never falls to 0.5."""

    median: float
    lo: float
    hi: float  # inf when the upper band never falls to 0.5
    n: int
    reached: int  # observed events (seeds that reached the target)


def _first_time_at_or_below(times: np.ndarray, curve: np.ndarray, level: float) -> float:
    hits = np.flatnonzero(curve <= level)
    return float(times[hits[0]]) if hits.size else math.inf


def km_median(
    durations: np.ndarray, observed: np.ndarray, *, confidence: float = CONFIDENCE
) -> MedianSteps:
    """Median steps to the target under censoring (durations, observed: (N,))."""
    observed = np.asarray(observed, dtype=bool)
    n, reached = int(observed.size), int(observed.sum())
    if reached == 0:  # nothing to estimate from: every seed censored (or none at all)
        return MedianSteps(math.nan, math.nan, math.nan, n, 0)
    curve = kaplan_meier(durations, observed, confidence=confidence)
    median = _first_time_at_or_below(curve.times, curve.survival, 0.5)
    return MedianSteps(
        median=median if math.isfinite(median) else math.nan,
        lo=_first_time_at_or_below(curve.times, curve.lower, 0.5),
        hi=_first_time_at_or_below(curve.times, curve.upper, 0.5),
        n=n,
        reached=reached,
    )


@dataclass(frozen=True)
class StepRatio:
    """RKDO / I-Con steps over matched seeds: exp(mean log ratio) and its bootstrap CI."""

    ratio: float
    lo: float
    hi: float
    n: int  # matched seeds
    distinct_resamples: int  # C(2n-1, n): how coarse the bootstrap is
    rkdo_censored: int  # matched seeds whose RKDO run never reached the target
    icon_censored: int


def distinct_resamples(n: int) -> int:
    """How many different multisets a bootstrap of n values can draw: C(2n-1, n)."""
    return math.comb(2 * n - 1, n) if n > 0 else 0


def paired_step_ratio(
    rkdo: Mapping[int, Observation],
    icon: Mapping[int, Observation],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> StepRatio:
    """The paired ratio over the seeds both arms ran; the CI needs two pairs and some spread.

    `rkdo`, `icon`: {seed: (steps, censored)}. The percentile bootstrap of the mean log
    ratio is drawn from numpy's generator seeded with `seed`, so a report is reproducible.
    """
    from scipy import stats

    seeds = sorted(set(rkdo) & set(icon))
    n = len(seeds)
    censored = (sum(rkdo[s][1] for s in seeds), sum(icon[s][1] for s in seeds))
    if n == 0:
        return StepRatio(math.nan, math.nan, math.nan, 0, 0, *censored)
    logs = np.log([rkdo[s][0] for s in seeds]) - np.log([icon[s][0] for s in seeds])
    ratio = float(np.exp(logs.mean()))
    lo = hi = math.nan
    if n >= 2 and np.ptp(logs) == 0:  # every resample has the same mean
        lo = hi = ratio
    elif n >= 2:
        result = stats.bootstrap(
            (logs,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        lo = float(np.exp(result.confidence_interval.low))
        hi = float(np.exp(result.confidence_interval.high))
    return StepRatio(ratio, lo, hi, n, distinct_resamples(n), *censored)


@dataclass(frozen=True)
class ClaimVerdict:
    word: str  # SUPPORTED | CONTRADICTED | UNDETERMINED
    line: str  # the one line the report prints


def claim_verdict(
    estimate: StepRatio, *, claimed: tuple[float, float] = CLAIMED_RATIO
) -> ClaimVerdict:
    """The paper's step-ratio claim against the ratio's CI, by `CLAIM_RULE`."""
    low, high = claimed
    e = estimate
    shown = f"ratio {e.ratio:.2f}, 95% CI [{e.lo:.2f}, {e.hi:.2f}] over {e.n} matched seeds"
    claim = f"the claimed {low}-{high}"
    if not (math.isfinite(e.lo) and math.isfinite(e.hi)):
        why = "no interval (fewer than 2 matched seeds)" if e.n < 2 else "no finite interval"
        return ClaimVerdict(UNDETERMINED, f"{UNDETERMINED}: {why} to set against {claim}")
    if e.hi <= high and e.rkdo_censored == 0:
        beyond = f"; below {low}: a larger saving than claimed" if e.hi < low else ""
        return ClaimVerdict(SUPPORTED, f"{SUPPORTED}: {shown}, at or below {high}{beyond}")
    if e.lo > high and e.icon_censored == 0:
        return ClaimVerdict(CONTRADICTED, f"{CONTRADICTED}: {shown}, all above {claim}")
    if e.hi <= high or e.lo > high:  # the interval would decide, but a bound stands in it
        arm, count = ("RKDO", e.rkdo_censored) if e.hi <= high else ("I-Con", e.icon_censored)
        why = f"{count} {arm} seed(s) censored, so their ratios are only bounds"
    else:
        why = f"the interval straddles {high}"
    return ClaimVerdict(UNDETERMINED, f"{UNDETERMINED}: {shown}; {why}")
