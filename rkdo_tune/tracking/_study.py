"""The study's conclusions on the sweep run: arms, confirmation, ties with the best, verdict;
and on each trial run its rank (`rkdo.rank`) and the best trial's mark (`rkdo.best`).

Written once, at the end of a sweep, from the outcome the sweep computed, so the
sweep's closing table, these tags and metrics, and `rkdo-tune report` agree. The
sweep run's description (`mlflow.note.content`) holds the verdict and the UI links.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rkdo_tune.sweep.protocol import SweepOutcome
from rkdo_tune.tracking import layout as lay
from rkdo_tune.tracking._client import MlflowClient, log_metrics, make_metric, set_tags
from rkdo_tune.tracking.links import RunsLink, note_markdown
from rkdo_tune.verdict import Verdict, headline


def rank_tags(outcome: SweepOutcome) -> dict[str, str]:
    """{trial id: rkdo.rank} of every trial: the position in `SweepOutcome.ranked`, zero-padded;
    a confirmation re-run takes its search trial's; the baseline and unranked trials a word."""
    ranked = outcome.ranked()
    width = max(lay.RANK_MIN_WIDTH, len(str(len(ranked))))
    rank_of = {t.trial_id: f"{i:0{width}d}" for i, t in enumerate(ranked, start=1)}
    ranks = {}
    for trial in (*outcome.trials, *outcome.confirmation):
        if trial.role.is_baseline:
            ranks[trial.trial_id] = lay.RANK_BASELINE
        else:
            ranks[trial.trial_id] = rank_of.get(
                trial.role.confirms or trial.trial_id, lay.RANK_NONE
            )
    return ranks


def record_ranks(
    client: MlflowClient, outcome: SweepOutcome, *, run_ids: Mapping[str, str]
) -> None:
    """rkdo.rank on every trial run in `run_ids`, and rkdo.best on the best one."""
    ranked = outcome.ranked()
    best = ranked[0].trial_id if ranked else None
    for trial_id, rank in rank_tags(outcome).items():
        if trial_id in run_ids:
            tags = {lay.TAG_RANK: rank, **({lay.TAG_BEST: "true"} if trial_id == best else {})}
            set_tags(client, run_ids[trial_id], tags)


def _verdict_metrics(verdict: Verdict | None, *, prefix: str) -> dict[str, float]:
    """<prefix><metric>/{delta,ci_lo,ci_hi,p,p_holm,n}: finite values only."""
    values: dict[str, float] = {}
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
                values[f"{prefix}{row.metric}/{name}"] = value
    return values


def record_study(
    client: MlflowClient,
    parent_run_id: str,
    outcome: SweepOutcome,
    *,
    run_ids: Mapping[str, str],
    links: Sequence[RunsLink] = (),
) -> None:
    """Tags, metrics and description on the sweep run, the tie mark on each ranked trial run."""
    tags: dict[str, str] = {}
    if outcome.baseline is not None:
        tags[lay.TAG_BASELINE_TRIAL_ID] = outcome.baseline.trial_id
    confirmed = [t.role.confirms for t in outcome.confirmation if not t.role.is_baseline]
    if confirmed:
        tags[lay.TAG_CONFIRMED_TRIAL_IDS] = ",".join(confirmed)
    if outcome.reference is not None:
        tags[lay.TAG_BASELINE_TUNED] = "true"
    if outcome.defaults_verdict is not None:
        tags[lay.TAG_DEFAULTS_VERDICT] = headline(outcome.defaults_verdict, metric=outcome.metric)
    if outcome.verdict is not None:
        tags[lay.TAG_VERDICT] = headline(outcome.verdict, metric=outcome.metric)
        primary = outcome.verdict.primary
        if primary is not None:
            tags |= {lay.TAG_PRIMARY_METRIC: primary.metric, lay.TAG_MARGIN: repr(primary.margin)}
    note = note_markdown(tags.get(lay.TAG_VERDICT, ""), list(links))
    if note:
        tags[lay.TAG_NOTE] = note
    if tags:
        set_tags(client, parent_run_id, tags)
    metrics = _verdict_metrics(outcome.verdict, prefix=lay.VERDICT_METRIC_PREFIX)
    defaults = outcome.defaults_verdict
    metrics |= _verdict_metrics(defaults, prefix=lay.DEFAULTS_VERDICT_METRIC_PREFIX)
    if metrics:
        log_metrics(client, parent_run_id, [make_metric(k, v, 0) for k, v in metrics.items()])
    for mark in outcome.ties:
        if mark.trial_id in run_ids:
            tied = "true" if mark.tied else "false"
            set_tags(client, run_ids[mark.trial_id], {lay.TAG_TIED_WITH_BEST: tied})
