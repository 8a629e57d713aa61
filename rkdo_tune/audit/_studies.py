"""The audit's studies: which packaged space answers which claim, and how the audit sets them.

The spaces under `search_spaces/audit/` are ordinary spaces (each runs alone with
`rkdo-tune sweep --space audit/<file>`); the audit harmonises them with overrides
only: one seed list, one set of fresh confirmation seeds, one dataset and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rkdo_tune.audit._options import AuditSettings
from rkdo_tune.data.catalog import TORCHVISION_DATASETS
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep.space import SearchSpace, load_space, space_directories

AUDIT_FOLDER = "audit"
# Search seeds are the first N, fresh confirmation seeds the next N (the paper's five first).
AUDIT_SEEDS = (42, 123, 456, 789, 101, 7, 2024, 31337, 11, 5)
MIN_SEEDS = 3  # a paired t-test needs three pairs (inference.MIN_TEST_PAIRS)
MAX_SEEDS = len(AUDIT_SEEDS) // 2
SHAPES_SAMPLES = 2500  # issue 18 §1: the size at which `shapes` was measured to carry evidence


@dataclass(frozen=True)
class Study:
    """One study of the audit: its key (also its sweep name's suffix), file and claims."""

    key: str
    file: str
    claims: tuple[int, ...]


STUDIES = (
    Study("budgets", "budgets.yaml", (1, 2, 6, 7)),
    Study("alpha", "alpha.yaml", (3, 7)),  # also trains the shared tuned I-Con
    Study("depth", "depth.yaml", (4, 7)),
    Study("adaptive", "adaptive.yaml", (5, 7)),
)
CONTROL_STUDY = "alpha"


def search_seeds(n: int) -> tuple[int, ...]:
    return AUDIT_SEEDS[:n]


def confirm_seeds(n: int) -> tuple[int, ...]:
    return AUDIT_SEEDS[n : 2 * n]


def check_settings(settings: AuditSettings) -> None:
    if not MIN_SEEDS <= settings.seeds <= MAX_SEEDS:
        raise UsageError(
            f"--seeds has value {settings.seeds}, but it must lie in [{MIN_SEEDS}, {MAX_SEEDS}] "
            f"(a paired test needs {MIN_SEEDS} seeds; the audit has {len(AUDIT_SEEDS)} seeds "
            "for its search and confirmation stages)"
        )
    if settings.steps_per_epoch is not None and settings.steps_per_epoch < 1:
        raise UsageError(
            f"--steps-per-epoch has value {settings.steps_per_epoch}, but it must be >= 1"
        )


def study_path(study: Study) -> Path:
    """The packaged file of a study (the installed package's, else the source tree's)."""
    for folder in space_directories():
        path = folder / AUDIT_FOLDER / study.file
        if path.is_file():
            return path
    raise UsageError(f"audit: the packaged study {AUDIT_FOLDER}/{study.file} is missing")


def overrides(space_has_confirm: bool, settings: AuditSettings) -> list[str]:
    """The --set lines that harmonise one study with the rest of the audit."""
    sets = [f"repeats.seeds={list(search_seeds(settings.seeds))}"]
    if space_has_confirm:
        sets.append(f"confirm.seeds={list(confirm_seeds(settings.seeds))}")
    if settings.dataset:
        sets.append(f"base.dataset={settings.dataset}")
        if settings.dataset == "shapes":
            sets.append(f"base.synthetic_samples={SHAPES_SAMPLES}")
        if settings.dataset in TORCHVISION_DATASETS:
            # Every 11 steps is ten evaluations of a digits run, hundreds of a CIFAR one:
            # evaluate at each epoch's end instead (5 or 10 points per curve).
            sets.append("base.eval_every_steps=null")
    if settings.model:
        sets.append(f"base.model={settings.model}")
    if settings.data_dir is not None:
        sets.append(f"base.data_dir={settings.data_dir.expanduser().resolve()}")
    if settings.steps_per_epoch is not None:
        sets.append(f"base.steps_per_epoch={settings.steps_per_epoch}")
    return [*sets, *settings.sets]


def load_studies(settings: AuditSettings) -> list[tuple[Study, SearchSpace]]:
    """Every study's space, harmonised and checked, before anything starts."""
    check_settings(settings)
    loaded = []
    for study in STUDIES:
        path = study_path(study)
        plain = load_space(path)
        space = load_space(path, overrides=overrides(plain.confirm is not None, settings))
        if settings.gpus_per_trial is not None:
            space = space.with_updates(gpus=settings.gpus_per_trial)
        loaded.append((study, space))
    return loaded


def study_names(audit: str, studies: Sequence[Study] = STUDIES) -> dict[str, str]:
    """Each study's sweep name: derived from the audit's."""
    return {s.key: f"{audit}-{s.key}" for s in studies}
