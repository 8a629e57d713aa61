"""Floors and a ceiling: what the same evaluation gives without contrastive training.

Pure (no torch): the values, their key and the rules that read them, so the
sweep's closing table, its MLflow run and the report say the same thing.

- the **raw-pixel floor**: the probes on the pixels themselves (no encoder);
- the **random-init floor**: the same model, untrained, evaluated identically;
- the **supervised ceiling**: the same encoder trained with labels for the same
  steps (only where that is cheap; see `training.floors`).

They depend only on what is evaluated and, for the ceiling, on the shared training
settings, so they are computed once per `FloorKey` (dataset, model, protocol,
evaluation seed, and a digest of every shared setting), not per trial, and a
sweep may reuse another sweep's floors of the same key. An arm
"beats the floor" on a metric when its CI over seeds lies wholly on the better
side of the higher of the two floors; with fewer than two seeds there is no CI,
so it does not.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rkdo_tune import metrics as m
from rkdo_tune.config import SCOPE_SHARED, fields_in_scope
from rkdo_tune.inference import mean_ci

# The seed of the evaluation's own randomness (probe split, probes, KMeans): the
# reference's 42 for every run, whatever the training seed (`EvalSettings.seed`).
EVAL_SEED = 42
RAW_PIXELS, RANDOM_INIT, SUPERVISED = "raw_pixels", "random_init", "supervised"
FLOOR_KINDS = (RAW_PIXELS, RANDOM_INIT)
KINDS = (*FLOOR_KINDS, SUPERVISED)
LABEL_OF = {
    RAW_PIXELS: "raw-pixel floor",
    RANDOM_INIT: "random-init floor",
    SUPERVISED: "supervised ceiling",
}


def settings_digest(values: Mapping[str, object]) -> str:
    """12 hex digits of sha256 over every setting both objectives share (`SCOPE_SHARED`):
    the data, the evaluation and the budget, batch and optimiser the ceiling trains with.
    Conservative: a shared setting the floors do not read still changes it."""
    shared = {name: repr(values.get(name)) for name in sorted(fields_in_scope(SCOPE_SHARED))}
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FloorKey:
    """What a floor depends on: the data, the model, the protocol, the evaluation seed and
    (`settings`, a `settings_digest`) every shared setting; "" in a key recorded before it."""

    dataset: str
    model: str
    protocol: str
    eval_seed: int
    settings: str = ""

    def label(self) -> str:
        return f"{self.dataset}, {self.model}, protocol {self.protocol}, eval seed {self.eval_seed}"

    def tag(self) -> str:
        """The key as one string (an MLflow tag): 'dataset=digits;model=small_cnn;...'."""
        return ";".join(f"{name}={getattr(self, name)}" for name in self.__dataclass_fields__)

    @classmethod
    def of(cls, values: Mapping[str, object], *, eval_seed: int = EVAL_SEED) -> FloorKey:
        """The key of a run's config values (a TrialConfig as a dict)."""
        names = (str(values["dataset"]), str(values["model"]), str(values["protocol"]))
        return cls(*names, eval_seed, settings_digest(values))

    @classmethod
    def from_tag(cls, text: str) -> FloorKey | None:
        """The key `tag` wrote, or None for anything else."""
        parts = dict(part.partition("=")[::2] for part in text.split(";") if "=" in part)
        try:
            names = (parts["dataset"], parts["model"], parts["protocol"])
            return cls(*names, int(parts["eval_seed"]), parts.get("settings", ""))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class References:
    """The floors and the ceiling of one key: kind -> {metric: value}; notes say what is absent.

    `test_size` is how many test images the probes scored (the protocol's evaluation subset).
    """

    key: FloorKey
    scores: Mapping[str, Mapping[str, float]]
    notes: Mapping[str, str] = field(default_factory=dict)
    test_size: int = 0

    def value(self, kind: str, metric: str) -> float:
        return float(self.scores.get(kind, {}).get(metric, math.nan))

    def floor(self, metric: str) -> tuple[float, str] | None:
        """The stricter floor of `metric` and its kind: the higher one ("max" metrics) or
        the lower one ("min"); None when no floor has a finite value."""
        found = [(self.value(k, metric), k) for k in FLOOR_KINDS]
        found = [(v, k) for v, k in found if math.isfinite(v)]
        if not found:
            return None
        higher = m.MODE_OF.get(metric, "max") == "max"
        return max(found) if higher else min(found)

    def to_metrics(self, prefix: str) -> dict[str, float]:
        """<prefix><kind>/<metric> for every finite value (what a sweep run logs)."""
        return {
            f"{prefix}{kind}/{metric}": float(value)
            for kind, values in self.scores.items()
            for metric, value in values.items()
            if math.isfinite(value)
        }

    @classmethod
    def from_metrics(
        cls,
        key: FloorKey,
        metrics: Mapping[str, float],
        *,
        prefix: str,
        notes: Mapping[str, str] | None = None,
        test_size: int = 0,
    ) -> References | None:
        """Read `to_metrics` back (other keys ignored); None when there is no floor value."""
        scores: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            if not name.startswith(prefix):
                continue
            kind, _, metric = name[len(prefix) :].partition("/")
            if kind in KINDS and metric:
                scores.setdefault(kind, {})[metric] = float(value)
        if not scores:
            return None
        return cls(key, scores, dict(notes or {}), test_size)


@dataclass(frozen=True)
class FloorCheck:
    """One arm on one metric against the floor: its CI and whether it lies beyond the floor."""

    metric: str
    floor: float
    kind: str
    lo: float
    hi: float
    n: int

    @property
    def beats(self) -> bool:
        higher = m.MODE_OF.get(self.metric, "max") == "max"
        bound = self.lo if higher else self.hi
        if not math.isfinite(bound):
            return False
        return bound > self.floor if higher else bound < self.floor


def check_floor(references: References, metric: str, values: Sequence[float]) -> FloorCheck | None:
    """Whether an arm's per-seed `values` of `metric` beat the stricter floor; None: no floor."""
    found = references.floor(metric)
    if found is None:
        return None
    interval = mean_ci(values)
    return FloorCheck(metric, found[0], found[1], interval.lo, interval.hi, interval.n)


def no_claim_sentence(dataset: str, kind: str = RANDOM_INIT) -> str:
    """'neither arm beats the raw-pixel floor on digits: no claim' (`kind`: the floor's)."""
    return f"neither arm beats the {LABEL_OF[kind]} on {dataset}: no claim"


def reference_rows(references: References, metrics: Sequence[str]) -> list[list[str]]:
    """[kind label, value per metric] rows, floors first, then the ceiling (or why absent)."""
    rows = []
    for kind in KINDS:
        if kind in references.scores:
            cells = [_cell(references.value(kind, metric)) for metric in metrics]
        else:
            cells = [references.notes.get(kind, "not computed")] + [""] * (len(metrics) - 1)
        rows.append([LABEL_OF[kind], *cells])
    return rows


def _cell(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "—"
