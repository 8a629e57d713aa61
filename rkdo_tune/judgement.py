"""How a verdict reads an interval: the margin rules, the floors gate, and what was compared.

Pure. `verdict.py` builds the comparisons; this module says what they allow
one to claim, in words that every output (closing table, MLflow tag, report)
prints the same way:

- **Outcome against a margin** δ (the space's `verdict: {margin, metric}`),
  with Δ oriented so that positive favours RKDO (a loss's Δ is negated):
  better, equivalent (TOST), non-inferior, inferior or undetermined. Each
  outcome comes with its rule (`RULES`).
- **The floors gate** (`floors.py`): a claim needs the arms' CIs beyond the
  stricter floor; "neither arm beats the raw-pixel floor on <dataset>: no claim".
- **The context**: dataset, model, protocol, budget and scored split, named on every line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from rkdo_tune import metrics as m
from rkdo_tune.config import SPLIT_TEST
from rkdo_tune.floors import LABEL_OF as FLOOR_LABEL_OF
from rkdo_tune.floors import FloorCheck, no_claim_sentence

DEFAULT_MARGIN = 0.01  # one point of accuracy: the space's `verdict.margin` when it sets none
BETTER, EQUIVALENT, NON_INFERIOR, INFERIOR, UNDETERMINED = (
    "better",
    "equivalent",
    "non-inferior",
    "inferior",
    "undetermined",
)
OUTCOMES = (BETTER, EQUIVALENT, NON_INFERIOR, INFERIOR, UNDETERMINED)
RULES = {
    BETTER: "the 95% CI of Δ lies above 0",
    EQUIVALENT: "TOST: both one-sided tests reject at 0.05 (the 90% CI lies inside ±δ)",
    NON_INFERIOR: "the 95% CI of Δ lies above -δ",
    INFERIOR: "the 95% CI of Δ lies below 0",
    UNDETERMINED: "the 95% CI of Δ reaches below -δ and above 0",
}
TOST_LEVEL = 0.05


@dataclass(frozen=True)
class StudyContext:
    """What a verdict is about: the data, the encoder, the protocol and the training budget."""

    dataset: str
    model: str
    protocol: str
    budget: str
    split: str = SPLIT_TEST  # the split its numbers are scored on (TrialConfig.eval_split)

    def label(self) -> str:
        where = f"{self.split} split"
        return f"{self.dataset}, {self.model}, protocol {self.protocol}, {self.budget}, {where}"

    @property
    def on_test(self) -> bool:
        """Whether its numbers are test-split numbers (what the floors are computed on)."""
        return self.split == SPLIT_TEST


def budget_label(epochs: object, steps_per_epoch: object, batch_size: object) -> str:
    """'10 epochs × 11 steps, batch 64', or '10 full epochs, batch 64' (steps_per_epoch None)."""
    if steps_per_epoch in (None, "", "None"):
        return f"{epochs} full epochs, batch {batch_size}"
    return f"{epochs} epochs × {steps_per_epoch} steps, batch {batch_size}"


def context_of(values: Mapping[str, object]) -> StudyContext:
    """The context of a run's config values (a TrialConfig as a dict, or MLflow params)."""
    return StudyContext(
        dataset=str(values.get("dataset", "?")),
        model=str(values.get("model", "?")),
        protocol=str(values.get("protocol", "?")),
        budget=budget_label(
            values.get("epochs", "?"), values.get("steps_per_epoch"), values.get("batch_size", "?")
        ),
        split=str(values.get("eval_split") or SPLIT_TEST),  # a run before the field: test
    )


def oriented(metric: str, lo: float, hi: float) -> tuple[float, float]:
    """The CI of Δ turned so that positive favours RKDO (negated for a 'min' metric)."""
    if m.MODE_OF.get(metric, "max") == "max":
        return lo, hi
    return -hi, -lo


def outcome(metric: str, lo: float, hi: float, *, margin: float, p_tost: float) -> str:
    """The margin outcome of the 95% CI (lo, hi) of Δ = RKDO − I-Con, and the TOST p."""
    lo, hi = oriented(metric, lo, hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return UNDETERMINED
    if lo > 0:
        return BETTER
    if math.isfinite(p_tost) and p_tost < TOST_LEVEL:
        return EQUIVALENT
    if lo > -margin:
        return NON_INFERIOR
    if hi < 0:
        return INFERIOR
    return UNDETERMINED


def outcome_phrase(result: str, *, margin: float) -> str:
    """'non-inferior at δ = 0.01 (rule: the 95% CI of Δ lies above -δ)'."""
    return f"{result} at δ = {margin:g} (rule: {RULES[result]})"


# Which arms beat the floor on a metric.
GATE_BOTH, GATE_RKDO, GATE_ICON, GATE_NEITHER = "both", "RKDO only", "I-Con only", "neither"


@dataclass(frozen=True)
class FloorGate:
    """Both arms on one metric against the stricter floor."""

    rkdo: FloorCheck
    icon: FloorCheck

    @property
    def state(self) -> str:
        if self.rkdo.beats and self.icon.beats:
            return GATE_BOTH
        if self.rkdo.beats:
            return GATE_RKDO
        return GATE_ICON if self.icon.beats else GATE_NEITHER

    @property
    def allows_claim(self) -> bool:
        return self.state == GATE_BOTH

    def sentence(self, dataset: str) -> str:
        """Why there is no claim (the caller prints it only when `allows_claim` is False)."""
        kind = self.rkdo.kind
        floor = f"floor {self.rkdo.floor:.4f}"
        arms = f"RKDO {_ci(self.rkdo)}, I-Con {_ci(self.icon)}"
        if self.state == GATE_NEITHER:
            return f"{no_claim_sentence(dataset, kind)} ({floor}; {arms})"
        winner = "RKDO" if self.state == GATE_RKDO else "I-Con"
        loser = "I-Con" if winner == "RKDO" else "RKDO"
        return (
            f"only {winner} beats the {FLOOR_LABEL_OF[kind]} on {dataset}; {loser}'s CI does "
            f"not clear it, so the comparison makes no claim ({floor}; {arms})"
        )


def _ci(check: FloorCheck) -> str:
    if not (math.isfinite(check.lo) and math.isfinite(check.hi)):
        return f"no CI ({check.n} seed{'s' if check.n != 1 else ''})"
    return f"[{check.lo:.4f}, {check.hi:.4f}]"


def direction(metric: str) -> str:
    """Which way `metric` is better, as a table says it next to the metric's name."""
    if metric == m.EVAL_EFFECTIVE_RANK:
        return "not a quality measure by itself"
    return "higher is better" if m.MODE_OF.get(metric, "max") == "max" else "lower is better"


def metric_heading(metric: str) -> str:
    """'linear probe (higher is better)': the metric's label and its direction."""
    return f"{m.LABEL_OF.get(metric, metric)} ({direction(metric)})"
