"""Helpers shared by tests: the real `rkdo-tune` executable as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RKDO_TUNE = str(Path(sys.executable).with_name("rkdo-tune"))


def run_cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the installed `rkdo-tune` console script as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [RKDO_TUNE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
