"""What was run: the environment block every sweep run and every report carries.

The driver's part (`driver_environment`) imports nothing heavy: package
versions come from the installed distributions' metadata, the commit from git.
The part only a worker can see (device, torch's determinism settings and
threads, the hash of the data) comes from `training.floors.worker_environment`,
computed in the same task as the floors. Values are strings, keys fixed here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "ray", "optuna", "mlflow", "scikit-learn", "numpy")
DISTRIBUTION = "rkdo-tune"
MAX_VALUE = 1000  # characters kept of one value (a tag holds the whole block)

# Keys, in the order a report prints them.
GIT_COMMIT, GIT_DIRTY, PACKAGE_VERSION, PYTHON = "git commit", "git dirty", "rkdo-tune", "python"
COMMAND, SPACE_SHA = "command", "resolved space sha256"
DEVICE, CAPABILITY, DETERMINISTIC, CUDNN, THREADS, DATA_SHA = (
    "device",
    "cuda capability",
    "torch deterministic algorithms",
    "cudnn deterministic / benchmark",
    "torch threads",
    "data sha256",
)
WORKER_KEYS = (DEVICE, CAPABILITY, DETERMINISTIC, CUDNN, THREADS, DATA_SHA)
UNKNOWN = "unknown"


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """{name: installed version} without importing the packages ('not installed' if absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(path: Path | None = None) -> dict[str, str]:
    """The commit of the checkout holding this package, and whether it has changes."""
    where = path or Path(__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], where)
    if commit is None:
        return {GIT_COMMIT: "not a git checkout (installed package)", GIT_DIRTY: UNKNOWN}
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    dirty = UNKNOWN if status is None else ("yes" if status else "no")
    return {GIT_COMMIT: commit, GIT_DIRTY: dirty}


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def driver_environment(
    *, argv: Sequence[str] | None = None, resolved_space: str | None = None
) -> dict[str, str]:
    """Git, versions, Python, the command line and the resolved space's hash."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = UNKNOWN
    block = {**git_state(), PACKAGE_VERSION: version, PYTHON: sys.version.split()[0]}
    block |= package_versions()
    block[COMMAND] = " ".join(argv if argv is not None else sys.argv)
    if resolved_space is not None:
        block[SPACE_SHA] = text_sha256(resolved_space)
    return {key: value[:MAX_VALUE] for key, value in block.items()}


def missing_keys(block: Mapping[str, str]) -> list[str]:
    """The keys a complete block (driver and worker parts) lacks."""
    wanted = [GIT_COMMIT, GIT_DIRTY, PACKAGE_VERSION, *PACKAGES, COMMAND, *WORKER_KEYS]
    return [key for key in wanted if key not in block]


def environment_rows(block: Mapping[str, str]) -> list[list[str]]:
    """[key, value] rows for a table, every key of the block, in a stable order."""
    order = [GIT_COMMIT, GIT_DIRTY, PACKAGE_VERSION, PYTHON, *PACKAGES, *WORKER_KEYS]
    order += [COMMAND, SPACE_SHA]
    known = [[key, block[key]] for key in order if key in block]
    return known + [[key, block[key]] for key in sorted(block) if key not in order]
