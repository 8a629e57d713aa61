"""What a sweep will do, resolved without starting anything (for --dry-run and the runner)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rkdo_tune.errors import UsageError

if TYPE_CHECKING:
    from rkdo_tune.sweep.space import SearchSpace

DEFAULT_STORAGE = "rkdo_results"


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep, as opposed to what to search (that is the SearchSpace)."""

    name: str | None = None
    storage: str | None = None
    address: str | None = None
    resume: bool = False
    optuna_storage: str | None = None
    max_failures: int = 0
    tracking_uri: str | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class SweepPlan:
    """The resolved facts of one sweep: names, paths, counts and resources."""

    name: str
    storage_path: str
    experiment_path: str
    num_samples: int
    seeds: tuple[int, ...]
    training_runs: int
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    address: str | None

    def describe(self) -> list[tuple[str, str | int]]:
        return [
            ("sweep name", self.name),
            ("configurations (Optuna trials)", self.num_samples),
            ("seeds per configuration", ", ".join(map(str, self.seeds))),
            ("training runs", self.training_runs),
            ("resources per trial", f"{self.cpus_per_trial:g} CPU, {self.gpus_per_trial:g} GPU"),
            ("max concurrent trials", self.max_concurrent),
            ("ray", self.address or "local (embedded)"),
            ("results", self.experiment_path),
        ]


def _is_uri(text: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", text) is not None


def resolve_storage(storage: str | None) -> str:
    """An absolute local path, or a URI (s3://, gs://, ...) passed through untouched."""
    if storage and _is_uri(storage):
        return storage.rstrip("/")
    return str(Path(storage or DEFAULT_STORAGE).expanduser().resolve())


def plan_sweep(space: SearchSpace, options: SweepOptions) -> SweepPlan:
    """Resolve names and paths; with --resume the name is required (it picks the sweep)."""
    if options.resume and not options.name:
        raise UsageError("--resume needs --name NAME: the sweep to continue")
    if options.max_failures < 0:
        raise UsageError(f"--max-failures has value {options.max_failures}, but it must be >= 0")
    name = options.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"--name has value {name!r}, but only letters, digits, '._-' are allowed")
    storage = resolve_storage(options.storage)
    from rkdo_tune.sweep.space import count_trials

    return SweepPlan(
        name=name,
        storage_path=storage,
        experiment_path=f"{storage}/{name}",
        num_samples=space.search.num_samples,
        seeds=tuple(space.seeds),
        training_runs=count_trials(space),
        cpus_per_trial=space.resources.cpus,
        gpus_per_trial=space.resources.gpus,
        max_concurrent=space.search.max_concurrent,
        address=options.address,
    )
