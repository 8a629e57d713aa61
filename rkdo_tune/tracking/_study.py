"""The study's conclusions on the sweep run: arms, confirmation, ties with the best, verdict.

Written once, at the end of a sweep, from the outcome the sweep computed, so the
sweep's closing table, these tags and metrics, and `rkdo-tune report` agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rkdo_tune.sweep.protocol import SweepOutcome
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import MlflowClient, log_metrics, make_metric, set_tags
from rkdo_tune.verdict import headline


def _verdict_metrics(outcome: SweepOutcome) -> dict[str, float]:
    """verdict/<metric>/{delta,ci_lo,ci_hi,p,p_holm,n}: finite values only."""
    values: dict[str, float] = {}
    verdict = outcome.verdict
    if verdict is None:
        return values
    for row in verdict.rows:
        c = row.comparison
        fields = {
            "delta": c.delta,
            "ci_lo": c.lo,
            "ci_hi": c.hi,
            "p": c.p_t,
            "p_holm": row.p_holm,
            "n": float(c.n),
        }
        for name, value in fields.items():
            if math.isfinite(value):
                values[f"{lay.VERDICT_METRIC_PREFIX}{row.metric}/{name}"] = value
    return values


def record_study(
    client: MlflowClient,
    parent_run_id: str,
    outcome: SweepOutcome,
    *,
    run_ids: Mapping[str, str],
) -> None:
    """Tags and metrics on the sweep run, and the tie mark on each ranked trial run."""
    tags: dict[str, str] = {}
    if outcome.baseline is not None:
        tags[lay.TAG_BASELINE_TRIAL_ID] = outcome.baseline.trial_id
    confirmed = [t.role.confirms for t in outcome.confirmation if not t.role.is_baseline]
    if confirmed:
        tags[lay.TAG_CONFIRMED_TRIAL_IDS] = ",".join(confirmed)
    if outcome.verdict is not None:
        tags[lay.TAG_VERDICT] = headline(outcome.verdict, metric=outcome.metric)
    if tags:
        set_tags(client, parent_run_id, tags)
    metrics = _verdict_metrics(outcome)
    if metrics:
        log_metrics(client, parent_run_id, [make_metric(k, v, 0) for k, v in metrics.items()])
    for mark in outcome.ties:
        if mark.trial_id in run_ids:
            tied = "true" if mark.tied else "false"
            set_tags(client, run_ids[mark.trial_id], {lay.TAG_TIED_WITH_BEST: tied})
