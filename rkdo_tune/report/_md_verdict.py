"""The report's opening Verdict section and its closing list of Holm families, as Markdown lines."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rkdo_tune import metrics as m
from rkdo_tune.floors import reference_rows
from rkdo_tune.inference import MIN_WILCOXON_PAIRS
from rkdo_tune.judgement import RULES, metric_heading
from rkdo_tune.report._families import CONFIRMED, DEFAULTS, VERDICT, HolmFamily, family
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


def _outcome_cell(v: Verdict, row: MetricVerdict) -> str:
    """The margin outcome (primary), 'no claim' where the floors gate holds, else '—'."""
    gate = v.gates.get(row.metric)
    if gate is not None and not gate.allows_claim:
        return f"no claim (floor: {gate.state} beat it)"
    return row.outcome or "—"


def _rules_lines(v: Verdict) -> list[str]:
    primary = v.primary
    if primary is None:
        return []
    rules = "; ".join(f"**{name}**: {rule}" for name, rule in RULES.items())
    return [
        f"The primary endpoint is judged against the margin δ = {primary.margin:g} with "
        f"Δ oriented so that positive favours RKDO, by the first rule that holds: {rules}. "
        "'better' names a winner only where the (adjusted) test rejects at 0.05.",
        "",
    ]


def floors_table(v: Verdict) -> list[str]:
    """The floors and the ceiling, on the same evaluation subset, as a Markdown table."""
    refs = v.references
    if refs is None:
        return [
            "No floors were recorded for this sweep: nothing shows that either arm beats an "
            "untrained encoder or raw pixels here, so read the verdict as unchecked.",
            "",
        ]
    metrics = [row.metric for row in v.rows]
    header = ["reference", *(metric_heading(name) for name in metrics)]
    intro = (
        f"Floors and ceiling ({refs.key.label()}; {refs.test_size} test images, the same "
        "evaluation as the trials). A claim on a metric needs both arms' 95% CIs beyond the "
        "stricter floor."
    )
    return [intro, "", table(header, reference_rows(refs, metrics)), ""]


def _secondary(v: Verdict) -> list[float]:
    return [row.comparison.p_t for row in v.rows if not row.primary]


def verdict_families(sv: StudyVerdict) -> list[HolmFamily]:
    """The verdict's Holm families: the secondary metrics, those of default against default
    (a tuned baseline), and the other confirmed configurations."""
    if sv.verdict is None:
        return []
    out = [family(VERDICT, _secondary(sv.verdict))]
    if sv.defaults is not None:
        out.append(family(DEFAULTS, _secondary(sv.defaults)))
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
    lines += [TUNED_INTRO, "", f"### {TUNED_TITLE}", ""] if sv.defaults is not None else []
    lines += [f"**{headline(v, metric=metric)}**", ""]
    lines += [_who(sv, metric=metric), "", _seeds_line(sv, v), ""]
    lines += floors_table(v)
    families = verdict_families(sv)
    lines += [*_verdict_table(v, families[0]), *_rules_lines(v), *verdict_lines(v)]
    lines += ["", *_defaults(sv, families, metric=metric)]
    return [*lines, "", *_others(sv, families, metric=metric)]


TUNED_TITLE = "Tuned against tuned"
DEFAULTS_TITLE = "Default against default"
TUNED_INTRO = (
    "I-Con was tuned as RKDO was: its own knobs through the same sampler, the same number "
    "of trials, the same scheduler, seeds, selection and confirmation. Two comparisons "
    "follow, each labelled: each objective's best against the other's, then each objective's "
    "default settings against the other's."
)


def _defaults(sv: StudyVerdict, families: Sequence[HolmFamily], *, metric: str) -> list[str]:
    """### Default against default: RKDO's base settings against I-Con's, when I-Con was tuned."""
    v = sv.defaults
    if v is None:
        return []
    rkdo_run, icon_run = sv.defaults_on or ("", "")
    where = "fresh seeds (stage confirmation)" if v.stage == STAGE_CONFIRMATION else "search seeds"
    lines = [f"### {DEFAULTS_TITLE}", "", f"**{headline(v, metric=metric)}**", ""]
    lines += [
        f"RKDO at the space's base settings (trial `{rkdo_run}`) against I-Con at its "
        f"reference knobs (trial `{icon_run}`), on the {where}, seeds "
        f"{', '.join(map(str, v.seeds)) or 'none shared'}.",
        "",
    ]
    fam = next(f for f in families if f.name == DEFAULTS)
    return [*lines, *_verdict_table(v, fam), *verdict_lines(v)]


def _verdict_table(v: Verdict, fam: HolmFamily) -> list[str]:
    """One row per metric, then the line naming the secondary metrics' Holm family."""
    header = ["metric", "endpoint", "n", "RKDO", "I-Con", "Δ = RKDO − I-Con", "95% CI of Δ"]
    header += ["p (paired t)", "p (Wilcoxon)", "p_Holm", "better", "outcome"]
    rows = [
        [
            metric_heading(row.metric),
            "primary" if row.primary else "secondary",
            str(row.comparison.n),
            num(row.rkdo_mean),
            num(row.icon_mean),
            signed(row.comparison.delta),
            interval(row.comparison.lo, row.comparison.hi),
            p_value(row.comparison.p_t),
            _wilcoxon(row),
            p_value(row.p_holm),
            row.winner or "—",
            _outcome_cell(v, row),
        ]
        for row in v.rows
    ]
    return [table(header, rows), "", f"{fam.label()}: {fam.members}.", ""]


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


def probe_size_lines(seeds: pd.DataFrame) -> list[str]:
    """How many images score the linear probe, with a warning below SMALL_PROBE_TEST."""
    if m.EVAL_PROBE_TEST_SIZE not in seeds or seeds[m.EVAL_PROBE_TEST_SIZE].dropna().empty:
        return []
    n = int(seeds[m.EVAL_PROBE_TEST_SIZE].dropna().min())
    if n >= m.SMALL_PROBE_TEST:
        return [f"The linear probe is scored on {n} images (the probe's own test part).", ""]
    cv = m.LABEL_OF[m.EVAL_LINEAR_ACC_CV]
    return [
        f"> **Warning:** the linear probe is scored on only {n} images, so one image "
        f"moves it by {100 / n:.2f} points and some classes have a handful of images. Read "
        f"`{m.EVAL_LINEAR_ACC_CV}` ({cv}) beside it: the same features, every image scored.",
        "",
    ]
