"""The report's opening Verdict section and its closing list of Holm families, as Markdown lines."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.inference import MIN_WILCOXON_PAIRS
from rkdo_tune.report._families import CONFIRMED, VERDICT, HolmFamily, family
from rkdo_tune.report._markdown import interval, num, p_value, signed, table, winner_cell
from rkdo_tune.report._verdict import CONTROL_BASELINE, CONTROL_UNMATCHED, StudyVerdict
from rkdo_tune.verdict import (
    STAGE_CONFIRMATION,
    MetricVerdict,
    Verdict,
    headline,
    verdict_lines,
)

WINNERS_CURSE = (
    "the same seeds that selected this configuration, so the estimate is subject to the "
    "winner's curse (biased in RKDO's favour). Re-run it on fresh seeds (`confirm:` in the "
    "space, or `--confirm K`) for an unbiased one."
)


def _wilcoxon(row: MetricVerdict) -> str:
    if row.comparison.n < MIN_WILCOXON_PAIRS:
        return f"n/a (< {MIN_WILCOXON_PAIRS} pairs)"
    return p_value(row.comparison.p_wilcoxon)


def verdict_families(sv: StudyVerdict) -> list[HolmFamily]:
    """The verdict's Holm families: the verdict itself and the other confirmed configurations."""
    if sv.verdict is None:
        return []
    out = [family(VERDICT, [row.comparison.p_t for row in sv.verdict.rows])]
    if not sv.others.empty:
        out.append(family(CONFIRMED, sv.others["p_value"].tolist()))
    return out


def verdict_section(sv: StudyVerdict, *, metric: str) -> list[str]:
    """## Verdict: which trials, which seeds, the table, the sentences, the other confirmed."""
    lines = ["## Verdict", ""]
    lines += [f"> **Warning:** {text}" for text in sv.warnings]
    lines += [""] if sv.warnings else []
    if sv.verdict is None or sv.control is None or sv.rkdo is None:
        return [*lines, sv.missing]
    v = sv.verdict
    lines += [f"**{headline(v, metric=metric)}**", ""]
    lines += [_who(sv, metric=metric), "", _seeds_line(sv, v), ""]
    header = ["metric", "n", "RKDO", "I-Con", "Δ = RKDO − I-Con", "95% CI of Δ"]
    header += ["p (paired t)", "p (Wilcoxon)", "p_Holm", "better"]
    rows = [
        [
            m.LABEL_OF.get(row.metric, row.metric),
            str(row.comparison.n),
            num(row.rkdo_mean),
            num(row.icon_mean),
            signed(row.comparison.delta),
            interval(row.comparison.lo, row.comparison.hi),
            p_value(row.comparison.p_t),
            _wilcoxon(row),
            p_value(row.p_holm),
            row.winner or "—",
        ]
        for row in v.rows
    ]
    families = verdict_families(sv)
    lines += [table(header, rows), "", f"{families[0].label()}: {families[0].members}.", ""]
    lines += verdict_lines(v)
    return [*lines, "", *_others(sv, families, metric=metric)]


def _who(sv: StudyVerdict, *, metric: str) -> str:
    control = sv.control
    assert control is not None and sv.rkdo is not None  # checked by the caller
    label = sv.labels.get(sv.rkdo) or "no searched values"
    note = ""
    if control.kind == CONTROL_BASELINE:
        note = " (I-Con on the space's base settings, over the same seeds)"
    elif control.kind == CONTROL_UNMATCHED:
        note = " (other settings differ too, so a difference is not the objective's alone)"
    return (
        f"Best RKDO configuration: trial `{sv.rkdo}` ({label}), the search's best RKDO trial "
        f"by its final {metric} averaged over the seeds (ties to the smaller trial id). "
        f"Control: trial `{control.trial_id}`, {control.kind}{note}."
    )


def _seeds_line(sv: StudyVerdict, v: Verdict) -> str:
    seeds = ", ".join(map(str, v.seeds)) or "none shared"
    rkdo_run, control_run = sv.estimated_on or ("", "")
    control = sv.control.trial_id if sv.control else ""
    if v.stage == STAGE_CONFIRMATION:
        return (
            f"Estimated on fresh seeds (stage confirmation): confirmation trials `{rkdo_run}` "
            f"(re-runs `{sv.rkdo}`) and `{control_run}` (re-runs `{control}`), "
            f"seeds {seeds}, which the search did not use, so selecting the best on the "
            "search seeds cannot bias this estimate."
        )
    return f"Estimated on the search seeds {seeds} (stage search): {WINNERS_CURSE}"


def _others(sv: StudyVerdict, families: Sequence[HolmFamily], *, metric: str) -> list[str]:
    if sv.others.empty or sv.control is None:
        return []
    title = f"### Other confirmed configurations vs {sv.control.label}"
    fam = families[1]
    intro = (
        f"{fam.label()}: {fam.members}. Δ = configuration − control on {metric}; 'better' "
        "names a winner only where p_Holm < 0.05."
    )
    header = ["configuration", "trial", "re-run", "n", "RKDO", "I-Con", "Δ", "95% CI of Δ"]
    header += ["p (paired t)", "p_Holm", "better"]
    rows = [_other_row(sv, r) for _, r in sv.others.iterrows()]
    return [title, "", intro, "", table(header, rows), ""]


def _other_row(sv: StudyVerdict, r: pd.Series) -> list[str]:
    return [
        sv.labels.get(r["trial_id"]) or "—",
        r["trial_id"],
        r["confirmation_trial"],
        str(r["n"]),
        num(r["rkdo_mean"]),
        num(r["icon_mean"]),
        signed(r["delta"]),
        interval(r["ci_lo"], r["ci_hi"]),
        p_value(r["p_value"]),
        p_value(r["p_holm"]),
        winner_cell(r["better"]),
    ]


def families_section(families: Sequence[HolmFamily]) -> list[str]:
    """## Multiple comparisons: each Holm family, its size and what one test of it is."""
    lines = [
        "## Multiple comparisons",
        "",
        "Every p-value above belongs to one Holm family, adjusted together so that the chance "
        "of any false 'better' or 'distinguishable' in a family stays at most α = 0.05. A "
        "family's size counts its tests with a p-value (below 3 seed pairs there is no test).",
        "",
    ]
    if not families:
        return [*lines, "No test was made."]
    rows = [[f.name, str(f.size), f.members] for f in families]
    return [*lines, table(["family", "tests", "one test is"], rows)]
