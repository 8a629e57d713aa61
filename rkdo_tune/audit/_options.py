"""What the user chose for an audit: plain dataclasses, no torch, Ray or MLflow (the CLI's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SEEDS = 3
DEFAULT_EXPERIMENT = "rkdo-audit"


@dataclass(frozen=True)
class AuditSettings:
    """What every study of the audit is set to."""

    seeds: int = DEFAULT_SEEDS
    dataset: str | None = None
    model: str | None = None
    data_dir: Path | None = None
    gpus_per_trial: float | None = None
    steps_per_epoch: int | None = None  # a smaller budget for tests and rehearsals
    sets: tuple[str, ...] = ()  # --set KEY.PATH=VALUE on every study


@dataclass(frozen=True)
class AuditOptions:
    """How to run an audit (what it runs is fixed: `_studies.STUDIES`)."""

    settings: AuditSettings = field(default_factory=AuditSettings)
    name: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    tracking_uri: str | None = None
    storage: str | None = None
    address: str | None = None
    out: Path | None = None
    resume: bool = False
