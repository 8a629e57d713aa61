"""verdict.csv: every verdict of a sweep at full precision, one row per (comparison, metric)."""

from __future__ import annotations

import math

import pandas as pd

from rkdo_tune.config import SPLIT_TEST
from rkdo_tune.report._verdict import StudyVerdict
from rkdo_tune.verdict import Verdict

TUNED, DEFAULTS = "tuned against tuned", "default against default"


def verdict_frame(sv: StudyVerdict) -> pd.DataFrame:
    """The verdict, then (I-Con tuned) default against default, each metric a row with the
    loss row last (no p_holm); `comparison` names which (empty without a tuned baseline)."""
    if sv.verdict is None or sv.estimated_on is None:
        return pd.DataFrame()
    tuned = sv.defaults is not None
    rows = _rows(sv.verdict, sv.estimated_on, comparison=TUNED if tuned else "")
    if sv.defaults is not None and sv.defaults_on is not None:
        rows += _rows(sv.defaults, sv.defaults_on, comparison=DEFAULTS)
    return pd.DataFrame(rows)


def _rows(v: Verdict, trials: tuple[str, str], *, comparison: str) -> list[dict[str, object]]:
    compared = [*v.rows, *([v.loss] if v.loss else [])]
    return [
        {
            "comparison": comparison,
            "metric": row.metric,
            "stage": v.stage,
            "rkdo_trial": trials[0],
            "control_trial": trials[1],
            "n": row.comparison.n,
            "rkdo_mean": row.rkdo_mean,
            "icon_mean": row.icon_mean,
            "delta": row.comparison.delta,
            "ci_lo": row.comparison.lo,
            "ci_hi": row.comparison.hi,
            "p_value": row.comparison.p_t,
            "p_wilcoxon": row.comparison.p_wilcoxon,
            "p_holm": row.p_holm,
            "better": row.winner if index < len(v.rows) else None,
            "endpoint": "primary" if row.primary else "secondary",
            "margin": row.margin,
            "p_tost": row.p_tost,
            "outcome": row.outcome,
            "floor_gate": v.gates[row.metric].state if row.metric in v.gates else None,
            "sd_delta": row.comparison.sd,
            "mde_80": row.mde if row.primary else math.nan,
            "seeds_for_margin": row.seeds_for_margin if row.primary else None,
            "split": v.context.split if v.context is not None else SPLIT_TEST,
        }
        for index, row in enumerate(compared)
    ]
