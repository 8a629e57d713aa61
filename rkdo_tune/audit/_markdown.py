"""audit.md, claims.csv and tests.csv: the claims table first, then how each was decided."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rkdo_tune.audit._claims import (
    KIND_BEATS,
    KIND_LOSS,
    KIND_RATIO,
    KIND_REVERSAL,
    KIND_STOP,
    RULES,
    Adjusted,
    ClaimRow,
    interval_text,
)
from rkdo_tune.inference import ALPHA_LEVEL

EVIDENCE_DATASETS = ("cifar10", "cifar100", "stl10")  # the paper's own settings
RULE_NAMES = {
    KIND_LOSS: "claim 1",
    KIND_RATIO: "claim 2",
    KIND_BEATS: "claims 3, 4 and 5",
    KIND_REVERSAL: "claim 6",
    KIND_STOP: "claim 7",
}


@dataclass(frozen=True)
class AuditFacts:
    name: str
    dataset: str
    model: str
    seeds: tuple[int, ...]
    confirm_seeds: tuple[int, ...]
    studies: tuple[tuple[str, str, str], ...]  # (study, sweep name, sweep run id)
    date: str


def _p(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_table(rows: Sequence[ClaimRow]) -> list[str]:
    head = (
        "| # | claim | how it was tested | effect (95% CI) | p (study Holm) | p (audit Holm) "
        "| verdict | why | dataset, model, protocol | floors |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        e = r.evidence
        cells = (
            str(e.number),
            e.claim,
            e.how,
            r.effect,
            _p(r.p_study),
            _p(r.p_audit),
            f"**{r.verdict}**",
            r.why,
            e.context,
            e.floors,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def rehearsal_line(dataset: str) -> str:
    if dataset in EVIDENCE_DATASETS:
        return f"Dataset {dataset}: one of the paper's own settings."
    return (
        f"**On {dataset} this table is a rehearsal of the method, not evidence about CIFAR or "
        "STL-10**: the paper's claims are about its own datasets and encoders; run "
        "`rkdo-tune audit --dataset cifar10 --model resnet18` on a GPU for those."
    )


def render(facts: AuditFacts, rows: Sequence[ClaimRow], adjusted: Adjusted) -> str:
    seeds = ", ".join(map(str, facts.seeds))
    fresh = ", ".join(map(str, facts.confirm_seeds))
    lines = [
        f"# Audit of RKDO's claims against I-Con: {facts.name}",
        "",
        f"{facts.date}. {facts.dataset}, {facts.model}. Search seeds {seeds} (validation split "
        f"where a study selects); fresh confirmation seeds {fresh} (test split).",
        "",
        rehearsal_line(facts.dataset),
        "",
        "## Claims",
        "",
        *claims_table(rows),
        "",
        "### Rules",
        "",
        *[f"- **{RULE_NAMES[k]}**: {rule}." for k, rule in RULES.items()],
        f"- δ = {rows[0].evidence.margin:g} of probe accuracy; α = {ALPHA_LEVEL}.",
        "",
        "### Holm families",
        "",
        f"- **audit-wide**: {adjusted.audit_size} tests, every test below; the verdicts "
        "read this adjustment.",
        *[f"- **study {name}**: {size} tests" for name, size in adjusted.study_sizes.items()],
        "",
        "## How each claim was decided",
        "",
    ]
    for r in rows:
        lines += _details(r, adjusted)
    lines += ["## Studies", ""]
    lines += [
        f"- **{study}**: sweep `{sweep}` (MLflow run `{run}`); report: "
        f"[studies/{study}/report.md](studies/{study}/report.md)"
        for study, sweep, run in facts.studies
    ]
    return "\n".join(lines) + "\n"


def _details(row: ClaimRow, adjusted: Adjusted) -> list[str]:
    e = row.evidence
    lines = [f"### {e.number}. {e.claim}", "", f"{row.verdict}: {row.why}.", ""]
    lines += [f"- {d}" for d in e.details]
    tests = (*e.tests, *e.side_tests)
    if tests:
        lines += ["", "| test | Δ [95% CI] | n | p | p (study Holm) | p (audit Holm) |"]
        lines.append("|---|---|---|---|---|---|")
        for t in tests:
            c = t.comparison
            lines.append(
                f"| {_cell(t.label)} | {interval_text(c.delta, c.lo, c.hi)} | {c.n} | "
                f"{_p(t.p)} | {_p(adjusted.study.get(t.key, math.nan))} | "
                f"{_p(adjusted.audit.get(t.key, math.nan))} |"
            )
    return [*lines, ""]


def claims_frame(rows: Sequence[ClaimRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "claim": r.evidence.number,
                "text": r.evidence.claim,
                "how": r.evidence.how,
                "study": r.evidence.study,
                "effect": r.effect,
                "p_study_holm": r.p_study,
                "p_audit_holm": r.p_audit,
                "verdict": r.verdict,
                "why": r.why,
                "context": r.evidence.context,
                "floors": r.evidence.floors,
            }
            for r in rows
        ]
    )


def tests_frame(rows: Sequence[ClaimRow], adjusted: Adjusted) -> pd.DataFrame:
    records = []
    for r in rows:
        for role, tests in (("rule", r.evidence.tests), ("shown", r.evidence.side_tests)):
            for t in tests:
                c = t.comparison
                records.append(
                    {
                        "claim": r.evidence.number,
                        "study": t.study,
                        "test": t.label,
                        "role": role,
                        "delta": c.delta,
                        "ci_lo": c.lo,
                        "ci_hi": c.hi,
                        "n": c.n,
                        "p": t.p,
                        "p_study_holm": adjusted.study.get(t.key, math.nan),
                        "p_audit_holm": adjusted.audit.get(t.key, math.nan),
                    }
                )
    return pd.DataFrame(records)


def write(out: Path, facts: AuditFacts, rows: Sequence[ClaimRow], adjusted: Adjusted) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "audit.md"
    path.write_text(render(facts, rows, adjusted))
    claims_frame(rows).to_csv(out / "claims.csv", index=False)
    tests_frame(rows, adjusted).to_csv(out / "tests.csv", index=False)
    return path
