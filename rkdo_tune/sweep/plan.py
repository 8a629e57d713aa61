"""What a sweep will do, resolved without starting anything (for --dry-run and the runner)."""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rkdo_tune.errors import EnvironmentFailure, UsageError

if TYPE_CHECKING:
    from rkdo_tune.sweep.space import SearchSpace

DEFAULT_STORAGE = "rkdo_results"
DEFAULT_PENDING_TIMEOUT_S = 600.0  # --pending-timeout: how long trials may wait for a node


ICON_STUDY_SUFFIX = "-icon"  # a tuned baseline's Tune experiment and Optuna study


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
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S  # on a cluster that may grow


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
    baseline: bool = False  # an I-Con control arm runs beside Optuna's samples
    confirm_top: int = 0  # configurations re-run on fresh seeds after the search
    confirm_seeds: tuple[int, ...] = ()
    baseline_tuned: bool = False  # I-Con's own study, as many trials as RKDO's

    @property
    def icon_experiment_path(self) -> str:
        """A tuned baseline's Tune experiment (I-Con's own study): a sibling of the search's."""
        return f"{self.experiment_path}{ICON_STUDY_SUFFIX}"

    @property
    def confirm_experiment_path(self) -> str:
        """The confirmation stage's Tune experiment: a sibling of the search's."""
        return f"{self.experiment_path}-confirm"

    def describe(self) -> list[tuple[str, str | int]]:
        baseline = "I-Con control arm on the same seeds" if self.baseline else "none"
        configurations = str(self.num_samples)
        chosen = f"top {self.confirm_top}{' and the baseline' if self.baseline else ''}"
        if self.baseline_tuned:
            baseline = "RKDO's default and I-Con's default, on the same seeds"
            configurations = f"{self.num_samples} RKDO + {self.num_samples} I-Con (tuned baseline)"
            chosen = f"each objective's top {self.confirm_top} and both defaults"
        fresh = ", ".join(map(str, self.confirm_seeds))
        confirm = f"{chosen} on fresh seeds {fresh}" if self.confirm_top else "none"
        return [
            ("sweep name", self.name),
            ("configurations (Optuna trials)", configurations),
            ("baseline arm", baseline),
            ("seeds per configuration", ", ".join(map(str, self.seeds))),
            ("confirmation", confirm),
            ("training runs", self.training_runs),
            ("resources per trial", f"{self.cpus_per_trial:g} CPU, {self.gpus_per_trial:g} GPU"),
            ("max concurrent trials", self.max_concurrent),
            ("ray", self.address or "local (embedded)"),
            ("results", self.experiment_path),
        ]


def _is_uri(text: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", text) is not None


def resolve_storage(storage: str | None) -> str:
    """An absolute local path that can be created and written, or a URI passed through.

    A URI (s3://, gs://, ...) is checked by `check_storage_uri` before Ray starts.
    """
    if storage and _is_uri(storage):
        return storage.rstrip("/")
    try:
        path = Path(storage or DEFAULT_STORAGE).expanduser().resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop, ~nobody
        raise UsageError(f"--storage {storage!r}: not a usable path ({exc})") from None
    check_local_storage(path, flag=f"--storage {storage or DEFAULT_STORAGE}")
    return str(path)


def check_local_storage(path: Path, *, flag: str) -> None:
    """`path` is a writable directory, or can be made one; checked without creating anything.

    Its nearest existing ancestor must be a directory this process may write to. As
    root that holds for any directory except on a read-only file system.
    """
    existing = next((p for p in (path, *path.parents) if p.exists()), Path(path.anchor))
    if not existing.is_dir():
        raise UsageError(f"{flag}: {existing} is not a directory, so results cannot go there")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write to" if existing == path else "create a directory in"
        raise UsageError(f"{flag}: cannot {verb} {existing} (permission denied or read-only)")


def check_storage_uri(storage: str) -> None:
    """A storage URI pyarrow (so Ray Tune) can open; its file:// path as a local path.

    Before Ray starts; opening may ask the store (credentials, region) over the network.
    A local path (no scheme) is checked by `resolve_storage` already.
    """
    if not _is_uri(storage):
        return
    from pyarrow import fs

    uri, flag = storage.rstrip("/"), f"--storage {storage}"
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except ValueError as exc:  # pyarrow's ArrowInvalid: a scheme it does not know
        raise UsageError(f"{flag}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise EnvironmentFailure(f"{flag}: cannot open it: {str(exc).splitlines()[0]}") from None
    if isinstance(filesystem, fs.LocalFileSystem):
        check_local_storage(Path(path), flag=flag)


def plan_sweep(space: SearchSpace, options: SweepOptions) -> SweepPlan:
    """Resolve names and paths; with --resume the name is required (it picks the sweep)."""
    if options.resume and not options.name:
        raise UsageError("--resume needs --name NAME: the sweep to continue")
    if options.max_failures < 0:
        raise UsageError(f"--max-failures has value {options.max_failures}, but it must be >= 0")
    if not options.pending_timeout_s > 0:  # NaN too
        timeout = options.pending_timeout_s
        raise UsageError(f"--pending-timeout has value {timeout:g}, but it must be > 0 seconds")
    # The suffix keeps two sweeps started in the same second apart (storage and MLflow run).
    name = options.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
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
        baseline=space.baseline is not None,
        confirm_top=space.confirm.top if space.confirm else 0,
        confirm_seeds=space.confirm.seeds if space.confirm else (),
        baseline_tuned=bool(space.baseline_search),
    )
