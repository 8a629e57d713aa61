"""The RKDO / I-Con step ratio at each shown target, and the one-line verdict on the claim.

The pair compared is the verdict's (`StudyVerdict.pair`: the best RKDO configuration
and its I-Con control) on the search seeds, matched by seed. `survival` does the
statistics; this module picks the seed runs and assembles the tables. `ToTarget` is
everything the compute-to-target section shows, built once by `compute_to_target`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rkdo_tune.report._stats import ICON, RKDO
from rkdo_tune.report._targets import (
    Target,
    compute_to_target_by_objective,
    compute_to_target_by_trial,
    observations,
    shown_targets,
    target_reached,
)
from rkdo_tune.survival import (
    BOOTSTRAP_SEED,
    UNDETERMINED,
    ClaimVerdict,
    claim_verdict,
    paired_step_ratio,
)

NO_PAIR = f"{UNDETERMINED}: no RKDO configuration and I-Con control to pair (the verdict has none)"


@dataclass(frozen=True)
class ToTarget:
    """The compute-to-target section: the target, per-seed reach, the tables, the claim."""

    target: Target
    per_seed: pd.DataFrame  # `target_reached` at the headline target
    by_objective: pd.DataFrame
    by_trial: pd.DataFrame
    ratios: pd.DataFrame  # one row per shown target, the headline first
    claim: ClaimVerdict
    pair: tuple[str, str] | None


def compute_to_target(
    seeds: pd.DataFrame,
    history: pd.DataFrame,
    *,
    target: Target,
    metric: str,
    mode: str,
    pair: tuple[str, str] | None,
    seed: int = BOOTSTRAP_SEED,
) -> ToTarget:
    """Every compute-to-target table of `seeds` (the search stage) under `target`."""
    reached = target_reached(seeds, history, metric=metric, target=target.value, mode=mode)
    best = dict(zip((RKDO, ICON), pair, strict=True)) if pair else {}
    ratios = step_ratios(
        seeds, history, metric=metric, mode=mode, pair=pair, target=target, seed=seed
    )
    claim = ClaimVerdict(UNDETERMINED, NO_PAIR)
    if not ratios.empty:
        first = ratios.iloc[0]
        claim = ClaimVerdict(first["verdict"], first["verdict_line"])
    return ToTarget(
        target=target,
        per_seed=reached,
        by_objective=compute_to_target_by_objective(reached, best=best),
        by_trial=compute_to_target_by_trial(reached),
        ratios=ratios,
        claim=claim,
        pair=pair,
    )


def step_ratios(
    seeds: pd.DataFrame,
    history: pd.DataFrame,
    *,
    metric: str,
    mode: str,
    pair: tuple[str, str] | None,
    target: Target,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """One row per shown target: reached counts, the paired ratio, its CI and the verdict."""
    if pair is None:
        return pd.DataFrame()
    chosen = seeds[seeds["trial_id"].isin(pair)]
    rows = []
    for fraction, value in shown_targets(target, mode=mode):
        reached = target_reached(chosen, history, metric=metric, target=value, mode=mode)
        rkdo, icon = observations(reached, pair[0]), observations(reached, pair[1])
        estimate = paired_step_ratio(rkdo, icon, seed=seed)
        verdict = claim_verdict(estimate)
        rows.append(
            {
                "target": value,
                "fraction": fraction,
                "rkdo_trial": pair[0],
                "icon_trial": pair[1],
                "n": estimate.n,
                "rkdo_reached": sum(not c for _, c in rkdo.values()),
                "icon_reached": sum(not c for _, c in icon.values()),
                "ratio": estimate.ratio,
                "ci_lo": estimate.lo,
                "ci_hi": estimate.hi,
                "saving_pct": 100 * (1 - estimate.ratio),
                "distinct_resamples": estimate.distinct_resamples,
                "rkdo_censored": estimate.rkdo_censored,
                "icon_censored": estimate.icon_censored,
                "verdict": verdict.word,
                "verdict_line": verdict.line,
            }
        )
    return pd.DataFrame(rows)
